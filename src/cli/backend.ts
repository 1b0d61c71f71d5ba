import { resolve } from 'node:path'
import { TesseraError } from '../errors.js'
import type { Inventory } from '../inventory/inventory-types.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import type { Store } from '../store/store.js'
import { loadConfig } from './config.js'
import { localFindingsAdmin, remoteFindingsAdmin, type FindingsAdmin } from './commands/findings.js'
import {
  localOffboardingAdmin,
  remoteOffboardingAdmin,
  type OffboardingAdmin,
} from './commands/offboard.js'
import { localCaAdmin, remoteCaAdmin, type CaAdmin } from './ca-admin.js'
import { localControlAdmin, remoteControlAdmin, type ControlAdmin } from './control-admin.js'
import { localObserveAdmin, remoteObserveAdmin, type ObserveAdmin } from './commands/access.js'
import { localAuditAdmin, remoteAuditAdmin, type AuditAdmin } from './commands/audit.js'
import { localAuthzAdmin, remoteAuthzAdmin, type AuthzAdmin } from './commands/authz.js'
import { localGovernAdmin, remoteGovernAdmin, type GovernAdmin } from './govern-admin.js'
import { localSecretAdmin, remoteSecretAdmin, type SecretAdmin } from './secret-admin.js'
import type { LeaseFilter, LeaseView } from '../lifecycle/dynamic/leases.js'
import {
  createRemoteClient,
  isInsecureRemote,
  normaliseServerUrl,
  type FederationAdmin,
  type RevocationAdmin,
  type TokenAdmin,
} from './remote.js'

/**
 * Where a command's data lives: a Tessera server (remote, over the REST API) or a store opened in
 * this process (local: the embedded PGlite data dir, or PostgreSQL). Commands see only this.
 */
export interface Backend {
  readonly kind: 'local' | 'remote'
  /** The server URL or the store location, for messages. */
  readonly location: string
  readonly inventory: Inventory
  readonly tokens: TokenAdmin
  readonly revocations: RevocationAdmin
  readonly federation: FederationAdmin
  /** SPIFFE control plane admin: entries, join tokens, agents. */
  readonly control?: ControlAdmin
  /** CA keys (emergency rotation) and the issuance history. */
  readonly ca?: CaAdmin
  /** Cedar decisions and policies. */
  readonly authz?: AuthzAdmin
  /** The store itself, for a local backend (e.g. the scanner's fingerprint key setting). */
  readonly store?: Store
  /** Temporal access queries and usage. */
  readonly observe?: ObserveAdmin
  /** Posture findings: list, run, accept. */
  readonly findings?: FindingsAdmin
  /** Offboarding plans and their execution. */
  readonly offboarding?: OffboardingAdmin
  /** The audit log: verify, query, export. */
  readonly audit?: AuditAdmin
  /** Owners, governance policy and reports. */
  readonly govern?: GovernAdmin
  /** Managed secrets and their rotation (docs/rotation.md). */
  readonly secrets?: SecretAdmin
  /** Dynamic credential leases (docs/dynamic-credentials.md). */
  readonly dynamic?: DynamicAdmin
  close(): Promise<void>
}

/**
 * Dynamic credential leases, over HTTP or on a store. On a store `revoke` only asks: the running
 * servers' reapers (which hold the backends' admin credentials) carry it out within their interval.
 */
export interface DynamicAdmin {
  list(filter?: LeaseFilter): Promise<LeaseView[]>
  revoke(leaseId: string, reason?: string): Promise<LeaseView>
}

/** The global options and environment a backend is chosen from. */
export interface BackendOptions {
  server?: string
  token?: string
  dataDir?: string
  database?: string
}

export interface BackendDeps {
  env: NodeJS.ProcessEnv
  clock?: Clock
  fetch?: typeof fetch
  /** Where warnings go (e.g. a token about to travel over plain http). */
  warn?: (message: string) => void
}

/** Which backend a command will use, resolved from options, environment and the config file. */
export type BackendChoice =
  | { kind: 'remote'; server: string; token: string | undefined }
  | { kind: 'local'; dataDir: string }
  | { kind: 'local'; databaseUrl: string }

/**
 * Precedence:
 * 1. `--server` → remote; `--data-dir` or `--database` → local (giving both kinds is a usage error);
 * 2. `TESSERA_SERVER` → remote, else `TESSERA_DATABASE_URL` → local;
 * 3. a `server` saved by `tessera login` → remote;
 * 4. the embedded store in `./.tessera`.
 * The token is `--token`, else `TESSERA_TOKEN`, else the config file's, the latter only when the
 * config's server is the one being called: a saved token is never sent to another server.
 */
export function chooseBackend(options: BackendOptions, deps: BackendDeps): BackendChoice {
  const env = deps.env
  if (options.dataDir !== undefined && options.database !== undefined) {
    throw new TesseraError('TSR_VALIDATION', 'give either --data-dir or --database, not both')
  }
  if (options.server !== undefined && (options.dataDir ?? options.database) !== undefined) {
    throw new TesseraError(
      'TSR_VALIDATION',
      '--server talks to a server; --data-dir and --database open a store here: give one',
    )
  }
  // Options beat environment variables; a server beats a database among the variables.
  if (options.server === undefined) {
    if (options.dataDir !== undefined) return { kind: 'local', dataDir: resolve(options.dataDir) }
    if (options.database !== undefined) return { kind: 'local', databaseUrl: options.database }
    if (!env.TESSERA_SERVER && env.TESSERA_DATABASE_URL) {
      return { kind: 'local', databaseUrl: env.TESSERA_DATABASE_URL }
    }
  }
  const explicitServer = options.server ?? (env.TESSERA_SERVER || undefined)
  const loaded = loadConfig(env)
  if (loaded.warning) deps.warn?.(loaded.warning)
  const server = explicitServer ?? loaded.config.server
  if (server === undefined) return { kind: 'local', dataDir: resolve('.tessera') }
  const normalised = normaliseServerUrl(server)
  let token = options.token ?? (env.TESSERA_TOKEN || undefined)
  if (
    token === undefined &&
    loaded.config.server !== undefined &&
    normaliseServerUrl(loaded.config.server) === normalised
  ) {
    token = loaded.config.token
  }
  return { kind: 'remote', server: normalised, token }
}

export async function openBackend(options: BackendOptions, deps: BackendDeps): Promise<Backend> {
  const choice = chooseBackend(options, deps)
  const clock = deps.clock ?? systemClock
  if (choice.kind === 'remote') {
    if (choice.token && isInsecureRemote(choice.server)) {
      deps.warn?.(`sending the API token to ${choice.server} over plain http; use https`)
    }
    const client = createRemoteClient({
      server: choice.server,
      ...(choice.token ? { token: choice.token } : {}),
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    })
    return {
      kind: 'remote',
      location: client.baseUrl,
      inventory: client.inventory,
      tokens: client.tokens,
      revocations: client.revocations,
      federation: client.federation,
      control: remoteControlAdmin(client.http),
      ca: remoteCaAdmin(client.http),
      observe: remoteObserveAdmin(client.http),
      findings: remoteFindingsAdmin(client.http),
      offboarding: remoteOffboardingAdmin(client.http),
      audit: remoteAuditAdmin(client.http),
      authz: remoteAuthzAdmin(client.http),
      govern: remoteGovernAdmin(client.http),
      secrets: remoteSecretAdmin(client.http),
      dynamic: {
        list: async (filter = {}) =>
          (
            await client.http.json<{ items: LeaseView[] }>('GET', 'v1/dynamic/leases', {
              query: {
                state: filter.state,
                spiffeId: filter.spiffeId,
                backend: filter.backend,
                limit: filter.limit === undefined ? undefined : String(filter.limit),
              },
            })
          ).items,
        revoke: (id, reason) =>
          client.http.json<LeaseView>(
            'POST',
            `v1/dynamic/leases/${encodeURIComponent(id)}/revoke`,
            { body: reason === undefined ? {} : { reason } },
          ),
      },
      close: async () => {},
    }
  }
  // Loaded on demand: `--help` and remote commands need neither the database nor the inventory.
  const { openStore } = await import('../store/index.js')
  const store: Store =
    'databaseUrl' in choice
      ? await openStore({ backend: 'postgres', url: choice.databaseUrl })
      : await openStore({ backend: 'pglite', dataDir: choice.dataDir })
  try {
    return await localBackend(store, clock, deps.env)
  } catch (err) {
    await store.close()
    throw err
  }
}

/** Every admin interface over an open store, with the server's own domain functions. */
export async function localBackend(
  store: Store,
  clock: Clock,
  env: NodeJS.ProcessEnv,
): Promise<Backend> {
  const [
    { createInventory },
    { createRevocationList },
    federationModule,
    { createAuditLog },
    leases,
  ] = await Promise.all([
    import('../inventory/index.js'),
    import('../lifecycle/revocations.js'),
    import('../federation/index.js'),
    import('../audit/audit-log.js'),
    import('../lifecycle/dynamic/leases.js'),
  ])
  const user = env.USER ?? env.LOGNAME ?? 'local'
  // Acts done here on the store are audited like the server's (no partition upkeep: short-lived).
  const events = createAuditLog({ store, clock, partitionDaysAhead: 0 })
  const revocations = createRevocationList({ store, clock, events })
  const inventory = createInventory({ store, clock })
  return {
    kind: 'local',
    location: store.location,
    inventory,
    govern: localGovernAdmin(store, clock, inventory, `cli:${user}`, env),
    tokens: localTokenAdmin(store, clock),
    revocations: {
      add: (input) => revocations.add({ ...input, createdBy: `cli:${user}` }),
      list: (options) => revocations.list(options),
    },
    federation: federationModule.localFederationAdmin(store, clock, `cli:${user}`),
    control: localControlAdmin(store, clock),
    ca: localCaAdmin(store, clock, env),
    observe: localObserveAdmin(store),
    findings: localFindingsAdmin(store, clock, user),
    offboarding: localOffboardingAdmin(store, clock, user),
    authz: localAuthzAdmin(store, clock, `cli:${user}`),
    secrets: localSecretAdmin(store, clock, env, user),
    dynamic: {
      list: (filter) => leases.listLeases(store.db, filter),
      revoke: (id, reason) =>
        leases.requestLeaseRevocation(
          store.db,
          id,
          clock.now(),
          reason ?? `requested by cli:${user}`,
        ),
    },
    store,
    audit: localAuditAdmin(store),
    close: async () => {
      await events.close()
      await store.close()
    },
  }
}

/** API tokens managed directly on the store, with the server's own functions. */
export function localTokenAdmin(store: Store, clock: Clock): TokenAdmin {
  const auth = () => import('../server/auth/api-tokens.js')
  return {
    async create(input) {
      return (await auth()).createApiToken(store, input, clock)
    },
    async list() {
      return (await auth()).listApiTokens(store)
    },
    async revoke(id) {
      await (await auth()).revokeApiToken(store, id, clock)
    },
  }
}
