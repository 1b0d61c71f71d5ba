import { randomBytes } from 'node:crypto'
import { TesseraError } from '../errors.js'
import type { Clock } from '../runtime/clock.js'
import { parseTrustDomain } from '../spiffe/id.js'
import { readCertificateExtensions } from '../spiffe/x509-ext.js'
import type { Store } from '../store/store.js'
import { createCertificateAuthority, type Ca, type CaEvent } from './ca.js'
import type { EventSink } from '../audit/event-sink.js'
import { withIssuanceEvents } from '../audit/audited.js'
import { createIssuanceLog } from './issuance-log.js'
import { decodeKek, resolveKeyManagerConfig } from './kek.js'
import { createEnvelopeSealer, type EnvelopeSealer } from './envelope.js'
import { createKeyManager, kekIdOf } from './key-manager.js'
import { loadUpstreamCa } from './upstream.js'
import { X509Certificate } from 'node:crypto'

export interface CaStartOptions {
  store: Store
  /** The embedded store's data dir (where a generated KEK file goes); omitted for in-memory. */
  dataDir?: string
  clock: Clock
  env?: Record<string, string | undefined>
  /** SPIFFE trust domain; default TESSERA_TRUST_DOMAIN, else the store's, else a generated one. */
  trustDomain?: string
  /** Base64 KEK (overrides TESSERA_KEK). */
  kek?: string
  kekFile?: string
  upstream?: { certFile: string; keyFile: string; bundleFile?: string }
  caTtlSeconds?: number
  /** How often the rotation runs (default 10 s). */
  tickMs?: number
  warn: (message: string) => void
  onEvent?: (event: CaEvent) => void
  /** A failed rotation tick (it is retried at the next one). */
  onTickError?: (err: unknown) => void
  /** The audit log: every issued SVID becomes an `issuance.x509` / `issuance.jwt` event. */
  events?: EventSink
}

export interface RunningCa {
  ca: Ca
  trustDomain: string
  /** Where the KEK came from (`TESSERA_KEK`, a file path, `memory`); never the key. */
  kekOrigin: string
  /**
   * Envelope encryption under the same KEK, for managed secrets (src/lifecycle/rotation). With no
   * KEK (the in-memory store) a random per-process key: sealed values die with the process, as the
   * memory CA keys do.
   */
  sealer: EnvelopeSealer
  stop(): void
}

/** The trust domain the store's CA already serves, if any (from its newest CA certificate). */
export async function storedTrustDomain(store: Pick<Store, 'db'>): Promise<string | undefined> {
  const row = await store.db
    .selectFrom('ca_key')
    .select('certificate_pem')
    .where('purpose', '=', 'x509_ca')
    .where('certificate_pem', 'is not', null)
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst()
  if (!row?.certificate_pem) return undefined
  const uri = readCertificateExtensions(Buffer.from(new X509Certificate(row.certificate_pem).raw))
    .uris[0]
  return uri?.startsWith('spiffe://') ? uri.slice('spiffe://'.length) : undefined
}

/**
 * Opens the control plane's CA: resolves the key-encryption key (refusing PostgreSQL without one),
 * picks the trust domain, loads or creates the CA keys, and runs rotation every `tickMs`.
 */
export async function startCa(options: CaStartOptions): Promise<RunningCa> {
  const env = options.env ?? process.env
  const backend = options.store.backend
  const km =
    options.kek !== undefined
      ? { kind: 'disk' as const, kek: decodeKek(options.kek, 'the KEK'), origin: 'option' }
      : resolveKeyManagerConfig({
          env,
          ...(options.kekFile === undefined ? {} : { kekFile: options.kekFile }),
          store: {
            backend,
            ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
          },
          warn: options.warn,
        })
  const stored = await storedTrustDomain(options.store)
  const wanted = options.trustDomain ?? (env.TESSERA_TRUST_DOMAIN || undefined)
  const trustDomain = parseTrustDomain(
    wanted ?? stored ?? `tessera-${randomBytes(4).toString('hex')}.local`,
  )
  if (stored !== undefined && wanted !== undefined && stored !== trustDomain) {
    throw new TesseraError(
      'TSR_CONFIG',
      `the store's CA serves the trust domain ${stored}, not ${trustDomain}: drop --trust-domain or use another store`,
    )
  }
  const ca = await createCertificateAuthority({
    store: options.store,
    keyManager: createKeyManager(km),
    clock: options.clock,
    trustDomain,
    ...(options.caTtlSeconds === undefined ? {} : { caTtlSeconds: options.caTtlSeconds }),
    ...(options.upstream ? { upstream: loadUpstreamCa(options.upstream) } : {}),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    ...(options.events
      ? {
          issuanceLog: withIssuanceEvents(
            createIssuanceLog({ store: options.store }),
            options.events,
          ),
        }
      : {}),
  })
  let running = false
  const timer = setInterval(() => {
    if (running) return
    running = true
    ca.tick()
      .catch((err: unknown) => options.onTickError?.(err))
      .finally(() => {
        running = false
      })
  }, options.tickMs ?? 10_000)
  timer.unref()
  const sealer =
    km.kind === 'disk'
      ? createEnvelopeSealer(km.kek, kekIdOf(km.kek))
      : createEnvelopeSealer(randomBytes(32), `memory:${randomBytes(8).toString('hex')}`)
  return { ca, trustDomain, kekOrigin: km.origin, sealer, stop: () => clearInterval(timer) }
}
