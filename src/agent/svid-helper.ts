import { spawn, type ChildProcess } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { TesseraError } from '../errors.js'
import {
  createWorkloadApiClient,
  type WorkloadApiClient,
  type X509SvidResponseMessage,
} from '../workload-api/client.js'

/** Splits the proto's concatenated DER certificates. Throws on anything that is not DER SEQUENCEs. */
export function splitDerCertificates(buf: Buffer): Buffer[] {
  const out: Buffer[] = []
  let off = 0
  while (off < buf.length) {
    if (buf[off] !== 0x30 || off + 2 > buf.length) throw new Error('not a DER certificate sequence')
    let len = buf[off + 1]!
    let hdr = 2
    if (len & 0x80) {
      const n = len & 0x7f
      if (n === 0 || n > 4 || off + 2 + n > buf.length) throw new Error('bad DER length')
      len = 0
      for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i]!
      hdr = 2 + n
    }
    if (off + hdr + len > buf.length) throw new Error('truncated DER certificate')
    out.push(buf.subarray(off, off + hdr + len))
    off += hdr + len
  }
  return out
}

function pemBlock(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n')
  return `-----BEGIN ${label}-----\n${b64.endsWith('\n') ? b64 : b64 + '\n'}-----END ${label}-----\n`
}

export interface WrittenSvid {
  spiffeId: string
  serial: string
  notAfter: string
  files: { svid: string; key: string; bundle: string }
}

/** Writes a file atomically (temp file + rename) with the given mode. */
async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, data, { mode })
  await chmod(tmp, mode)
  await rename(tmp, path)
}

/**
 * Writes the default (first) SVID of a FetchX509SVID response as PEM: `svid.pem` (leaf first, then
 * intermediates), `svid_key.pem` (PKCS#8, mode 0600) and `bundle.pem` (own trust domain's roots, then
 * federated ones). The key is written before the certificate so a reader never pairs a new
 * certificate with an old key for long.
 */
export async function writeSvidFiles(
  outDir: string,
  msg: X509SvidResponseMessage,
): Promise<WrittenSvid> {
  const svid = msg.svids[0]
  if (svid === undefined) throw new TesseraError('TSR_VALIDATION', 'the response holds no SVID')
  const chain = splitDerCertificates(svid.x509_svid)
  const leaf = new X509Certificate(chain[0]!)
  const roots = [
    ...splitDerCertificates(svid.bundle),
    ...Object.values(msg.federated_bundles ?? {}).flatMap((b) => splitDerCertificates(b)),
  ]
  await mkdir(outDir, { recursive: true })
  const files = {
    svid: join(outDir, 'svid.pem'),
    key: join(outDir, 'svid_key.pem'),
    bundle: join(outDir, 'bundle.pem'),
  }
  await writeAtomic(files.key, pemBlock('PRIVATE KEY', svid.x509_svid_key), 0o600)
  await writeAtomic(files.svid, chain.map((c) => pemBlock('CERTIFICATE', c)).join(''), 0o644)
  await writeAtomic(files.bundle, roots.map((c) => pemBlock('CERTIFICATE', c)).join(''), 0o644)
  return {
    spiffeId: svid.spiffe_id,
    serial: leaf.serialNumber.toLowerCase(),
    notAfter: new Date(leaf.validTo).toISOString(),
    files,
  }
}

export interface SvidHelperOptions {
  socketPath: string
  outDir: string
  /** Run through /bin/sh -c after the first write; signalled after every later write. */
  cmd?: string
  signal?: NodeJS.Signals
  /** Exit after the first write. */
  once?: boolean
  onEvent?: (event: Record<string, unknown>) => void
  /** Stops the helper (and the command). */
  abort?: AbortSignal
  /** Reconnect delay bounds. */
  retryMs?: number
  maxRetryMs?: number
  createClient?: (socketPath: string) => WorkloadApiClient
}

/**
 * spiffe-helper's job: keep PEM files fresh from the open FetchX509SVID stream, start a command once
 * the first SVID is on disk, and signal it on every rotation. Reconnects with backoff when the agent
 * goes away. Resolves with the command's exit code (or 0).
 */
export function runSvidHelper(opts: SvidHelperOptions): Promise<number> {
  const emit = opts.onEvent ?? (() => {})
  const signal = opts.signal ?? 'SIGHUP'
  const retryBase = opts.retryMs ?? 500
  const retryMax = opts.maxRetryMs ?? 30_000
  const client = (opts.createClient ?? createWorkloadApiClient)(opts.socketPath)
  return new Promise<number>((resolve, reject) => {
    let child: ChildProcess | undefined
    let cancel: (() => void) | undefined
    let attempt = 0
    let done = false
    let timer: NodeJS.Timeout | undefined
    let chain = Promise.resolve()

    const finish = (code: number, err?: unknown): void => {
      if (done) return
      done = true
      if (timer !== undefined) clearTimeout(timer)
      cancel?.()
      client.close()
      if (child !== undefined && child.exitCode === null) child.kill('SIGTERM')
      if (err !== undefined) reject(err instanceof Error ? err : new Error(String(err)))
      else resolve(code)
    }
    opts.abort?.addEventListener('abort', () => finish(0), { once: true })

    const connect = (): void => {
      if (done) return
      cancel = client.watchX509Svids(
        (msg) => {
          attempt = 0
          chain = chain.then(async () => {
            if (done) return
            const w = await writeSvidFiles(opts.outDir, msg)
            emit({ event: 'written', ...w })
            if (opts.once === true) return finish(0)
            if (opts.cmd === undefined) return
            if (child === undefined) {
              child = spawn('/bin/sh', ['-c', opts.cmd], { stdio: 'inherit' })
              emit({ event: 'started', pid: child.pid, cmd: opts.cmd })
              child.on('exit', (code, sig) => {
                emit({ event: 'exited', code, signal: sig })
                finish(code ?? 1)
              })
              child.on('error', (err) => finish(1, err))
            } else if (child.exitCode === null) {
              child.kill(signal)
              emit({ event: 'signalled', pid: child.pid, signal })
            }
          })
          chain.catch((err: unknown) => finish(1, err))
        },
        (err) => {
          if (done) return
          emit({ event: 'stream_error', code: grpc.status[err.code], details: err.details })
          if (err.code === grpc.status.INVALID_ARGUMENT) {
            return finish(1, new TesseraError('TSR_VALIDATION', `Workload API: ${err.details}`))
          }
          attempt++
          const delay = Math.min(retryMax, retryBase * 2 ** Math.min(attempt - 1, 10))
          timer = setTimeout(connect, delay)
        },
      )
    }
    connect()
  })
}
