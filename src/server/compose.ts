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
import { createDetectionService, type DetectionService } from '../detection/detection-service.js'
import { createAuditLog, type AuditLog } from '../audit/audit-log.js'
import { createFindingStore } from '../posture/finding-store.js'
import { withTokenExchangeEvents } from '../audit/audited.js'
import type { NatsEventPublisher } from '../audit/nats.js'
import { createAuthzService, defaultAuthzAudience, trustBundles } from '../policy/index.js'
import { createGovernance } from '../policy/governance/governance.js'
import type { EventSink } from '../audit/event-sink.js'
import type { FindingReporter } from '../posture/finding-types.js'
import {
  createSecretsService,
  startRotationScheduler,
} from '../lifecycle/rotation/secrets-service.js'
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
  /** Anomaly detection thresholds and responders (docs/detection.md); defaults apply without. */
  detectionConfigFile?: string
  /**
   * NATS URL (default TESSERA_NATS_URL): every durable audit event is also published to JetStream
   * (stream TESSERA_NATS_STREAM, default TESSERA_EVENTS; subjects TESSERA_NATS_SUBJECT.<type>).
   */
  natsUrl?: string
  /** Managed-secret rotation (docs/rotation.md): scheduler tick (default 10 s). */
  rotation?: { tickMs?: number }
  /** Where audit events go (rotation steps); default: the server log. */
  events?: EventSink
  /** Where findings go (failed rotations); default: the server log. */
  findings?: FindingReporter
  /**
   * Just-in-time credentials (docs/dynamic-credentials.md): a configuration, or its file (default
   * TESSERA_DYNAMIC_CONFIG). Off when neither is given.
   */
  dynamic?: { config?: DynamicConfig; configFile?: string }
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
  /** Anomaly detection and decision usage: the observers the audit log feeds. */
  detection?: DetectionService
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
  let detection: DetectionService | undefined
  let audit: AuditLog | undefined
  let nats: NatsEventPublisher | undefined
  let partitionTimer: NodeJS.Timeout | undefined
  let rotation: ReturnType<typeof startRotationScheduler> | undefined
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
    const events = createAuditLog({
      store,
      clock,
      onObserverError: (err) => logger.error({ err }, 'an audit event observer failed'),
      onPartitionError: (err) => logger.warn({ err }, 'creating audit event partitions failed'),
    })
    audit = events
    partitionTimer = setInterval(() => void events.maintainPartitions(), 3_600_000)
    partitionTimer.unref()
    const natsUrl = options.natsUrl ?? (process.env.TESSERA_NATS_URL || undefined)
    if (natsUrl) {
      const { createNatsEventPublisher } = await import('../audit/nats.js')
      const publisher = await createNatsEventPublisher({
        servers: natsUrl.split(','),
        ...(process.env.TESSERA_NATS_STREAM ? { stream: process.env.TESSERA_NATS_STREAM } : {}),
        ...(process.env.TESSERA_NATS_SUBJECT
          ? { subjectPrefix: process.env.TESSERA_NATS_SUBJECT }
          : {}),
        name: 'tessera-server',
        onError: (err) => logger.error({ err }, 'publishing an audit event to NATS failed'),
      })
      nats = publisher
      events.subscribe(publisher)
      // What a previous run wrote but may not have published; JetStream drops the duplicates.
      const replayed = await publisher.replay(store.db, new Date(clock.now().getTime() - 60_000))
      logger.info({ replayed }, 'audit events published to NATS JetStream')
    }
    ca = await startCa({
      events,
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
    // Governance policy: checked where identities are born (entries, token exchange).
    const governance = createGovernance({ store, events, clock })
    const plainTokenExchange = createTokenExchange({
      governance,
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
    const tokenExchange = withTokenExchangeEvents(plainTokenExchange, events)
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
    detection = createDetectionService({
      store,
      clock,
      ...((options.detectionConfigFile ?? process.env.TESSERA_DETECTION_CONFIG)
        ? { config: options.detectionConfigFile ?? process.env.TESSERA_DETECTION_CONFIG! }
        : {}),
      events,
      findings: createFindingStore({ store, clock }),
      onError: (err) => logger.error({ err }, 'anomaly detection side effect failed'),
    })
    await detection.start()
    // Detection and decision usage read every durable audit batch.
    for (const observer of detection.observers) events.subscribe(observer)
    // Decisions and policy changes go to the audit log (and so to detection and usage).
    const authz = createAuthzService({
      store,
      clock,
      events,
      bundles: trustBundles({ ca: ca.ca, federation }),
      jwtAudience: defaultAuthzAudience(trustDomain),
      onEventError: (err, lost) => logger.error({ err, lost }, 'decision events not recorded'),
    })
    // Managed secrets are sealed under the CA's KEK and rotated by a scheduler in this process.
    const secrets = createSecretsService({
      store,
      sealer: ca.sealer,
      clock,
      inventory,
      events: options.events ?? events,
      findings: options.findings ?? createFindingStore({ store, clock }),
    })
    dynamic = await loadDynamic(options, {
      store,
      clock,
      inventory,
      logger,
      isRevoked: async (spiffeId) => (await revocations.find({ spiffeId })) !== undefined,
      events,
    })
    app = await buildApp({
      authz,
      secrets,
      ...(dynamic ? { dynamic } : {}),
      store,
      inventory,
      governance,
      tokenExchange,
      federation,
      ca: ca.ca,
      clock,
      logger,
      bodyLimit: options.bodyLimit,
      metricsRequireToken: options.metricsRequireToken,
      control: { federatedBundles: () => federation.bundles(), ...options.control },
      events,
      findings: createFindingStore({ store, clock }),
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
    rotation = startRotationScheduler(secrets, {
      intervalMs: options.rotation?.tickMs ?? 10_000,
      onError: (err) => logger.error({ err }, 'rotation scheduler tick failed'),
    })
    const rotating = rotation
    dynamic?.start()
    const jit = dynamic
    const scheduled = discovery
    const listening = app
    const runningCa = ca
    const endpoint = bundleEndpoint
    const timer = federationTimer
    const detecting = detection
    const auditLog = events
    const publisher = nats
    const partitions = partitionTimer
    let closing: Promise<void> | undefined
    return {
      url,
      ...(admin ? { adminToken: admin.token } : {}),
      store,
      ca: runningCa.ca,
      trustDomain: runningCa.trustDomain,
      ...(endpoint ? { bundleEndpointUrl: endpoint.url } : {}),
      detection: detecting,
      close: () =>
        (closing ??= (async () => {
          runningCa.stop()
          rotating.stop()
          clearInterval(timer)
          await endpoint?.close()
          try {
            await scheduled?.stop()
            await listening.close()
            await detecting.stop()
            await jit?.close()
          } finally {
            clearInterval(partitions)
            await auditLog.close()
            await publisher?.close().catch(() => {})
            await store.close()
          }
        })()),
    }
  } catch (err) {
    ca?.stop()
    rotation?.stop()
    clearInterval(federationTimer)
    await bundleEndpoint?.close()
    await discovery?.stop()
    await detection?.stop().catch(() => {})
    await app?.close()
    clearInterval(partitionTimer)
    await audit?.close().catch(() => {})
    await nats?.close().catch(() => {})
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
    /** The audit log: dynamic.created, dynamic.used, dynamic.revoked. */
    events: EventSink
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
  const events: EventSink = options.events ?? deps.events
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
