/**
 * Minimal DER (X.690) encoding and decoding: enough to build the X.509 certificates the CA signs and
 * to read the extensions a validator checks. Pure. The reader bounds-checks every length, so
 * untrusted bytes fail with `DerError` and never read past the buffer.
 */

export class DerError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DerError'
  }
}

// ---------- writing ----------

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

/** One TLV with a single-byte tag. */
export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content])
}

export const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items))
export const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items))
export const octetString = (b: Buffer): Buffer => tlv(0x04, b)
export const utf8String = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'))
export const printableString = (s: string): Buffer => tlv(0x13, Buffer.from(s, 'ascii'))
export const boolTrue = Buffer.from([0x01, 0x01, 0xff])
export const nullValue = Buffer.from([0x05, 0x00])
/** `[n]` EXPLICIT (constructed context tag). */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner)
/** `[n]` IMPLICIT primitive (e.g. a URI or DNS name in GeneralName, keyIdentifier). */
export const implicitPrimitive = (n: number, content: Buffer): Buffer => tlv(0x80 | n, content)

/** INTEGER from unsigned big-endian bytes (adds a leading zero when the top bit is set). */
export function unsignedInteger(bytes: Buffer): Buffer {
  let start = 0
  while (start < bytes.length - 1 && bytes[start] === 0) start++
  let b = bytes.subarray(start)
  if (b.length === 0) b = Buffer.from([0])
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b])
  return tlv(0x02, b)
}

export function smallInteger(n: number): Buffer {
  const bytes: number[] = []
  let v = n
  do {
    bytes.unshift(v & 0xff)
    v = Math.floor(v / 256)
  } while (v > 0)
  return unsignedInteger(Buffer.from(bytes))
}

/** BIT STRING with no unused bits. */
export const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), b]))

/** A named-bit BIT STRING (KeyUsage): bit 0 is the most significant bit of the first byte. */
export function namedBits(bits: readonly number[]): Buffer {
  const top = Math.max(...bits)
  const bytes = Buffer.alloc(Math.floor(top / 8) + 1)
  for (const b of bits) bytes[Math.floor(b / 8)]! |= 0x80 >> (b % 8)
  // DER: trailing zero bits are dropped and counted as unused.
  const last = bytes[bytes.length - 1]!
  let unused = 0
  while (unused < 8 && !(last & (1 << unused))) unused++
  return tlv(0x03, Buffer.concat([Buffer.from([unused]), bytes]))
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number)
  const out: number[] = [parts[0]! * 40 + parts[1]!]
  for (const p of parts.slice(2)) {
    const chunk: number[] = []
    let v = p
    do {
      chunk.unshift(v & 0x7f)
      v = Math.floor(v / 128)
    } while (v > 0)
    for (let k = 0; k < chunk.length - 1; k++) chunk[k]! |= 0x80
    out.push(...chunk)
  }
  return tlv(0x06, Buffer.from(out))
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). Whole seconds. */
export function time(d: Date): Buffer {
  const iso = d.toISOString() // 2026-11-23T13:21:12.000Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z' // 20261123132112Z
  const year = d.getUTCFullYear()
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(digits.slice(2), 'ascii'))
  return tlv(0x18, Buffer.from(digits, 'ascii'))
}

// ---------- reading ----------

export interface DerNode {
  tag: number
  /** Offset of the content within `buf`. */
  start: number
  /** Offset just past the content. */
  end: number
  /** Offset of the tag byte (start of the whole TLV). */
  headerStart: number
  buf: Buffer
}

/** Reads the TLV at `offset`, which must end by `limit`. */
export function readNode(buf: Buffer, offset: number, limit = buf.length): DerNode {
  if (offset + 2 > limit) throw new DerError('truncated TLV header')
  const tag = buf[offset]!
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not supported')
  let len = buf[offset + 1]!
  let p = offset + 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 4) throw new DerError('unsupported length form')
    if (p + n > limit) throw new DerError('truncated length')
    len = 0
    for (let k = 0; k < n; k++) len = len * 256 + buf[p + k]!
    p += n
  }
  if (p + len > limit) throw new DerError('length runs past the end')
  return { tag, start: p, end: p + len, headerStart: offset, buf }
}

/** The children of a constructed node. */
export function children(node: DerNode): DerNode[] {
  const out: DerNode[] = []
  let p = node.start
  while (p < node.end) {
    const child = readNode(node.buf, p, node.end)
    out.push(child)
    p = child.end
  }
  return out
}

export function content(node: DerNode): Buffer {
  return node.buf.subarray(node.start, node.end)
}

export function whole(node: DerNode): Buffer {
  return node.buf.subarray(node.headerStart, node.end)
}

export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (node === undefined || node.tag !== tag) throw new DerError(`expected ${what}`)
  return node
}

export function readOid(node: DerNode): string {
  expectTag(node, 0x06, 'an OBJECT IDENTIFIER')
  const b = content(node)
  if (b.length === 0) throw new DerError('empty OID')
  const parts: number[] = []
  let v = 0
  for (let k = 0; k < b.length; k++) {
    v = v * 128 + (b[k]! & 0x7f)
    if (!(b[k]! & 0x80)) {
      if (parts.length === 0) {
        const first = v < 80 ? Math.floor(v / 40) : 2
        parts.push(first, v - first * 40)
      } else parts.push(v)
      v = 0
    }
  }
  if (b[b.length - 1]! & 0x80) throw new DerError('truncated OID')
  return parts.join('.')
}

/** The set bits of a named-bit BIT STRING (bit 0 = most significant bit of the first byte). */
export function readNamedBits(node: DerNode): Set<number> {
  expectTag(node, 0x03, 'a BIT STRING')
  const b = content(node)
  if (b.length === 0) throw new DerError('empty BIT STRING')
  const unused = b[0]!
  if (unused > 7) throw new DerError('bad BIT STRING')
  const bits = new Set<number>()
  const total = (b.length - 1) * 8 - unused
  for (let k = 0; k < total; k++) {
    if (b[1 + Math.floor(k / 8)]! & (0x80 >> (k % 8))) bits.add(k)
  }
  return bits
}
