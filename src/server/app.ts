import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
} from 'fastify'
import type { DestinationStream, LoggerOptions } from 'pino'
import type { CertificateAuthority } from '../ca/ca-types.js'
import type { Inventory } from '../inventory/inventory-types.js'
import type { TokenExchange } from '../exchange/token-exchange.js'
import type { Federation } from '../federation/federation.js'
import { createRevocationList } from '../lifecycle/revocations.js'
import { ObservationBatchSchema } from '../inventory/observation-schema.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import type { Store } from '../store/store.js'
import type { TesseraApp } from './app-types.js'
import { registerAuthHook } from './auth/auth-hook.js'
import { registerErrorHandling } from './plugins/error-handler.js'
import { registerMetrics } from './plugins/metrics.js'
import { problemResponses } from './schemas.js'
import { registerBundleRoutes } from './routes/bundle.js'
import { registerCaAdminRoutes } from './routes/ca-admin.js'
import { registerExportRoutes } from './routes/export.js'
import { registerFederationRoutes } from './routes/federation.js'
import { registerGraphRoutes } from './routes/graph.js'
import { registerHealthRoutes } from './routes/health.js'
import { registerIdentityRoutes } from './routes/identities.js'
import { registerObservationRoutes } from './routes/observations.js'
import { registerRevocationRoutes } from './routes/revocations.js'
import { registerRunRoutes } from './routes/runs.js'
import { registerStatsRoutes } from './routes/stats.js'
import { registerTokenExchangeRoute } from './routes/token.js'
import { registerTokenRoutes } from './routes/tokens.js'
import { registerControlPlaneRoutes, type ControlPlaneDeps } from './routes/agent-api.js'
import { createAccessQueries } from '../audit/access-queries.js'
import { registerAccessRoutes } from './routes/access.js'
import { registerUsageRoutes } from './routes/usage.js'
import {
  createInventoryExecutors,
  createOffboarding,
  type Offboarding,
} from '../lifecycle/offboarding/index.js'
import { createPosture, type Posture } from '../posture/index.js'
import { registerFindingRoutes } from './routes/findings.js'
import { registerOffboardingRoutes } from './routes/offboarding.js'
import { registerAdminAuditHook, registerAuditRoutes } from './routes/audit.js'
import {
  createAuthzService,
  defaultAuthzAudience,
  trustBundles,
  type AuthzService,
} from '../policy/index.js'
import { registerAuthorizeRoutes } from './routes/authorize.js'
import { registerCedarPolicyRoutes } from './routes/cedar-policies.js'
import { discardEvents, type EventSink } from '../audit/event-sink.js'
import { directoryCodeowners } from '../inventory/owners/codeowners.js'
import { createOwners } from '../inventory/owners/owners.js'
import { createScimService } from '../inventory/owners/scim-service.js'
import { createGovernance, type Governance } from '../policy/governance/governance.js'
import type { FindingReporter } from '../posture/finding-types.js'
import { createReports } from '../reports/reports.js'
import { registerGovernanceRoutes } from './routes/governance.js'
import { registerOwnerRoutes } from './routes/owners.js'
import { registerReportRoutes } from './routes/reports.js'
import { registerScimRoutes } from './routes/scim.js'
import { registerSecretRoutes } from './routes/secrets.js'
import type { SecretsService } from '../lifecycle/rotation/secrets-service.js'
import type { DynamicCredentials } from '../lifecycle/dynamic/dynamic-credentials.js'
import { createWorkloadAuthenticator } from '../lifecycle/dynamic/workload-auth.js'
import { registerDynamicRoutes } from './routes/dynamic.js'

export interface AppDeps {
  store: Store
  inventory: Inventory
  /** The trust domain's CA; without one the bundle routes answer 404. */
  ca?: CertificateAuthority
  clock?: Clock
  /** pino options (with an optional destination `stream`), or a logger instance; omitted: no logs. */
  logger?: (LoggerOptions & { stream?: DestinationStream }) | FastifyBaseLogger
  /** Largest request body in bytes (default 32 MiB). */
  bodyLimit?: number
  /** RFC 8693 token exchange at POST /v1/token; without it the endpoint says it is not enabled. */
  tokenExchange?: TokenExchange
  /** Federation relationships (needs the CA's trust domain); without it those routes say so. */
  federation?: Federation
  /** /metrics needs a read token even from loopback (default false: loopback callers are let in). */
  metricsRequireToken?: boolean
  /** SPIFFE control plane: the CA, node attestors and agent API options (docs/attestation.md). */
  control?: ControlPlaneDeps
  /** Posture rules and findings (default: the built-in rules with default thresholds). */
  posture?: Posture
  /** Offboarding (default: inventory-backed executors, auditing to `events`). */
  offboarding?: Offboarding
  /** The audit log: admin API calls, revocations, entry changes, offboarding steps are recorded through it. */
  events?: EventSink
  /** Cedar authorization (POST /v1/authorize, policy admin); built over the store when absent. */
  authz?: AuthzService
  /** Governance policy (docs/governance-policy.md); made over the store when absent. */
  governance?: Governance
  /** Where policy evaluation records its findings (the posture finding store). */
  findings?: FindingReporter
  /** Checkouts whose CODEOWNERS files ownership resolution reads (docs/ownership.md). */
  codeownersDir?: string
  /** Managed secrets and rotation (docs/rotation.md); without it those routes answer 503. */
  secrets?: SecretsService
  /** Just-in-time credentials (docs/dynamic-credentials.md); without it those routes answer 503. */
  dynamic?: DynamicCredentials
}

export const defaultBodyLimit = 32 * 1024 * 1024

/** Request ids a caller may choose; anything else is replaced, so log lines cannot be forged. */
const requestIdPattern = /^[A-Za-z0-9._-]{1,128}$/

/**
 * Paths pino blanks in every log line. Fastify's request serialiser logs no headers, but a
 * `{ req }` or error logged elsewhere might, and a token must never reach a log.
 */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'password',
  '*.password',
]

const packageVersion = (createRequire(import.meta.url)('../../package.json') as { version: string })
  .version

/** Builds the control-plane HTTP app without listening (tests use `inject`). */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const clock = deps.clock ?? systemClock
  const app: TesseraApp = Fastify({
    ...loggerOptions(deps.logger),
    bodyLimit: deps.bodyLimit ?? defaultBodyLimit,
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id']
      return typeof incoming === 'string' && requestIdPattern.test(incoming)
        ? incoming
        : randomUUID()
    },
    // Keep-alive sockets would otherwise hold close() open until they time out.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>()

  // TypeBox's compiler: bodies are checked as sent (no type coercion, a string is not a list);
  // query strings and params are converted (`limit=5` becomes 5) before the check.
  app.setValidatorCompiler(TypeBoxValidatorCompiler)
  // Only JSON (and NDJSON where a route adds it) is accepted; anything else is a 415.
  app.removeContentTypeParser('text/plain')

  app.addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id)
  })

  registerErrorHandling(app)
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Tessera control plane API',
        version: packageVersion,
        description:
          'Machine identity inventory and control plane. Errors are RFC 9457 application/problem+json; see docs/errors.md.',
      },
      tags: [
        { name: 'identities', description: 'Non-human identities' },
        { name: 'graph', description: 'The identity graph' },
        { name: 'inventory', description: 'Ingestion, export and counts' },
        { name: 'runs', description: 'Discovery runs' },
        { name: 'tokens', description: 'API tokens (admin)' },
        {
          name: 'revocation',
          description: 'The deny-list of SPIFFE IDs, serials, JWT ids and agents',
        },
        { name: 'spiffe', description: 'SPIFFE trust bundle (public)' },
        { name: 'federation', description: 'SPIFFE federation with other trust domains' },
        { name: 'token exchange', description: 'RFC 8693 token exchange and delegation' },
        { name: 'entries', description: 'SPIFFE registration entries' },
        { name: 'agents', description: 'Node agents, join tokens (admin)' },
        { name: 'agent-api', description: 'What attested node agents call (agent proof)' },
        { name: 'health', description: 'Probes and metrics' },
        { name: 'access', description: 'Temporal access queries: who could, who did, reach' },
        { name: 'findings', description: 'Posture findings, rules and risk scores' },
        { name: 'offboarding', description: 'Offboarding plans for people, teams and services' },
        { name: 'audit', description: 'The hash-chained audit log' },
        {
          name: 'authorization',
          description: 'Cedar decisions and policies (docs/authorization.md)',
        },
        { name: 'owners', description: 'People, teams and ownership of identities' },
        { name: 'scim', description: 'SCIM 2.0 provisioning of people and teams (scim scope)' },
        { name: 'governance', description: 'Governance policy: versions, dry run, evaluation' },
        { name: 'reports', description: "Owner's view and compliance summary (JSON, CSV, HTML)" },
        { name: 'secrets', description: 'Managed secrets and their rotation (admin)' },
        {
          name: 'dynamic',
          description: 'Just-in-time credentials for workloads, and their leases',
        },
      ],
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API token `tsr_<id>_<secret>` with the scope the operation needs',
          },
          agentProof: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description:
              'A per-request proof signed with the agent SVID key, the SVID in x5c (docs/attestation.md)',
          },
        },
      },
    },
    transform: ({ schema, url }) => {
      if (!schema || schema.hide) return { schema, url }
      // Any operation can fail with a 500 problem; say so once here rather than in every route.
      const response = { ...problemResponses(500), ...(schema.response as object | undefined) }
      // The body is validated item by item in the handler; the document shows the real item schema.
      const body = url === '/v1/observations' ? ObservationBatchSchema : schema.body
      return { schema: { ...schema, response, ...(body ? { body } : {}) } as typeof schema, url }
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })

  registerAuthHook(app, { store: deps.store, clock })
  if (deps.events) registerAdminAuditHook(app, { events: deps.events })
  const { registry } = registerMetrics(app, { inventory: deps.inventory })

  const { inventory, store } = deps
  // Each group in its own encapsulated scope, so a content-type parser (NDJSON) stays with its route.
  await app.register(async (scope) => {
    registerHealthRoutes(scope, {
      store,
      registry,
      metricsRequireToken: deps.metricsRequireToken ?? false,
    })
  })
  await app.register(async (scope) => registerIdentityRoutes(scope, { inventory }))
  await app.register(async (scope) => registerGraphRoutes(scope, { inventory }))
  await app.register(async (scope) => registerObservationRoutes(scope, { inventory }))
  await app.register(async (scope) => registerRunRoutes(scope, { inventory }))
  await app.register(async (scope) => registerExportRoutes(scope, { inventory }))
  await app.register(async (scope) => registerStatsRoutes(scope, { inventory }))
  await app.register(async (scope) => registerTokenRoutes(scope, { store, clock }))
  const dynamic = deps.dynamic
  const revocations = createRevocationList({
    store,
    clock,
    ...(deps.events ? { events: deps.events } : {}),
    // Revoking a workload's SPIFFE ID also revokes its dynamic credentials, before answering.
    ...(dynamic
      ? {
          onAdded: async (entry) => {
            if (entry.targetType !== 'spiffe_id') return
            await dynamic.revokeWorkload(entry.value, {
              actor: entry.createdBy ?? 'system',
              reason: 'spiffe-id-revoked',
            })
          },
        }
      : {}),
  })
  await app.register(async (scope) => registerRevocationRoutes(scope, { revocations }))
  await app.register(async (scope) =>
    registerTokenExchangeRoute(scope, { exchange: deps.tokenExchange }),
  )
  await app.register(async (scope) => registerBundleRoutes(scope, { ca: deps.ca }))
  await app.register(async (scope) =>
    registerCaAdminRoutes(scope, { store, clock, ...(deps.ca ? { ca: deps.ca } : {}) }),
  )
  await app.register(async (scope) =>
    registerFederationRoutes(scope, { federation: deps.federation }),
  )
  const codeowners = deps.codeownersDir ? directoryCodeowners(deps.codeownersDir) : undefined
  const governance =
    deps.governance ??
    createGovernance({
      store,
      events: deps.events ?? discardEvents,
      clock,
      ...(codeowners ? { codeowners } : {}),
    })
  await registerControlPlaneRoutes(app, {
    store,
    clock,
    inventory,
    ...(deps.ca ? { ca: deps.ca } : {}),
    governance,
    ...(deps.secrets ? { secrets: deps.secrets } : {}),
    ...deps.control,
    ...(deps.events ? { events: deps.events } : {}),
  })
  await app.register(async (scope) => registerAuditRoutes(scope, { store }))

  await app.register(async (scope) =>
    registerAccessRoutes(scope, { access: createAccessQueries({ store }) }),
  )
  await app.register(async (scope) => registerUsageRoutes(scope, { store }))
  // Thresholds, TTL limits, crown jewels and forbidden grants come from the active governance policy.
  const posture =
    deps.posture ?? createPosture({ store, clock, config: () => governance.postureConfig() })
  await app.register(async (scope) => registerFindingRoutes(scope, { posture }))
  const offboarding =
    deps.offboarding ??
    createOffboarding({
      store,
      clock,
      events: deps.events ?? discardEvents,
      executors: createInventoryExecutors({ store, inventory, revocations, clock }),
    })
  await app.register(async (scope) => registerOffboardingRoutes(scope, { offboarding }))

  const authz =
    deps.authz ??
    createAuthzService({
      store,
      clock,
      ...(deps.events ? { events: deps.events } : {}),
      bundles: trustBundles({
        ...(deps.ca ? { ca: deps.ca } : {}),
        ...(deps.federation ? { federation: deps.federation } : {}),
      }),
      ...(deps.ca ? { jwtAudience: defaultAuthzAudience(deps.ca.trustDomain) } : {}),
    })
  await app.register(async (scope) => registerAuthorizeRoutes(scope, { authz, store, clock }))
  await app.register(async (scope) => registerCedarPolicyRoutes(scope, { authz }))
  const owners = createOwners({ store, inventory, clock, ...(codeowners ? { codeowners } : {}) })
  await app.register(async (scope) => registerOwnerRoutes(scope, { owners }))
  await app.register(async (scope) =>
    registerScimRoutes(scope, { scim: createScimService({ store, owners }) }),
  )
  await app.register(async (scope) =>
    registerGovernanceRoutes(scope, {
      governance,
      ...(deps.findings ? { findings: deps.findings } : {}),
    }),
  )
  await app.register(async (scope) =>
    registerReportRoutes(scope, {
      reports: createReports({ store, clock, ...(codeowners ? { codeowners } : {}) }),
    }),
  )
  await app.register(async (scope) =>
    registerSecretRoutes(scope, deps.secrets ? { secrets: deps.secrets } : {}),
  )

  await app.register(async (scope) =>
    registerDynamicRoutes(scope, {
      ...(dynamic ? { dynamic } : {}),
      ...(deps.ca
        ? {
            auth: createWorkloadAuthenticator({
              ca: deps.ca,
              clock,
              isRevoked: async (q) => (await revocations.find(q)) !== undefined,
            }),
          }
        : {}),
    }),
  )

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())

  return app
}

function loggerOptions(
  logger: AppDeps['logger'],
): Pick<FastifyServerOptions, 'logger' | 'loggerInstance'> {
  if (logger === undefined) return { logger: false }
  if (isLoggerInstance(logger)) return { loggerInstance: logger }
  return { logger: { ...logger, redact: { paths: redactPaths, censor: '[redacted]' } } }
}

function isLoggerInstance(logger: NonNullable<AppDeps['logger']>): logger is FastifyBaseLogger {
  return typeof (logger as FastifyBaseLogger).child === 'function'
}
