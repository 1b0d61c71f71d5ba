import type { FastifyInstance } from 'fastify'
import type { DestinationStream } from 'pino'
import { pino } from 'pino'
import { startCa, type CaStartOptions, type RunningCa } from '../ca/start.js'
import { TesseraError } from '../errors.js'
import { createJwtSvidVerifier } from '../exchange/jwt-svid-verifier.js'
import { createOidcExchangeVerifier, type OidcExchangeIssuer } from '../exchange/oidc-verifier.js'
import { createTokenExchange, type TokenExchangePolicy } from '../exchange/token-exchange.js'
import {
  startBundleEndpoint,
  type BundleEndpoint,
  type BundleEndpointConfig,
} from '../federation/bundle-endpoint.js'
import { createBundleFetcher } from '../federation/bundle-fetcher.js'
import { createFederation } from '../federation/federation.js'
import { createRevocationList } from '../lifecycle/revocations.js'
import { parseBundle } from '../spiffe/bundle.js'
import { createInventory } from '../inventory/index.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import { openStore, type Store } from '../store/store.js'
import { buildApp, redactPaths, type AppDeps } from './app.js'
import { ensureAdminToken } from './auth/api-tokens.js'
import type { Inventory } from '../inventory/inventory-types.js'
import type { DiscoveryScheduler } from '../discovery/scheduler.js'
import type { EventSink } from '../audit/event-sink.js'
import type { DynamicCredentials } from '../lifecycle/dynamic/dynamic-credentials.js'
import type { DynamicConfig } from '../lifecycle/dynamic/dynamic-config.js'

export interface ServerOptions {
  /** Embedded store directory (default ./.tessera); ignored when a database URL is given. */
  dataDir?: string
  /** PostgreSQL URL; defaults to TESSERA_DATABASE_URL when no dataDir is given. */
  databaseUrl?: string
  /** PostgreSQL schema to use instead of `public` (created when missing). */
  databaseSchema?: string
  /** Default 127.0.0.1: exposing the API elsewhere is a deliberate choice. */
  host?: string
  /** Default 8750; 0 picks a free port. */
  port?: number
  /** pino level (default info). */
  logLevel?: string
  /** Where JSON logs go (default stdout). */
  log?: DestinationStream
  bodyLimit?: number
  metricsRequireToken?: boolean
  clock?: Clock
  /** The CA: trust domain, KEK (else TESSERA_KEK / TESSERA_KEK_FILE), upstream CA, CA TTL. */
  ca?: Pick<CaStartOptions, 'trustDomain' | 'kek' | 'kekFile' | 'upstream' | 'caTtlSeconds' | 'env'>
  /** Serve this trust domain's SPIFFE bundle endpoint for federation peers (off by default). */
  bundleEndpoint?: { host?: string; port: number; config: BundleEndpointConfig }
  /** Token exchange: OIDC issuers accepted (CI, IdPs) and the policy (TTL, chain depth, audiences). */
  tokenExchange?: TokenExchangePolicy & { oidc?: OidcExchangeIssuer[] }
  /** How often due federation relationships are polled (default 5 s; each follows its hint). */
  federationPollMs?: number
  /** SPIFFE control plane: CA, node attestors (docs/attestation.md). */
  control?: AppDeps['control']
  /** Discovery sources file (docs/connectors.md): sources with an `interval` run on a schedule. */
  sourcesFile?: string
  /**
   * Just-in-time credentials (docs/dynamic-credentials.md): a configuration, or its file (default
   * TESSERA_DYNAMIC_CONFIG). Off when neither is given.
   */
  dynamic?: { config?: DynamicConfig; configFile?: string }
  /** Where audit events go (the audit log); default: JSON log lines with `audit: true`. */
  events?: EventSink
}

export interface RunningServer {
  url: string
  /** Only on the first start of a store: the admin token, to show once. Never logged. */
  adminToken?: string
  store: Store
  /** The trust domain's CA (rotating in the background until close). */
  ca: RunningCa['ca']
  trustDomain: string
  /** The federation bundle endpoint's URL, when one is served. */
  bundleEndpointUrl?: string
  /** Stops accepting connections, drains in-flight requests, then closes the store. */
  close(): Promise<void>
}

export const defaultPort = 8750
export const defaultDataDir = './.tessera'

/** The control plane's composition root: store → inventory → app → listen. */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const clock = options.clock ?? systemClock
  // An explicit data dir wins over the environment's database URL; an explicit URL wins over both.
  const databaseUrl =
    options.databaseUrl ??
    (options.dataDir === undefined ? process.env.TESSERA_DATABASE_URL || undefined : undefined)
  const store = await openStore(
    databaseUrl
      ? { backend: 'postgres', url: databaseUrl, schema: options.databaseSchema }
      : { backend: 'pglite', dataDir: options.dataDir ?? defaultDataDir },
  )
  let app: FastifyInstance | undefined
  let ca: RunningCa | undefined
  let bundleEndpoint: BundleEndpoint | undefined
  let federationTimer: NodeJS.Timeout | undefined
  let discovery: DiscoveryScheduler | undefined
  let dynamic: DynamicCredentials | undefined
  try {
    const logger = pino(
      {
        level: options.logLevel ?? 'info',
        redact: { paths: redactPaths, censor: '[redacted]' },
      },
      options.log ?? pino.destination(1),
    )
    const inventory = createInventory({ store, clock })
    ca = await startCa({
      ...options.ca,
      store,
      ...(databaseUrl ? {} : { dataDir: options.dataDir ?? defaultDataDir }),
      clock,
      warn: (message) => logger.warn(message),
      onEvent: (event) => logger.info(event, 'CA key rotation'),
      onTickError: (err) => logger.error({ err }, 'CA rotation failed; retrying at the next tick'),
    })
    const revocations = createRevocationList({ store, clock })
    const trustDomain = ca.trustDomain
    const tokenExchange = createTokenExchange({
      ca: ca.ca,
      verifiers: [
        createJwtSvidVerifier({
          ca: ca.ca,
          audience: `spiffe://${trustDomain}/tessera/token-exchange`,
        }),
        ...(options.tokenExchange?.oidc?.length
          ? [
              createOidcExchangeVerifier({
                issuers: options.tokenExchange.oidc,
                trustDomain,
                clock,
              }),
            ]
          : []),
      ],
      ...(options.tokenExchange ? { policy: options.tokenExchange } : {}),
      isRevoked: async (q) => (await revocations.find(q)) !== undefined,
      clock,
    })
    const runningCaForBundle = ca.ca
    const federation = createFederation({
      store,
      clock,
      ownTrustDomain: trustDomain,
      parseBundle,
      fetchBundle: createBundleFetcher(),
      ownBundle: () => runningCaForBundle.bundle(),
    })
    let polling = false
    federationTimer = setInterval(() => {
      if (polling) return
      polling = true
      federation
        .pollDue()
        .then(
          (outcomes) => {
            for (const o of outcomes) {
              if (o.outcome === 'failed') logger.warn(o, 'federated bundle fetch failed')
              else if (o.outcome === 'updated') logger.info(o, 'federated bundle updated')
            }
          },
          (err: unknown) => logger.error({ err }, 'federation polling failed'),
        )
        .finally(() => {
          polling = false
        })
    }, options.federationPollMs ?? 5000)
    federationTimer.unref()
    if (options.bundleEndpoint) {
      bundleEndpoint = await startBundleEndpoint({
        host: options.bundleEndpoint.host ?? '0.0.0.0',
        port: options.bundleEndpoint.port,
        config: options.bundleEndpoint.config,
        ca: ca.ca,
        clock,
        onError: (err) => logger.error({ err }, 'bundle endpoint error'),
      })
      logger.info(
        { url: bundleEndpoint.url, spiffeId: bundleEndpoint.spiffeId },
        'SPIFFE bundle endpoint listening',
      )
    }
    // Loaded before listening, so a bad sources file stops the start; scheduled after it.
    discovery = options.sourcesFile
      ? await loadDiscovery(options.sourcesFile, inventory, clock, logger)
      : undefined
    dynamic = await loadDynamic(options, {
      store,
      clock,
      inventory,
      logger,
      isRevoked: async (spiffeId) => (await revocations.find({ spiffeId })) !== undefined,
    })
    app = await buildApp({
      ...(dynamic ? { dynamic } : {}),
      store,
      inventory,
      tokenExchange,
      federation,
      ca: ca.ca,
      clock,
      logger,
      bodyLimit: options.bodyLimit,
      metricsRequireToken: options.metricsRequireToken,
      control: { federatedBundles: () => federation.bundles(), ...options.control },
    })
    const host = options.host ?? '127.0.0.1'
    const port = options.port ?? defaultPort
    await app.listen({ host, port }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL') {
        const why = {
          EADDRINUSE: 'the port is in use',
          EACCES: 'permission denied',
          EADDRNOTAVAIL: 'no such local address',
        }[err.code]
        throw new TesseraError(
          'TSR_CONFIG',
          `cannot listen on ${host}:${port}: ${why} (choose another with --host/--port)`,
          { cause: err },
        )
      }
      throw err
    })
    const address = app.server.address()
    const url =
      typeof address === 'object' && address !== null
        ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
        : String(address)
    logger.info(
      { url, store: store.location, backend: store.backend, trustDomain: ca.trustDomain },
      'tessera server listening',
    )
    // After listen: a token made before a failed listen would never be shown, yet would stop the
    // next start from making one.
    const admin = await ensureAdminToken(store, clock)
    if (admin) logger.info({ tokenId: admin.id }, 'created the first admin api token')
    discovery?.start()
    dynamic?.start()
    const jit = dynamic
    const scheduled = discovery
    const listening = app
    const runningCa = ca
    const endpoint = bundleEndpoint
    const timer = federationTimer
    let closing: Promise<void> | undefined
    return {
      url,
      ...(admin ? { adminToken: admin.token } : {}),
      store,
      ca: runningCa.ca,
      trustDomain: runningCa.trustDomain,
      ...(endpoint ? { bundleEndpointUrl: endpoint.url } : {}),
      close: () =>
        (closing ??= (async () => {
          runningCa.stop()
          clearInterval(timer)
          await endpoint?.close()
          try {
            await scheduled?.stop()
            await listening.close()
            await jit?.close()
          } finally {
            await store.close()
          }
        })()),
    }
  } catch (err) {
    ca?.stop()
    clearInterval(federationTimer)
    await bundleEndpoint?.close()
    await discovery?.stop()
    await app?.close()
    await dynamic?.close()
    await store.close()
    throw err
  }
}

/** Loads the sources file (a bad one stops the start, naming every problem); not yet started. */
async function loadDiscovery(
  file: string,
  inventory: Inventory,
  clock: Clock,
  logger: pino.Logger,
): Promise<DiscoveryScheduler> {
  const [{ loadSourcesFile }, { createDiscoveryScheduler }, { nodeFileReader }, { nodeTlsProbe }] =
    await Promise.all([
      import('../discovery/sources.js'),
      import('../discovery/scheduler.js'),
      import('../discovery/files.js'),
      import('../discovery/certificates/tls-probe.js'),
    ])
  const sources = await loadSourcesFile(file, process.env)
  const scheduler = createDiscoveryScheduler({
    sources,
    runner: { inventory, context: { clock, files: nodeFileReader, tls: nodeTlsProbe } },
    log: logger.child({ component: 'discovery' }),
  })
  logger.info(
    { sources: sources.filter((s) => s.intervalMs !== undefined).map((s) => s.name) },
    'discovery schedule loaded',
  )
  return scheduler
}

/** Dynamic credentials from the options or TESSERA_DYNAMIC_CONFIG; undefined when not configured. */
async function loadDynamic(
  options: ServerOptions,
  deps: {
    store: Store
    clock: Clock
    inventory: Inventory
    logger: pino.Logger
    isRevoked: (spiffeId: string) => Promise<boolean>
  },
): Promise<DynamicCredentials | undefined> {
  const file = options.dynamic?.configFile ?? (process.env.TESSERA_DYNAMIC_CONFIG || undefined)
  if (!options.dynamic?.config && !file) return undefined
  const [dyn, { loadStoreKey }, { fingerprintSecret }] = await Promise.all([
    import('../lifecycle/dynamic/index.js'),
    import('../scanner/store-key.js'),
    import('../scanner/fingerprint.js'),
  ])
  const config = options.dynamic?.config ?? (await dyn.loadDynamicConfig(file!))
  const log = deps.logger.child({ component: 'dynamic' })
  // Until the audit log is wired here, events are JSON log lines marked `audit: true`.
  const events: EventSink = options.events ?? {
    append: async (event) => log.info({ audit: true, event }, event.type),
    appendMany: async (batch) => {
      for (const event of batch) log.info({ audit: true, event }, event.type)
    },
  }
  let key: Promise<Buffer> | undefined
  const service = dyn.createDynamicCredentials({
    store: deps.store,
    clock: deps.clock,
    backends: dyn.createDynamicBackends(config),
    events,
    inventory: deps.inventory,
    // The scanner's key: a leaked JIT password found by a scan has the lease's fingerprint.
    fingerprint: async (password) =>
      fingerprintSecret(await (key ??= loadStoreKey(deps.store)), password),
    isRevoked: deps.isRevoked,
    reaperIntervalMs: config.reaperIntervalSeconds * 1000,
    pendingGraceMs: config.pendingGraceSeconds * 1000,
    ...(config.installation ? { installation: config.installation } : {}),
    onError: (err, context) => log.warn({ err, ...context }, 'dynamic credentials: reaper problem'),
  })
  log.info(
    { backends: config.backends.map((b) => ({ name: b.name, type: b.type })) },
    'dynamic credentials enabled',
  )
  return service
}
