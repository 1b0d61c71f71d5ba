/**
 * ECDSA signature encodings: JWS (RFC 7518 §3.4) uses the fixed-width r‖s form ("IEEE P1363"),
 * `crypto.sign`/`verify` produce and take DER. Node accepts `{ key, dsaEncoding: 'ieee-p1363' }`,
 * but an options object instead of a bare KeyObject costs about as much again as the P-256
 * operation itself on Node 24 (its key-type checks; measured in bench/issuance.ts), so the JWT
 * paths pass the bare key and convert here.
 */

/** DER `ECDSA-Sig-Value` → r‖s, each left-padded to `size` bytes. Throws on malformed input. */
export function derToP1363(der: Buffer, size: number): Buffer {
  let at = 0
  if (der[at++] !== 0x30) throw new Error('not an ECDSA-Sig-Value')
  let len = der[at++]!
  if (len === 0x81) len = der[at++]!
  else if (len > 0x80) throw new Error('not an ECDSA-Sig-Value')
  if (at + len !== der.length) throw new Error('not an ECDSA-Sig-Value')
  const out = Buffer.alloc(2 * size)
  for (let k = 0; k < 2; k++) {
    if (der[at++] !== 0x02) throw new Error('not an ECDSA-Sig-Value')
    const n = der[at++]!
    if (n === 0 || n > 0x7f || at + n > der.length) throw new Error('not an ECDSA-Sig-Value')
    let start = at
    let width = n
    while (width > size && der[start] === 0) {
      start++
      width--
    }
    if (width > size) throw new Error('an ECDSA integer is wider than the curve')
    der.copy(out, k * size + size - width, start, start + width)
    at += n
  }
  if (at !== der.length) throw new Error('not an ECDSA-Sig-Value')
  return out
}

/**
 * r‖s → DER `ECDSA-Sig-Value` (minimal INTEGERs). `undefined` when the length is not 2 × `size`,
 * which a verifier treats as a failed signature.
 */
export function p1363ToDer(sig: Buffer, size: number): Buffer | undefined {
  if (sig.length !== 2 * size) return undefined
  const ints: [number, number][] = []
  let body = 0
  for (let k = 0; k < 2; k++) {
    let start = k * size
    const end = start + size
    while (start < end - 1 && sig[start] === 0) start++
    const pad = sig[start]! & 0x80 ? 1 : 0
    ints.push([start, pad])
    body += 2 + pad + (end - start)
  }
  const head = body < 0x80 ? 2 : 3
  const der = Buffer.allocUnsafe(head + body)
  let at = 0
  der[at++] = 0x30
  if (head === 3) der[at++] = 0x81
  der[at++] = body
  for (let k = 0; k < 2; k++) {
    const [start, pad] = ints[k]!
    const end = (k + 1) * size
    der[at++] = 0x02
    der[at++] = end - start + pad
    if (pad) der[at++] = 0
    at += sig.copy(der, at, start, end)
  }
  return der
}
