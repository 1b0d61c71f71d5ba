import { createHash, createPrivateKey, createPublicKey } from 'node:crypto'

/**
 * SSH public keys: the wire-format blob (RFC 4253 §6.6, RFC 5656, RFC 8709, PROTOCOL.certkeys),
 * its SHA-256 fingerprint as `ssh-keygen -l` prints it, and its size in bits. Only public material
 * is ever decoded.
 */
export interface SshPublicKey {
  type: string
  bits: number
  /** `SHA256:` + unpadded base64, as `ssh-keygen -l` shows it. */
  fingerprint: string
  /** The same digest in hex, for the inventory's fingerprint column. */
  sha256Hex: string
  certificate: boolean
}

export class SshKeyError extends Error {
  override name = 'SshKeyError'
}

export const keyTypes = new Set([
  'ssh-rsa',
  'ssh-dss',
  'ssh-ed25519',
  'ssh-ed448',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ecdsa-sha2-nistp256@openssh.com',
  'sk-ssh-ed25519@openssh.com',
  'ssh-rsa-cert-v01@openssh.com',
  'ssh-dss-cert-v01@openssh.com',
  'ssh-ed25519-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521-cert-v01@openssh.com',
  'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'sk-ssh-ed25519-cert-v01@openssh.com',
])

/** A cursor over SSH wire data; every read checks bounds. */
export class SshReader {
  private i = 0
  readonly buf: Buffer
  constructor(buf: Buffer) {
    this.buf = buf
  }
  get offset(): number {
    return this.i
  }
  get remaining(): number {
    return this.buf.length - this.i
  }
  u32(): number {
    if (this.i + 4 > this.buf.length) throw new SshKeyError('truncated key data')
    const v = this.buf.readUInt32BE(this.i)
    this.i += 4
    return v
  }
  bytes(): Buffer {
    const n = this.u32()
    if (n > this.buf.length - this.i) throw new SshKeyError('truncated key data')
    const b = this.buf.subarray(this.i, this.i + n)
    this.i += n
    return b
  }
  string(): string {
    return this.bytes().toString('latin1')
  }
  raw(n: number): Buffer {
    if (this.i + n > this.buf.length) throw new SshKeyError('truncated key data')
    const b = this.buf.subarray(this.i, this.i + n)
    this.i += n
    return b
  }
}

function mpintBits(b: Buffer): number {
  let i = 0
  while (i < b.length && b[i] === 0) i++
  if (i === b.length) return 0
  return (b.length - i - 1) * 8 + (32 - Math.clz32(b[i]!))
}

/** Describes a public key blob; throws `SshKeyError` when it is malformed or of another type. */
export function describePublicKeyBlob(blob: Buffer, declaredType?: string): SshPublicKey {
  const r = new SshReader(blob)
  const type = r.string()
  if (declaredType !== undefined && type !== declaredType) {
    throw new SshKeyError(`key data is ${type.slice(0, 40)}, not ${declaredType}`)
  }
  if (!keyTypes.has(type)) throw new SshKeyError('unknown key type')
  const certificate = type.endsWith('-cert-v01@openssh.com')
  const base = certificate ? type.replace('-cert-v01@openssh.com', '') : type
  if (certificate) r.bytes() // nonce
  let bits: number
  if (base === 'ssh-rsa') {
    r.bytes() // e
    bits = mpintBits(r.bytes())
  } else if (base === 'ssh-dss') {
    bits = mpintBits(r.bytes())
    r.bytes()
    r.bytes()
    r.bytes()
  } else if (base === 'ssh-ed25519' || base === 'sk-ssh-ed25519@openssh.com') {
    if (r.bytes().length !== 32) throw new SshKeyError('ed25519 key is not 32 bytes')
    bits = 256
    if (base.startsWith('sk-')) r.string()
  } else if (base === 'ssh-ed448') {
    r.bytes()
    bits = 456
  } else {
    const curve = r.string()
    const m = /^nistp(256|384|521)$/.exec(curve)
    if (!m || !base.includes(curve))
      throw new SshKeyError('ecdsa curve does not match the key type')
    r.bytes()
    bits = Number(m[1])
    if (base.startsWith('sk-')) r.string()
  }
  if (!certificate && r.remaining !== 0) throw new SshKeyError('trailing bytes after the key')
  const digest = createHash('sha256').update(blob).digest()
  return {
    type,
    bits,
    fingerprint: 'SHA256:' + digest.toString('base64').replace(/=+$/, ''),
    sha256Hex: digest.toString('hex'),
    certificate,
  }
}

/** One `authorized_keys` line: options, key, comment. */
export interface AuthorizedKey {
  options: Record<string, string | true>
  key: SshPublicKey
  comment: string
}

/**
 * Parses one authorized_keys line (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"): optional
 * comma-separated options (values in double quotes, `\"` escaped), the key type, the base64 key,
 * and a free comment. Returns undefined for blank and comment lines; throws `SshKeyError` with the
 * column of the problem.
 */
export function parseAuthorizedKeyLine(line: string): AuthorizedKey | undefined {
  const text = line.replace(/\r$/, '')
  let i = 0
  while (text[i] === ' ' || text[i] === '\t') i++
  if (i === text.length || text[i] === '#') return undefined
  const options: Record<string, string | true> = {}
  const firstWord = /^\S+/.exec(text.slice(i))![0]
  if (!keyTypes.has(firstWord)) {
    // Options run to the first unquoted blank.
    for (;;) {
      const nameMatch = /^[A-Za-z0-9-]+/.exec(text.slice(i))
      if (!nameMatch) throw new SshKeyError(`bad option at column ${i + 1}`)
      const name = nameMatch[0].toLowerCase()
      i += nameMatch[0].length
      let value: string | true = true
      if (text[i] === '=') {
        i++
        if (text[i] !== '"')
          throw new SshKeyError(`option ${name} needs a quoted value (column ${i + 1})`)
        i++
        let v = ''
        for (;;) {
          if (i >= text.length) throw new SshKeyError(`unterminated quote in option ${name}`)
          if (text[i] === '\\' && text[i + 1] === '"') {
            v += '"'
            i += 2
            continue
          }
          if (text[i] === '"') {
            i++
            break
          }
          v += text[i]
          i++
        }
        value = v
      }
      // `permitopen` and `from` may repeat; keep them all.
      const old = options[name]
      options[name] =
        typeof old === 'string' && typeof value === 'string' ? `${old},${value}` : value
      if (text[i] === ',') {
        i++
        continue
      }
      if (text[i] === ' ' || text[i] === '\t') break
      throw new SshKeyError(`expected , or a blank after option ${name} (column ${i + 1})`)
    }
    while (text[i] === ' ' || text[i] === '\t') i++
  }
  const rest = text.slice(i)
  const m = /^(\S+)[ \t]+([A-Za-z0-9+/]+={0,2})(?:[ \t]+(.*))?$/.exec(rest)
  if (!m) throw new SshKeyError(`expected key type and base64 key at column ${i + 1}`)
  const type = m[1]!
  if (!keyTypes.has(type)) throw new SshKeyError(`unknown key type at column ${i + 1}`)
  const blob = Buffer.from(m[2]!, 'base64')
  if (blob.toString('base64').replace(/=+$/, '') !== m[2]!.replace(/=+$/, '')) {
    throw new SshKeyError(`key is not valid base64 (column ${i + type.length + 2})`)
  }
  return { options, key: describePublicKeyBlob(blob, type), comment: (m[3] ?? '').trim() }
}

/** What a private key file reveals without its passphrase: the public key, and whether it is encrypted. */
export interface PrivateKeyInfo {
  format: 'openssh' | 'pem'
  encrypted: boolean
  /** Undefined for an encrypted PEM key (its public half is inside the encryption). */
  key?: SshPublicKey
  /** The key type a PEM label names (`RSA`, `EC`, `DSA`), when the key itself cannot be read. */
  labelType?: string
  cipher?: string
}

/**
 * Reads a private key file's public facts. OpenSSH keys (PROTOCOL.key) carry their public key
 * unencrypted before the private section, which is never decoded. Unencrypted PEM keys are loaded
 * with node:crypto only to derive the public key; the private KeyObject is dropped at once.
 */
export function describePrivateKey(pem: string): PrivateKeyInfo {
  const block = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(pem)
  if (!block) throw new SshKeyError('no complete private key block (BEGIN … END)')
  const label = block[1]!
  if (label === 'OPENSSH PRIVATE KEY') {
    const bytes = Buffer.from(block[2]!.replace(/\s+/g, ''), 'base64')
    const magic = 'openssh-key-v1\0'
    if (bytes.subarray(0, magic.length).toString('latin1') !== magic)
      throw new SshKeyError('not an openssh-key-v1 key')
    const r = new SshReader(bytes.subarray(magic.length))
    const cipher = r.string()
    r.string() // kdf name
    r.bytes() // kdf options
    const n = r.u32()
    if (n < 1 || n > 16) throw new SshKeyError('bad key count')
    const key = describePublicKeyBlob(r.bytes())
    return {
      format: 'openssh',
      encrypted: cipher !== 'none',
      key,
      ...(cipher !== 'none' ? { cipher } : {}),
    }
  }
  const m = /^(RSA |EC |DSA |ENCRYPTED |)PRIVATE KEY$/.exec(label)
  if (!m) throw new SshKeyError(`not a private key block (${label.slice(0, 40)})`)
  const labelType = m[1]!.trim() || undefined
  const headers = /Proc-Type: 4,ENCRYPTED/.test(block[2]!)
  if (labelType === 'ENCRYPTED' || headers) {
    const cipher = /DEK-Info: ([A-Z0-9-]+)/.exec(block[2]!)?.[1]
    return {
      format: 'pem',
      encrypted: true,
      ...(labelType && labelType !== 'ENCRYPTED' ? { labelType } : {}),
      ...(cipher ? { cipher } : {}),
    }
  }
  let pub
  try {
    pub = createPublicKey(createPrivateKey(block[0]))
  } catch {
    throw new SshKeyError('PEM private key cannot be parsed')
  }
  return {
    format: 'pem',
    encrypted: false,
    key: describePublicKeyBlob(sshBlobFromJwk(pub.export({ format: 'jwk' }))),
  }
}

function sshString(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b, 'latin1') : b
  const len = Buffer.alloc(4)
  len.writeUInt32BE(data.length)
  return Buffer.concat([len, data])
}

function mpint(b64url: string): Buffer {
  let b = Buffer.from(b64url, 'base64url')
  let i = 0
  while (i < b.length - 1 && b[i] === 0) i++
  b = b.subarray(i)
  return sshString(b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b)
}

/** The SSH wire blob of a public JWK (RSA, EC P-256/384/521, Ed25519). */
export function sshBlobFromJwk(jwk: {
  kty?: string
  crv?: string
  n?: string
  e?: string
  x?: string
  y?: string
}): Buffer {
  if (jwk.kty === 'RSA' && jwk.n && jwk.e)
    return Buffer.concat([sshString('ssh-rsa'), mpint(jwk.e), mpint(jwk.n)])
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && jwk.x) {
    return Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.from(jwk.x, 'base64url'))])
  }
  if (jwk.kty === 'EC' && jwk.x && jwk.y) {
    const curve = { 'P-256': 'nistp256', 'P-384': 'nistp384', 'P-521': 'nistp521' }[jwk.crv ?? '']
    if (curve) {
      const point = Buffer.concat([
        Buffer.from([4]),
        Buffer.from(jwk.x, 'base64url'),
        Buffer.from(jwk.y, 'base64url'),
      ])
      return Buffer.concat([sshString(`ecdsa-sha2-${curve}`), sshString(curve), sshString(point)])
    }
  }
  throw new SshKeyError('key type has no SSH form')
}
