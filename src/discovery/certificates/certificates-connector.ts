import { extname } from 'node:path'
import type { Observation } from '../../inventory/observation.js'
import { createCollector, type Collector } from '../collector.js'
import type { Connector, ConnectorFactory, DiscoverContext } from '../connector.js'
import { OptionReader } from '../options.js'
import { asInputError, inputError } from '../parse/input-error.js'
import { isJks, JksError, readJks } from './jks.js'
import { Pkcs12Error, readPkcs12Certificates } from './pkcs12.js'
import { collectCertificate, describeCertificate } from './x509.js'

/** Extensions read when a directory is given (a named file is always read). */
export const certificateExtensions = new Set([
  '.pem',
  '.crt',
  '.cer',
  '.cert',
  '.der',
  '.p12',
  '.pfx',
  '.jks',
  '.keystore',
])

export interface Pkcs12Reader {
  (der: Buffer, password: string): Promise<string>
}

/**
 * Certificate files: PEM (any number of certificates; key blocks are skipped), DER, PKCS#12 (with
 * the password from `passwordEnv`) and Java keystores (JKS). One bad file or block is reported
 * with its position and the others are still read.
 */
export function createCertificatesConnectorWith(readPkcs12: Pkcs12Reader): ConnectorFactory {
  return (config) => {
    const o = new OptionReader(config)
    const paths = o.paths('paths', true)
    const password = o.secretFromEnv('passwordEnv')
    const host = o.string('host')
    const problems = o.finish()
    if (problems.length > 0) return { ok: false, problems }
    const connector: Connector = {
      kind: 'certificates',
      name: config.name,
      scope: config.scope ?? 'full',
      discover: (ctx) =>
        discoverCertificates(ctx, config.name, { paths, password, host, readPkcs12 }),
    }
    return { ok: true, connector }
  }
}

export const createCertificatesConnector = createCertificatesConnectorWith(readPkcs12Certificates)

interface Options {
  paths: string[]
  password: string | undefined
  host: string | undefined
  readPkcs12: Pkcs12Reader
}

async function* discoverCertificates(
  ctx: DiscoverContext,
  source: string,
  options: Options,
): AsyncGenerator<Observation> {
  const c = createCollector(source)
  const now = ctx.clock.now()
  for (const root of options.paths) {
    let files: string[]
    try {
      files = await ctx.files.listFiles(root)
    } catch (err) {
      ctx.report(asInputError(err, root))
      continue
    }
    const named = files.length === 1 && files[0] === root
    for (const file of files) {
      if (!named && !certificateExtensions.has(extname(file).toLowerCase())) continue
      ctx.progress?.(`reading ${file}`)
      let bytes: Buffer
      try {
        bytes = await ctx.files.readFile(file)
      } catch (err) {
        ctx.report(asInputError(err, file))
        continue
      }
      await readCertificateFile(ctx, c, file, bytes, options, now)
    }
  }
  yield* c.drain()
}

async function readCertificateFile(
  ctx: DiscoverContext,
  c: Collector,
  file: string,
  bytes: Buffer,
  options: Options,
  now: Date,
): Promise<void> {
  const add = (der: Buffer, position: { line?: number; offset?: number; path?: string }) => {
    try {
      collectCertificate(
        c,
        describeCertificate(der),
        { kind: 'file', file, ...(options.host ? { host: options.host } : {}) },
        now,
      )
    } catch (err) {
      ctx.report(inputError(file, 'not a valid X.509 certificate', position, err))
    }
  }
  const head = bytes.subarray(0, 64).toString('latin1')
  if (head.includes('-----BEGIN ') || bytes.includes('-----BEGIN ')) {
    for (const block of pemBlocks(ctx, file, bytes.toString('latin1'))) {
      if (/^(X509 |TRUSTED )?CERTIFICATE$/.test(block.label)) add(block.der, { line: block.line })
    }
    return
  }
  if (isJks(bytes)) {
    try {
      for (const entry of readJks(bytes)) {
        entry.certificates.forEach((der, k) => add(der, { path: `${entry.alias}[${k}]` }))
      }
    } catch (err) {
      if (err instanceof JksError)
        ctx.report(inputError(file, err.message, { offset: err.offset }, err))
      else throw err
    }
    return
  }
  if (bytes[0] !== 0x30) {
    ctx.report(inputError(file, 'neither PEM, DER, PKCS#12 nor a Java keystore', { offset: 0 }))
    return
  }
  const declared = derLength(bytes)
  if (declared === undefined || declared > bytes.length) {
    ctx.report(
      inputError(
        file,
        declared === undefined
          ? 'bad DER length'
          : `truncated DER: declares ${declared} bytes, the file has ${bytes.length}`,
        { offset: declared === undefined ? 1 : bytes.length },
      ),
    )
    return
  }
  if (isPfx(bytes)) {
    if (options.password === undefined) {
      ctx.report(inputError(file, 'PKCS#12 file needs a password (option passwordEnv)'))
      return
    }
    let pem: string
    try {
      pem = await options.readPkcs12(bytes, options.password)
    } catch (err) {
      const why = err instanceof Pkcs12Error ? err.message : 'cannot be read'
      ctx.report(inputError(file, `PKCS#12: ${why}`, {}, err))
      return
    }
    for (const block of pemBlocks(ctx, file, pem)) {
      if (block.label === 'CERTIFICATE') add(block.der, {})
    }
    return
  }
  add(bytes, { offset: 0 })
}

interface PemBlock {
  label: string
  line: number
  der: Buffer
}

/** PEM blocks with the line of their BEGIN; a block without END or with bad base64 is reported. */
export function pemBlocks(
  ctx: Pick<DiscoverContext, 'report'>,
  file: string,
  text: string,
): PemBlock[] {
  const out: PemBlock[] = []
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const begin = /^-----BEGIN ([A-Z0-9 ]+)-----\s*$/.exec(lines[i]!)
    if (!begin) continue
    const label = begin[1]!
    const start = i
    let body = ''
    let ended = false
    let bad = false
    for (i++; i < lines.length; i++) {
      const l = lines[i]!.trim()
      if (l === `-----END ${label}-----`) {
        ended = true
        break
      }
      if (l.startsWith('-----')) break
      // Headers of encrypted PEM (Proc-Type, DEK-Info) are not base64.
      if (/^[A-Za-z-]+: /.test(l)) continue
      if (!/^[A-Za-z0-9+/=]*$/.test(l)) bad = true
      body += l
    }
    if (!ended) {
      ctx.report(
        inputError(file, `PEM block ${label} has no END line (file truncated?)`, {
          line: start + 1,
        }),
      )
      continue
    }
    if (bad || body.length === 0) {
      ctx.report(inputError(file, `PEM block ${label} is not valid base64`, { line: start + 1 }))
      continue
    }
    out.push({ label, line: start + 1, der: Buffer.from(body, 'base64') })
  }
  return out
}

/** Total length (header + content) of the outer DER element, undefined when malformed. */
export function derLength(bytes: Buffer): number | undefined {
  if (bytes.length < 2) return undefined
  const first = bytes[1]!
  if (first < 0x80) return 2 + first
  const n = first & 0x7f
  if (n === 0 || n > 4 || bytes.length < 2 + n) return undefined
  let len = 0
  for (let k = 0; k < n; k++) len = len * 256 + bytes[2 + k]!
  return 2 + n + len
}

/** A PFX is SEQUENCE { INTEGER 3, ContentInfo … }; a certificate starts SEQUENCE { SEQUENCE … }. */
function isPfx(bytes: Buffer): boolean {
  const header = derLength(bytes) === undefined ? 0 : bytes[1]! < 0x80 ? 2 : 2 + (bytes[1]! & 0x7f)
  return bytes[header] === 0x02 && bytes[header + 1] === 0x01 && bytes[header + 2] === 0x03
}
