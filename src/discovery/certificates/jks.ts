/**
 * The certificates of a Java keystore (JKS, magic FEEDFEED). Certificates sit in a JKS unencrypted;
 * only private keys are protected, and they are skipped. The keyed integrity digest at the end is
 * not checked (that needs the store password). Throws a `JksError` with the byte offset of the
 * first field that does not fit.
 */
export interface JksEntry {
  alias: string
  kind: 'trusted' | 'key'
  certificates: Buffer[]
}

export class JksError extends Error {
  override name = 'JksError'
  readonly offset: number
  constructor(message: string, offset: number) {
    super(message)
    this.offset = offset
  }
}

export function isJks(bytes: Buffer): boolean {
  return bytes.length >= 4 && bytes.readUInt32BE(0) === 0xfeedfeed
}

export function readJks(bytes: Buffer): JksEntry[] {
  let i = 0
  const need = (n: number, what: string) => {
    if (i + n > bytes.length) throw new JksError(`truncated keystore: ${what} runs past the end`, i)
  }
  const u16 = (what: string) => {
    need(2, what)
    const v = bytes.readUInt16BE(i)
    i += 2
    return v
  }
  const u32 = (what: string) => {
    need(4, what)
    const v = bytes.readUInt32BE(i)
    i += 4
    return v
  }
  const utf = (what: string) => {
    const n = u16(what)
    need(n, what)
    const s = bytes.toString('utf8', i, i + n)
    i += n
    return s
  }
  const blob = (what: string) => {
    const n = u32(what)
    need(n, what)
    const b = bytes.subarray(i, i + n)
    i += n
    return b
  }
  if (u32('magic') !== 0xfeedfeed) throw new JksError('not a JKS keystore', 0)
  const version = u32('version')
  if (version !== 1 && version !== 2) throw new JksError(`unknown keystore version ${version}`, 4)
  const count = u32('entry count')
  const out: JksEntry[] = []
  for (let e = 0; e < count; e++) {
    const tag = u32('entry tag')
    const alias = utf('alias')
    need(8, 'creation time')
    i += 8
    if (tag === 1) {
      blob('protected key') // encrypted private key: skipped, never decrypted
      const chain = u32('chain length')
      const certificates: Buffer[] = []
      for (let k = 0; k < chain; k++) {
        if (version === 2) utf('certificate type')
        certificates.push(blob('certificate'))
      }
      out.push({ alias, kind: 'key', certificates })
    } else if (tag === 2) {
      if (version === 2) utf('certificate type')
      out.push({ alias, kind: 'trusted', certificates: [blob('certificate')] })
    } else throw new JksError(`unknown entry tag ${tag}`, i - 4)
  }
  return out
}
