/**
 * Seeded generator of a realistic machine-identity inventory, as observations in JSON Lines.
 *
 *   npx tsx scripts/generate-inventory.ts [--seed 42] [--identities 2000]
 *                                         [--now 2026-11-20T12:00:00Z] [--out FILE]
 *
 * The same seed, identity count and `--now` give byte-identical output: every random choice comes
 * from one mulberry32 stream, and time is `--now`, never the wall clock. Output is streamed, so a
 * million identities (about ten million lines) need no more memory than a few thousand.
 * `examples/README.md` describes the knobs and distributions; the benchmark imports
 * `generateObservations` directly.
 */
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type {
  CredentialObservation,
  CredentialType,
  IdentityObservation,
  LocationType,
  Observation,
} from '../src/inventory/observation.js'
import type { IdentityKind, OwnerStatus } from '../src/store/schema.js'

export interface GenerateOptions {
  /** PRNG seed (default 42). */
  seed?: number
  /** How many identities (default 2000). Owners, resources and everything else scale with it. */
  identities?: number
  /** The instant the inventory describes (default 2026-11-20T12:00:00Z). */
  now?: Date | string
}

export const defaultSeed = 42
export const defaultIdentities = 2000
export const defaultNow = '2026-11-20T12:00:00Z'

/** Every distribution knob in one place; examples/README.md documents them. */
export const knobs = {
  identitiesPerTeam: 40,
  identitiesPerPerson: 10,
  departedPeople: 0.08,
  suspendedPeople: 0.02,
  /** Owner of an identity: none (orphan), a person, otherwise a team. */
  orphanIdentities: 0.08,
  personOwned: 0.37,
  /** Extra `owns` edge from a second (backup) person. */
  backupOwner: 0.1,
  /** Last use: never, stale (> 90 days), otherwise within the last week. */
  neverUsed: 0.1,
  staleUse: 0.15,
  historyYears: 6,
  usageDays: 14,
  /** A credential found in 2–5 places. */
  sharedLocations: 0.12,
  /** A new credential that reuses the fingerprint of an earlier one (same secret, two identities). */
  sharedFingerprint: 0.02,
  /** A grant of every action (`*`) or on every resource (`*`). */
  adminGrant: 0.05,
} as const

const day = 86_400_000
const hour = 3_600_000

const src = {
  awsProd: 'aws:prod',
  awsStaging: 'aws:staging',
  k8s: 'k8s:prod-eu',
  github: 'github:acme',
  vault: 'vault:main',
  gcp: 'gcp:data',
  azure: 'azure:corp',
  spire: 'spire:acme.example',
  scanner: 'scanner',
} as const

const awsAccounts: Record<string, string> = {
  [src.awsProd]: '123456789012',
  [src.awsStaging]: '210987654321',
}

// Word lists for names in each platform's style.
const domains = [
  'payments',
  'checkout',
  'identity',
  'search',
  'catalog',
  'billing',
  'ledger',
  'fraud',
  'growth',
  'ml',
  'data',
  'platform',
  'infra',
  'security',
  'mobile',
  'web',
  'support',
  'logistics',
  'pricing',
  'risk',
] as const
const functions = ['core', 'api', 'ops', 'eng', 'insights', 'edge', 'sre', 'tools'] as const
const nouns = [
  'api',
  'worker',
  'gateway',
  'scheduler',
  'indexer',
  'exporter',
  'sync',
  'etl',
  'notifier',
  'reporter',
  'ingest',
  'backend',
  'cron',
  'webhook',
  'proxy',
  'migrator',
] as const
const firstNames = [
  'ana',
  'ben',
  'chloe',
  'dev',
  'elena',
  'farid',
  'grace',
  'hiro',
  'ines',
  'jonas',
  'kemi',
  'liam',
  'maya',
  'nikhil',
  'olga',
  'pedro',
  'quinn',
  'rosa',
  'sami',
  'tara',
  'umar',
  'vera',
  'wei',
  'ximena',
  'yusuf',
  'zoe',
  'amir',
  'bea',
  'carlos',
  'dana',
  'emil',
  'fatima',
  'goran',
  'hana',
  'ivan',
  'jada',
  'kai',
  'lena',
  'marco',
  'nora',
] as const
const lastNames = [
  'adams',
  'berg',
  'costa',
  'dubois',
  'eriksen',
  'fischer',
  'garcia',
  'haddad',
  'ito',
  'jansen',
  'kowalski',
  'lopez',
  'moreau',
  'nakamura',
  'okafor',
  'petrov',
  'quist',
  'rossi',
  'silva',
  'tanaka',
  'ueda',
  'varga',
  'weber',
  'xu',
  'yilmaz',
  'zhang',
  'novak',
  'murphy',
  'kaur',
  'santos',
] as const
const titles = [
  'Software Engineer',
  'Senior Software Engineer',
  'Staff Engineer',
  'SRE',
  'Data Engineer',
  'Security Engineer',
  'Engineering Manager',
  'Platform Engineer',
] as const
const workflows = [
  'deploy',
  'release',
  'ci',
  'nightly',
  'terraform-apply',
  'publish',
  'e2e',
  'db-migrate',
] as const
const hosts = ['bastion', 'db', 'build', 'jump', 'batch', 'cache', 'legacy-app', 'ftp'] as const
const saasVendors = [
  'stripe',
  'sendgrid',
  'datadog',
  'slack',
  'twilio',
  'pagerduty',
  'segment',
  'sentry',
] as const
const agentPurposes = [
  'release-notes',
  'triage',
  'code-review',
  'oncall',
  'data-analyst',
  'support-reply',
  'dependency-update',
  'incident-summary',
] as const
const agentModels = [
  'acme-llm-large',
  'acme-llm-small',
  'vendor-model-2',
  'vendor-model-3-mini',
] as const
const agentTools = [
  'github:read',
  'github:write',
  'jira:write',
  'slack:post',
  'sql:read',
  'docs:read',
  'pagerduty:ack',
  'ci:trigger',
] as const
const alnum = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const upperBase32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
const byteHex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/** mulberry32: small, fast, good enough for sample data, and identical on every platform. */
class Rng {
  #state: number
  constructor(seed: number) {
    this.#state = seed >>> 0
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) | 0
    let t = Math.imul(this.#state ^ (this.#state >>> 15), 1 | this.#state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }
  chance(p: number): boolean {
    return this.next() < p
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!
  }
  hex(length: number): string {
    let out = ''
    while (out.length < length) {
      const n = Math.floor(this.next() * 4294967296)
      out +=
        byteHex[n >>> 24]! +
        byteHex[(n >>> 16) & 0xff]! +
        byteHex[(n >>> 8) & 0xff]! +
        byteHex[n & 0xff]!
    }
    return out.length === length ? out : out.slice(0, length)
  }
  chars(alphabet: string, length: number): string {
    let out = ''
    for (let i = 0; i < length; i++) out += alphabet[Math.floor(this.next() * alphabet.length)]
    return out
  }
  uuid(): string {
    const h = this.hex(32)
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[this.int(0, 3)]}${h.slice(17, 20)}-${h.slice(20)}`
  }
}

/** A fixed-size window of recent values, for links to earlier facts without keeping them all. */
class Recent<T> {
  readonly #items: T[] = []
  readonly #size: number
  #next = 0
  constructor(size: number) {
    this.#size = size
  }
  add(item: T): void {
    if (this.#items.length < this.#size) this.#items.push(item)
    else this.#items[this.#next] = item
    this.#next = (this.#next + 1) % this.#size
  }
  pick(rng: Rng): T | undefined {
    return this.#items.length === 0 ? undefined : rng.pick(this.#items)
  }
}

interface Resource {
  ref: string
  type: string
  env: string
}

interface IdentityContext {
  ref: string
  source: string
  owner: string | undefined
  createdAt: number
  /** undefined: never used */
  lastUsedAt: number | undefined
  active: boolean
}

interface LocationContext {
  namespace?: string
  repo?: string
  host?: string
  vaultPath?: string
  envVar?: string
}

const leakTypes: readonly LocationType[] = ['git', 'env_var', 'file', 'ci_secret', 'url', 'host']

interface CredentialSpec {
  ref: string
  preview?: string
  issuer?: string
  /** Days of validity; undefined: never expires. */
  validityDays?: number
  rotates?: boolean
}

const dayPrefixes = new Map<number, string>()
const pad2 = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'))

/** `new Date(ms).toISOString()`, several times faster: the date part is cached per day. */
function iso(ms: number): string {
  const dayNumber = Math.floor(ms / day)
  let prefix = dayPrefixes.get(dayNumber)
  if (prefix === undefined) {
    prefix = new Date(dayNumber * day).toISOString().slice(0, 11)
    dayPrefixes.set(dayNumber, prefix)
  }
  let rest = ms - dayNumber * day
  const millis = rest % 1000
  rest = (rest - millis) / 1000
  const seconds = rest % 60
  rest = (rest - seconds) / 60
  const minutes = rest % 60
  const hours = (rest - minutes) / 60
  const msText = millis < 10 ? `00${millis}` : millis < 100 ? `0${millis}` : String(millis)
  return `${prefix}${pad2[hours]}:${pad2[minutes]}:${pad2[seconds]}.${msText}Z`
}

/**
 * Yields the sample inventory: owners, then resources, then each identity with its credentials,
 * locations, grants, usage and edges. Links only point backwards (to facts already yielded), so a
 * consumer can ingest in order.
 */
export function* generateObservations(options: GenerateOptions = {}): Generator<Observation> {
  const world = new World(options)
  yield* world.owners()
  yield* world.resources()
  yield* world.identities()
}

class World {
  readonly rng: Rng
  readonly now: number
  readonly total: number
  readonly teams: string[] = []
  readonly people: string[] = []
  readonly peopleStatus: OwnerStatus[] = []
  readonly resourcesBySource = new Map<string, Resource[]>()
  readonly repos: string[] = []
  readonly namespaces: string[] = []
  readonly pipelines = new Recent<string>(64)
  readonly workloads = new Recent<string>(64)
  readonly fingerprints = new Recent<string>(256)
  seq = 0
  out: Observation[] = []

  constructor(options: GenerateOptions) {
    const seed = options.seed ?? defaultSeed
    const total = options.identities ?? defaultIdentities
    const now = options.now === undefined ? new Date(defaultNow) : new Date(options.now)
    if (!Number.isSafeInteger(seed)) throw new RangeError('seed must be an integer')
    if (!Number.isSafeInteger(total) || total < 1) throw new RangeError('identities must be >= 1')
    if (Number.isNaN(now.getTime())) throw new RangeError('now must be a valid date')
    this.rng = new Rng(seed)
    this.total = total
    this.now = Math.floor(now.getTime() / 1000) * 1000
  }

  emit(observation: Observation): void {
    this.out.push(observation)
  }

  *flush(): Generator<Observation> {
    const batch = this.out
    this.out = []
    yield* batch
  }

  /** A short base-36 suffix that keeps generated names unique. */
  id(): string {
    return (this.seq++).toString(36)
  }

  // ---- owners -------------------------------------------------------------------------------

  *owners(): Generator<Observation> {
    const { rng } = this
    const teamCount = Math.max(3, Math.round(this.total / knobs.identitiesPerTeam))
    const combos = domains.length * functions.length
    for (let i = 0; i < teamCount; i++) {
      const base = `${domains[i % domains.length]}-${functions[Math.floor(i / domains.length) % functions.length]}`
      const slug = i < combos ? base : `${base}-${Math.floor(i / combos) + 1}`
      this.teams.push(slug)
      yield {
        type: 'owner',
        source: 'hr',
        ref: slug,
        ownerType: 'team',
        name: slug
          .split('-')
          .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
          .join(' '),
        email: `${slug}@acme.example`,
        status: 'active',
      }
    }
    const personCount = Math.max(10, Math.round(this.total / knobs.identitiesPerPerson))
    const seen = new Map<string, number>()
    for (let i = 0; i < personCount; i++) {
      const first = rng.pick(firstNames)
      const last = rng.pick(lastNames)
      const key = `${first}.${last}`
      const n = (seen.get(key) ?? 0) + 1
      seen.set(key, n)
      const email = `${key}${n === 1 ? '' : n}@acme.example`
      const r = rng.next()
      const status: OwnerStatus =
        r < knobs.departedPeople
          ? 'departed'
          : r < knobs.departedPeople + knobs.suspendedPeople
            ? 'suspended'
            : 'active'
      this.people.push(email)
      this.peopleStatus.push(status)
      const attributes: Record<string, unknown> = { title: rng.pick(titles) }
      if (status === 'departed') {
        attributes.departedAt = iso(this.now - rng.int(1, 400) * day)
      }
      yield {
        type: 'owner',
        source: 'hr',
        ref: email,
        ownerType: 'person',
        name: `${cap(first)} ${cap(last)}`,
        email,
        status,
        team: rng.pick(this.teams),
        attributes,
      }
    }
  }

  // ---- resources ----------------------------------------------------------------------------

  *resources(): Generator<Observation> {
    const { rng } = this
    const scale = (per: number, min: number) => Math.max(min, Math.round(this.total / per))
    const add = (source: string, resource: Resource, name: string): Observation => {
      let list = this.resourcesBySource.get(source)
      if (!list) this.resourcesBySource.set(source, (list = []))
      list.push(resource)
      return {
        type: 'resource',
        source,
        ref: resource.ref,
        resourceType: resource.type,
        name,
        environment: resource.env,
      }
    }
    for (const source of [src.awsProd, src.awsStaging]) {
      const env = source === src.awsProd ? 'prod' : 'staging'
      const account = awsAccounts[source]!
      for (let i = 0, n = scale(40, 5); i < n; i++) {
        const app = `${rng.pick(domains)}-${rng.pick(nouns)}-${this.id()}`
        const kind = rng.int(0, 4)
        if (kind === 0) {
          const name = `acme-${env}-${app}`
          yield add(source, { ref: `arn:aws:s3:::${name}`, type: 's3_bucket', env }, name)
        } else if (kind === 1) {
          yield add(
            source,
            {
              ref: `arn:aws:dynamodb:eu-west-1:${account}:table/${app}`,
              type: 'dynamodb_table',
              env,
            },
            app,
          )
        } else if (kind === 2) {
          yield add(
            source,
            { ref: `arn:aws:rds:eu-west-1:${account}:db:${app}`, type: 'rds_database', env },
            app,
          )
        } else if (kind === 3) {
          yield add(
            source,
            { ref: `arn:aws:sqs:eu-west-1:${account}:${app}`, type: 'sqs_queue', env },
            app,
          )
        } else {
          const name = `${env}/${app}`
          yield add(
            source,
            {
              ref: `arn:aws:secretsmanager:eu-west-1:${account}:secret:${name}-${rng.chars(alnum, 6)}`,
              type: 'secretsmanager_secret',
              env,
            },
            name,
          )
        }
      }
    }
    for (let i = 0, n = scale(100, 4); i < n; i++) {
      const ns = i < this.teams.length ? this.teams[i]! : `${rng.pick(this.teams)}-${this.id()}`
      this.namespaces.push(ns)
      yield add(
        src.k8s,
        { ref: `k8s://prod-eu/namespaces/${ns}`, type: 'k8s_namespace', env: 'prod' },
        ns,
      )
    }
    for (let i = 0, n = scale(25, 5); i < n; i++) {
      const repo = `${rng.pick(domains)}-${rng.pick(nouns)}${i < 40 ? '' : `-${this.id()}`}`
      const ref = `github.com/acme/${repo}-${i}`
      this.repos.push(ref)
      yield add(src.github, { ref, type: 'repository', env: 'prod' }, `acme/${repo}-${i}`)
    }
    for (let i = 0, n = scale(80, 3); i < n; i++) {
      const team = this.teams[i % this.teams.length]!
      const unique = i < this.teams.length ? team : `${team}-${this.id()}`
      const mount = i % 3 === 2 ? `database/creds/${unique}` : `secret/data/${unique}`
      yield add(
        src.vault,
        { ref: `vault://main/${mount}`, type: 'vault_mount', env: 'prod' },
        mount,
      )
    }
    for (let i = 0, n = scale(80, 3); i < n; i++) {
      const name = `${rng.pick(domains)}_${rng.pick(nouns)}_${this.id()}`
      if (i % 2 === 0) {
        yield add(
          src.gcp,
          {
            ref: `//bigquery.googleapis.com/projects/acme-data/datasets/${name}`,
            type: 'bigquery_dataset',
            env: 'prod',
          },
          name,
        )
      } else {
        const bucket = `acme-data-${name.replaceAll('_', '-')}`
        yield add(
          src.gcp,
          {
            ref: `//storage.googleapis.com/projects/_/buckets/${bucket}`,
            type: 'gcs_bucket',
            env: 'prod',
          },
          bucket,
        )
      }
    }
    for (let i = 0, n = scale(100, 3); i < n; i++) {
      const name = `acme${rng.pick(domains)}${this.id()}`
      const rg = `/subscriptions/5f1c2a3b-0000-4000-8000-00000000c0de/resourceGroups/rg-${rng.pick(domains)}`
      if (i % 2 === 0) {
        yield add(
          src.azure,
          {
            ref: `${rg}/providers/Microsoft.KeyVault/vaults/kv-${name}`,
            type: 'key_vault',
            env: 'prod',
          },
          `kv-${name}`,
        )
      } else {
        yield add(
          src.azure,
          {
            ref: `${rg}/providers/Microsoft.Storage/storageAccounts/st${name}`,
            type: 'storage_account',
            env: 'prod',
          },
          `st${name}`,
        )
      }
    }
    for (const tool of ['jira', 'github', 'slack', 'sql-readonly', 'docs', 'pagerduty', 'ci']) {
      yield add(
        src.spire,
        { ref: `tool://acme.example/${tool}`, type: 'ai_tool', env: 'prod' },
        tool,
      )
    }
    for (const vendor of saasVendors) {
      yield add(
        src.scanner,
        { ref: `saas://${vendor}/acme`, type: 'saas_account', env: 'prod' },
        `${vendor} (acme)`,
      )
    }
  }

  // ---- identities ---------------------------------------------------------------------------

  *identities(): Generator<Observation> {
    // Templates and their share of identities; each makes a small group of related identities.
    const templates: Array<[number, (budget: number) => number]> = [
      [0.14, (b) => this.awsRoleChain(b)],
      [0.07, () => this.awsUser()],
      [0.24, (b) => this.k8sWorkload(b)],
      [0.08, () => this.githubPipeline()],
      [0.04, () => this.githubApp()],
      [0.08, () => this.vaultAppRole()],
      [0.09, () => this.gcpServiceAccount()],
      [0.07, () => this.azureServicePrincipal()],
      [0.05, (b) => this.aiAgents(b)],
      [0.04, () => this.sshPrincipal()],
      [0.1, () => this.saasClient()],
    ]
    const weightSum = templates.reduce((sum, [w]) => sum + w, 0)
    let made = 0
    while (made < this.total) {
      let r = this.rng.next() * weightSum
      let template = templates[templates.length - 1]![1]
      for (const [w, t] of templates) {
        if ((r -= w) < 0) {
          template = t
          break
        }
      }
      made += template(this.total - made)
      if (this.rng.chance(0.03)) this.orphanSecret()
      yield* this.flush()
    }
  }

  /** Emits the identity and its ownership edges, and decides its timeline. */
  identity(
    source: string,
    kind: IdentityKind,
    ref: string,
    name: string,
    extra: {
      createdBy?: string
      createdByType?: 'owner' | 'identity'
      owner?: string | null
      attributes?: Record<string, unknown>
    } = {},
  ): IdentityContext {
    const { rng, now } = this
    // More identities are recent than old: the square skews creation dates towards now.
    const createdAt =
      now - Math.floor(rng.next() ** 2 * knobs.historyYears * 365 * day) - rng.int(1, 86_400) * 1000
    const r = rng.next()
    let lastUsedAt: number | undefined
    if (r < knobs.neverUsed) lastUsedAt = undefined
    else if (r < knobs.neverUsed + knobs.staleUse) {
      lastUsedAt = Math.max(
        createdAt + hour,
        now - rng.int(91, 900) * day - rng.int(0, 86_399) * 1000,
      )
      if (lastUsedAt > now - 91 * day) lastUsedAt = undefined
    } else lastUsedAt = Math.max(createdAt, now - rng.int(0, 7 * 24 * 3600) * 1000)
    const s = rng.next()
    const state: IdentityObservation['state'] =
      s < 0.03 ? 'disabled' : s < 0.04 ? 'deleted' : s < 0.043 ? 'quarantined' : 'active'

    const owner = extra.owner === undefined ? this.pickOwner() : (extra.owner ?? undefined)
    let createdBy = extra.createdBy
    let createdByType = extra.createdByType ?? 'owner'
    if (createdBy === undefined) {
      const c = rng.next()
      const pipeline = this.pipelines.pick(rng)
      if (c < 0.5) createdBy = rng.pick(this.people)
      else if (c < 0.85 && pipeline) {
        createdBy = pipeline
        createdByType = 'identity'
      }
    }
    const observation: IdentityObservation = {
      type: 'identity',
      source,
      ref,
      kind,
      name,
      state,
      createdAt: iso(createdAt),
    }
    if (owner) observation.owner = owner
    if (createdBy) observation.createdBy = createdBy
    if (lastUsedAt !== undefined) observation.lastUsedAt = iso(lastUsedAt)
    if (extra.attributes) observation.attributes = extra.attributes
    this.emit(observation)
    if (createdBy) {
      this.emit({
        type: 'edge',
        source,
        edgeType: 'created',
        from: { type: createdByType, ref: createdBy },
        to: { type: 'identity', ref },
      })
    }
    if (rng.chance(knobs.backupOwner)) {
      this.emit({
        type: 'edge',
        source,
        edgeType: 'owns',
        from: { type: 'owner', ref: rng.pick(this.people) },
        to: { type: 'identity', ref },
        attributes: { role: 'backup' },
      })
    }
    return {
      ref,
      source,
      owner,
      createdAt,
      lastUsedAt,
      active: state === 'active' && lastUsedAt !== undefined && lastUsedAt > now - 90 * day,
    }
  }

  pickOwner(): string | undefined {
    const r = this.rng.next()
    if (r < knobs.orphanIdentities) return undefined
    if (r < knobs.orphanIdentities + knobs.personOwned) return this.rng.pick(this.people)
    return this.rng.pick(this.teams)
  }

  /** Emits a credential with a timeline that fits its type and its identity. */
  credential(
    identity: IdentityContext | undefined,
    source: string,
    credentialType: CredentialType,
    spec: CredentialSpec,
  ): { ref: string; fingerprint: string } {
    const { rng, now } = this
    const from = identity ? identity.createdAt : now - knobs.historyYears * 365 * day
    let createdAt = from + Math.floor(rng.next() * (now - from))
    let expiresAt: number | undefined
    if (spec.validityDays !== undefined) {
      // Spread expiries from a month ago to a full validity ahead: some expired, some due soon.
      expiresAt = now - 30 * day + Math.floor(rng.next() * (spec.validityDays + 30) * day)
      createdAt = Math.max(from, expiresAt - spec.validityDays * day)
    }
    const lastRotatedAt =
      spec.rotates && rng.chance(0.7)
        ? createdAt +
          Math.floor(rng.next() * Math.max(0, Math.min(now, expiresAt ?? now) - createdAt))
        : undefined
    let lastUsedAt = identity?.lastUsedAt
    if (lastUsedAt !== undefined && lastUsedAt < createdAt) lastUsedAt = undefined
    if (lastUsedAt !== undefined && expiresAt !== undefined && lastUsedAt > expiresAt)
      lastUsedAt = expiresAt - hour
    const st = rng.next()
    const state =
      expiresAt !== undefined && expiresAt < now
        ? st < 0.7
          ? 'expired'
          : 'active'
        : st < 0.01
          ? 'revoked'
          : st < 0.06
            ? 'inactive'
            : 'active'
    const reuse = rng.chance(knobs.sharedFingerprint) ? this.fingerprints.pick(rng) : undefined
    const fingerprint = reuse ?? `hmac-sha256:${rng.hex(64)}`
    if (!reuse) this.fingerprints.add(fingerprint)
    const observation: CredentialObservation = {
      type: 'credential',
      source,
      ref: spec.ref,
      credentialType,
      fingerprint,
      state,
      createdAt: iso(createdAt),
    }
    if (identity) observation.identity = identity.ref
    if (spec.preview) observation.preview = spec.preview
    if (spec.issuer) observation.issuer = spec.issuer
    if (expiresAt !== undefined) observation.expiresAt = iso(expiresAt)
    if (lastRotatedAt !== undefined) observation.lastRotatedAt = iso(lastRotatedAt)
    if (lastUsedAt !== undefined) observation.lastUsedAt = iso(lastUsedAt)
    if (reuse) observation.attributes = { sharedSecret: true }
    this.emit(observation)
    return { ref: spec.ref, fingerprint }
  }

  /** One location, or 2–5 when the secret was copied around; git finds link to the repository. */
  locations(credential: string, usual: LocationType, context: LocationContext): void {
    const { rng } = this
    const count = rng.chance(knobs.sharedLocations) ? rng.int(2, 5) : 1
    for (let i = 0; i < count; i++) {
      const type = i === 0 ? usual : rng.pick(leakTypes)
      const repository = this.location(credential, type, context)
      if (type === 'git' && repository) {
        this.emit({
          type: 'edge',
          source: src.scanner,
          edgeType: 'credential_found_in',
          from: { type: 'credential', ref: credential },
          to: { type: 'resource', ref: repository },
        })
      }
    }
  }

  /** Emits one location; returns the repository of a git location. */
  location(credential: string, type: LocationType, context: LocationContext): string | undefined {
    const { rng } = this
    const base = { type: 'location' as const, credential, locationType: type }
    switch (type) {
      case 'git': {
        const repository = context.repo ?? this.repoResource()
        this.emit({
          ...base,
          source: src.scanner,
          repository,
          file: rng.pick([
            '.env',
            'config/production.yml',
            'deploy/values.yaml',
            'scripts/bootstrap.sh',
            'src/settings.py',
            'terraform/main.tf',
            'docker-compose.yml',
          ]),
          line: rng.int(1, 400),
          commit: rng.hex(40),
        })
        return repository
      }
      case 'file':
        this.emit({
          ...base,
          source: src.scanner,
          host: context.host ?? this.hostName(),
          file: rng.pick([
            '/home/deploy/.aws/credentials',
            '/etc/app/secrets.json',
            '/opt/app/config.ini',
            '/root/.config/gcloud/key.json',
            '/srv/backup/creds.txt',
          ]),
        })
        return
      case 'k8s_secret':
        this.emit({
          ...base,
          source: src.k8s,
          path: `${context.namespace ?? rng.pick(this.namespaces)}/${rng.pick(nouns)}-credentials#${rng.pick(['token', 'password', 'api-key', 'tls.key'])}`,
        })
        return
      case 'env_var':
        this.emit({
          ...base,
          source: src.scanner,
          host: context.host ?? this.hostName(),
          path:
            context.envVar ??
            rng.pick([
              'AWS_SECRET_ACCESS_KEY',
              'DATABASE_URL',
              'API_KEY',
              'GITHUB_TOKEN',
              'SLACK_WEBHOOK_URL',
              'CLIENT_SECRET',
            ]),
        })
        return
      case 'vault':
        this.emit({
          ...base,
          source: src.vault,
          path: context.vaultPath ?? `secret/data/${rng.pick(this.teams)}/${rng.pick(nouns)}`,
        })
        return
      case 'host':
        this.emit({
          ...base,
          source: src.scanner,
          host: context.host ?? this.hostName(),
          file: rng.pick([
            '/home/deploy/.ssh/authorized_keys',
            '/root/.ssh/id_ed25519',
            '/etc/ssl/private/server.key',
          ]),
        })
        return
      case 'ci_secret':
        this.emit({
          ...base,
          source: src.github,
          repository: context.repo ?? this.repoResource(),
          path:
            context.envVar ??
            rng.pick([
              'DEPLOY_TOKEN',
              'AWS_SECRET_ACCESS_KEY',
              'NPM_TOKEN',
              'PROD_DB_PASSWORD',
              'DOCKERHUB_TOKEN',
            ]),
        })
        return
      case 'url':
        this.emit({
          ...base,
          source: src.scanner,
          path: `https://wiki.acme.example/display/${rng.pick(domains).toUpperCase()}/${rng.pick(['Runbook', 'Onboarding', 'Deploy+notes', 'Integrations'])}`,
        })
        return
    }
  }

  repoResource(): string {
    return this.rng.pick(this.repos)
  }

  hostName(): string {
    return `${this.rng.pick(hosts)}-${String(this.rng.int(1, 40)).padStart(2, '0')}.${this.rng.pick(['prod', 'staging', 'corp'])}.acme.example`
  }

  /** 1–2 grants on distinct resources of a source, sometimes admin; usage for active identities. */
  access(identity: IdentityContext, resourceSource: string, forceAdmin = false): void {
    const { rng } = this
    const resources = this.resourcesBySource.get(resourceSource) ?? []
    if (resources.length === 0) return
    const first = rng.pick(resources)
    const second = rng.chance(0.5) ? rng.pick(resources) : first
    const picked = second === first ? [first] : [first, second]
    const used: Array<[string, string]> = []
    for (const resource of picked) {
      const vocabulary = actionsFor(resource.type)
      let actions = vocabulary.slice(0, rng.int(1, vocabulary.length))
      let resourceRef = resource.ref
      if (forceAdmin || rng.chance(knobs.adminGrant)) {
        if (forceAdmin || rng.chance(0.5)) actions = ['*']
        else resourceRef = '*'
      }
      this.emit({
        type: 'grant',
        source: resourceSource,
        identity: identity.ref,
        resource: resourceRef,
        actions,
        via: this.via(resourceSource, actions),
      })
      used.push([resource.ref, actions[0] === '*' ? vocabulary[0]! : rng.pick(actions)])
    }
    if (identity.active) this.usage(identity, resourceSource, used)
  }

  via(source: string, actions: string[]): string {
    const admin = actions[0] === '*'
    if (source.startsWith('aws:'))
      return admin
        ? 'arn:aws:iam::aws:policy/AdministratorAccess'
        : `arn:aws:iam::${awsAccounts[source]}:policy/${this.rng.pick(domains)}-access`
    if (source === src.k8s)
      return admin ? 'clusterrolebinding/cluster-admin' : `rolebinding/${this.rng.pick(nouns)}-edit`
    if (source === src.gcp) return admin ? 'roles/owner' : 'roles/bigquery.dataEditor'
    if (source === src.azure) return admin ? 'Owner' : 'Storage Blob Data Contributor'
    if (source === src.vault)
      return admin ? 'policy/root' : `policy/${this.rng.pick(this.teams)}-read`
    return admin ? 'admin' : 'scoped'
  }

  /** Hourly counts over the last two weeks, ending at the identity's last use. */
  usage(identity: IdentityContext, source: string, used: Array<[string, string]>): void {
    const { rng } = this
    const last = identity.lastUsedAt!
    const start = Math.max(identity.createdAt, this.now - knobs.usageDays * day)
    const latest = Math.floor(last / hour) * hour
    for (const [resource, action] of used) {
      const busy = rng.chance(0.5)
      const hours = new Set([latest])
      for (let i = rng.int(0, 2); i > 0; i--)
        hours.add(latest - rng.int(1, knobs.usageDays * 24) * hour)
      for (const at of [...hours].sort((a, b) => a - b)) {
        if (at < start) continue
        this.emit({
          type: 'usage',
          source,
          identity: identity.ref,
          resource,
          action,
          hour: iso(at),
          count: busy ? rng.int(50, 5000) : rng.int(1, 40),
        })
      }
    }
  }

  // ---- templates (each returns how many identities it made) ----------------------------------

  awsRoleChain(budget: number): number {
    const { rng } = this
    const source = rng.chance(0.7) ? src.awsProd : src.awsStaging
    const account = awsAccounts[source]!
    const length = Math.min(budget, rng.int(1, 10) <= 6 ? 1 : rng.int(2, 4))
    const app = `${rng.pick(domains)}-${rng.pick(nouns)}`
    let previous: IdentityContext | undefined
    for (let i = 0; i < length; i++) {
      const last = length > 1 && i === length - 1
      const name = last
        ? `${rng.pick(['OrganizationAccountAccessRole', 'AdminRole', 'BreakGlass'])}-${this.id()}`
        : i === 0
          ? `${app}-${this.id()}`
          : `${app}-deployer-${this.id()}`
      const path = i === 0 ? 'service-role/' : ''
      const role = this.identity(
        source,
        'iam_role',
        `arn:aws:iam::${account}:role/${path}${name}`,
        name,
        { attributes: { accountId: account, path: `/${path}` } },
      )
      this.access(role, source, last)
      if (previous) {
        this.emit({
          type: 'edge',
          source,
          edgeType: 'can_assume',
          from: { type: 'identity', ref: previous.ref },
          to: { type: 'identity', ref: role.ref },
          attributes: { via: 'sts:AssumeRole' },
        })
      }
      previous = role
    }
    return length
  }

  awsUser(): number {
    const { rng } = this
    const source = rng.chance(0.7) ? src.awsProd : src.awsStaging
    const account = awsAccounts[source]!
    const name = `svc-${rng.pick(domains)}-${rng.pick(nouns)}-${this.id()}`
    const user = this.identity(source, 'iam_user', `arn:aws:iam::${account}:user/${name}`, name, {
      attributes: { accountId: account, consoleAccess: false },
    })
    const keys = rng.chance(0.2) ? 2 : 1
    for (let i = 0; i < keys; i++) {
      const keyId = `AKIA${rng.chars(upperBase32, 16)}`
      const cred = this.credential(user, source, 'access_key', {
        ref: `aws-key:${keyId}`,
        preview: `${keyId.slice(0, 4)}…${keyId.slice(-4)}`,
      })
      this.locations(cred.ref, rng.pick(['env_var', 'ci_secret', 'file', 'git'] as const), {
        envVar: 'AWS_SECRET_ACCESS_KEY',
      })
    }
    if (rng.chance(0.15)) {
      this.credential(user, source, 'password', {
        ref: `aws-console-password:${account}/${name}`,
        preview: '****',
        rotates: true,
      })
    }
    this.access(user, source)
    return 1
  }

  k8sWorkload(budget: number): number {
    const { rng } = this
    const ns = rng.pick(this.namespaces)
    const app = `${rng.pick(nouns)}-${this.id()}`
    const sa = this.identity(
      src.k8s,
      'service_account',
      `k8s:prod-eu:${rng.uuid()}`,
      `system:serviceaccount:${ns}:${app}`,
      { attributes: { cluster: 'prod-eu', namespace: ns } },
    )
    if (rng.chance(0.35)) {
      const token = this.credential(sa, src.k8s, 'token', {
        ref: `k8s-secret:prod-eu/${ns}/${app}-token`,
        preview: `eyJh…${rng.chars(alnum, 4)}`,
      })
      this.locations(token.ref, 'k8s_secret', { namespace: ns })
    }
    if (rng.chance(0.25)) {
      const conn = this.credential(sa, src.k8s, 'connection_string', {
        ref: `k8s-secret:prod-eu/${ns}/${app}-db#DATABASE_URL`,
        preview: `post…${rng.chars(alnum, 4)}`,
        rotates: true,
      })
      this.locations(conn.ref, 'k8s_secret', { namespace: ns, envVar: 'DATABASE_URL' })
    }
    this.access(sa, src.k8s)
    if (budget < 2) return 1
    const spiffe = `spiffe://acme.example/ns/${ns}/sa/${app}`
    const workload = this.identity(src.spire, 'workload', spiffe, spiffe, {
      owner: sa.owner ?? null,
      attributes: { selectors: [`k8s:ns:${ns}`, `k8s:sa:${app}`], cluster: 'prod-eu' },
    })
    this.emit({
      type: 'edge',
      source: src.spire,
      edgeType: 'runs_as',
      from: { type: 'identity', ref: workload.ref },
      to: { type: 'identity', ref: sa.ref },
    })
    if (rng.chance(0.3)) {
      const cert = this.credential(workload, src.spire, 'certificate', {
        ref: `cert:${rng.hex(32)}`,
        issuer: rng.chance(0.7) ? 'CN=Acme Issuing CA 2,O=Acme' : "CN=R11,O=Let's Encrypt",
        validityDays: rng.chance(0.6) ? 90 : 365,
      })
      this.locations(cert.ref, 'k8s_secret', { namespace: ns })
    }
    const dependency = this.workloads.pick(rng)
    if (dependency && rng.chance(0.3)) {
      this.emit({
        type: 'edge',
        source: src.spire,
        edgeType: 'depends_on',
        from: { type: 'identity', ref: workload.ref },
        to: { type: 'identity', ref: dependency },
      })
    }
    this.workloads.add(workload.ref)
    this.access(workload, rng.chance(0.5) ? src.awsProd : src.gcp)
    return 2
  }

  githubPipeline(): number {
    const { rng } = this
    const repo = this.repoResource()
    const slug = repo.slice('github.com/'.length)
    const workflow = rng.pick(workflows)
    const ref = `github:${slug}/.github/workflows/${workflow}.yml`
    const pipeline = this.identity(
      src.github,
      'ci_pipeline',
      `${ref}#${this.id()}`,
      `${slug}: ${workflow}`,
      { attributes: { repository: slug, oidc: rng.chance(0.4) } },
    )
    this.pipelines.add(pipeline.ref)
    if (rng.chance(0.6)) {
      const secret = this.credential(pipeline, src.github, 'token', {
        ref: `github-actions-secret:${slug}/DEPLOY_TOKEN#${this.id()}`,
        preview: `ghp_…${rng.chars(alnum, 4)}`,
        validityDays: rng.chance(0.5) ? 90 : undefined,
      })
      this.locations(secret.ref, 'ci_secret', { repo, envVar: 'DEPLOY_TOKEN' })
    }
    if (rng.chance(0.3)) {
      const key = this.credential(pipeline, src.github, 'ssh_key', {
        ref: `github-deploy-key:${slug}/${10_000_000 + this.seq++}`,
        preview: `ssh-…${rng.chars(alnum, 4)}`,
      })
      this.locations(key.ref, 'ci_secret', { repo, envVar: 'DEPLOY_KEY' })
    }
    this.access(pipeline, src.github)
    if (rng.chance(0.4)) this.access(pipeline, rng.chance(0.5) ? src.awsProd : src.awsStaging)
    return 1
  }

  githubApp(): number {
    const { rng } = this
    const word = `${rng.pick(domains)}-${rng.pick(nouns)}`
    const appId = 100_000 + this.seq++
    if (rng.chance(0.6)) {
      const bot = this.identity(src.github, 'bot', `github-app:${appId}`, `acme-${word}[bot]`, {
        attributes: { appId, installation: rng.int(10_000_000, 99_999_999) },
      })
      const key = this.credential(bot, src.github, 'private_key', {
        ref: `github-app-key:${appId}/${rng.hex(40)}`,
      })
      this.locations(key.ref, 'vault', { vaultPath: `secret/data/github/apps/${appId}` })
      if (rng.chance(0.4)) {
        const pat = this.credential(bot, src.github, 'token', {
          ref: `github-pat:${1_000_000 + this.seq++}`,
          preview: `ghp_…${rng.chars(alnum, 4)}`,
          validityDays: rng.pick([30, 60, 90, 365]),
        })
        this.locations(pat.ref, rng.pick(['ci_secret', 'env_var', 'git'] as const), {
          envVar: 'GITHUB_TOKEN',
        })
      }
      this.access(bot, src.github)
    } else {
      const clientId = `Iv1.${rng.hex(16)}`
      const app = this.identity(
        src.github,
        'oauth_app',
        `github-oauth:${clientId}`,
        `${word} integration`,
        { attributes: { clientId } },
      )
      const token = this.credential(app, src.github, 'oauth_token', {
        ref: `github-oauth-token:${clientId}/${this.id()}`,
        preview: `gho_…${rng.chars(alnum, 4)}`,
        validityDays: rng.chance(0.5) ? 180 : undefined,
      })
      this.locations(token.ref, rng.pick(['vault', 'env_var'] as const), {})
      const secret = this.credential(app, src.github, 'client_secret', {
        ref: `github-oauth-secret:${clientId}`,
        preview: `${rng.chars(alnum, 4)}…${rng.chars(alnum, 4)}`,
      })
      this.locations(secret.ref, 'vault', {})
      this.access(app, src.github)
    }
    return 1
  }

  vaultAppRole(): number {
    const { rng } = this
    const team = rng.pick(this.teams)
    const role = `${team}-${rng.pick(nouns)}-${this.id()}`
    const client = this.identity(
      src.vault,
      'api_client',
      `vault:main:auth/approle/role/${role}`,
      `auth/approle/role/${role}`,
      { attributes: { authMethod: 'approle', tokenPolicies: [`${team}-read`] } },
    )
    const secretId = this.credential(client, src.vault, 'client_secret', {
      ref: `vault-secret-id:${role}/${rng.hex(12)}`,
      preview: `${rng.hex(4)}…${rng.hex(4)}`,
      validityDays: rng.chance(0.6) ? 30 : undefined,
    })
    this.locations(secretId.ref, rng.pick(['ci_secret', 'env_var', 'k8s_secret'] as const), {})
    if (rng.chance(0.5)) {
      const token = this.credential(client, src.vault, 'token', {
        ref: `vault-token-accessor:${rng.chars(alnum, 24)}`,
        preview: `hvs.…${rng.chars(alnum, 4)}`,
        validityDays: 32,
      })
      this.locations(token.ref, 'env_var', { envVar: 'VAULT_TOKEN' })
    }
    this.access(client, src.vault)
    return 1
  }

  gcpServiceAccount(): number {
    const { rng } = this
    const name = `${`${rng.pick(domains)}-${rng.pick(nouns)}`.slice(0, 22)}-${this.id()}`
    const email = `${name}@acme-data.iam.gserviceaccount.com`
    const sa = this.identity(src.gcp, 'service_account', email, email, {
      attributes: {
        project: 'acme-data',
        uniqueId:
          String(rng.int(100_000_000, 999_999_999)) + String(rng.int(100_000_000, 999_999_999)),
      },
    })
    const keys = rng.chance(0.6) ? rng.int(1, 3) : 0
    for (let i = 0; i < keys; i++) {
      const keyId = rng.hex(40)
      const key = this.credential(sa, src.gcp, 'private_key', {
        ref: `gcp-key:${email}/${keyId}`,
        preview: `${keyId.slice(0, 4)}…${keyId.slice(-4)}`,
        validityDays: rng.chance(0.2) ? 90 : undefined,
      })
      this.locations(key.ref, rng.pick(['file', 'ci_secret', 'k8s_secret', 'git'] as const), {})
    }
    this.access(sa, src.gcp)
    return 1
  }

  azureServicePrincipal(): number {
    const { rng } = this
    const appId = rng.uuid()
    const name = `sp-${rng.pick(domains)}-${rng.pick(nouns)}-${rng.pick(['prod', 'dev', 'shared'])}`
    const sp = this.identity(
      src.azure,
      rng.chance(0.5) ? 'oauth_app' : 'api_client',
      `azure:app:${appId}`,
      name,
      { attributes: { appId, tenant: 'acme.onmicrosoft.example' } },
    )
    const secrets = rng.int(1, 2)
    for (let i = 0; i < secrets; i++) {
      const secret = this.credential(sp, src.azure, 'client_secret', {
        ref: `azure-secret:${appId}/${rng.uuid()}`,
        preview: `${rng.chars(alnum, 3)}8…${rng.chars(alnum, 4)}`,
        validityDays: rng.pick([180, 365, 730]),
      })
      this.locations(secret.ref, rng.pick(['vault', 'env_var', 'ci_secret'] as const), {})
    }
    if (rng.chance(0.3)) {
      const cert = this.credential(sp, src.azure, 'certificate', {
        ref: `azure-cert:${appId}/${rng.hex(40)}`,
        issuer: `CN=${name}`,
        validityDays: 365,
      })
      this.locations(cert.ref, 'vault', {})
    }
    this.access(sp, src.azure)
    return 1
  }

  aiAgents(budget: number): number {
    const { rng } = this
    const person = rng.pick(this.people)
    const count = Math.min(budget, rng.int(1, 3))
    let parent: IdentityContext | undefined
    let scopes = agentTools.filter(() => rng.chance(0.5))
    if (scopes.length === 0) scopes = ['docs:read']
    for (let i = 0; i < count; i++) {
      const purpose = rng.pick(agentPurposes)
      const ref = `spiffe://acme.example/agent/${purpose}/${this.id()}`
      const agent = this.identity(
        src.spire,
        'ai_agent',
        ref,
        `${purpose}-agent${parent ? ' (sub-agent)' : ''}`,
        {
          owner: parent ? person : rng.chance(0.9) ? person : null,
          createdBy: parent ? parent.ref : person,
          createdByType: parent ? 'identity' : 'owner',
          attributes: { model: rng.pick(agentModels), toolScopes: scopes, depth: i },
        },
      )
      this.emit({
        type: 'edge',
        source: src.spire,
        edgeType: 'delegated_to',
        from: parent ? { type: 'identity', ref: parent.ref } : { type: 'owner', ref: person },
        to: { type: 'identity', ref: agent.ref },
        attributes: { toolScopes: scopes },
      })
      const jwt = this.credential(agent, src.spire, 'jwt', {
        ref: `jwt:${rng.uuid()}`,
        preview: `eyJh…${rng.chars(alnum, 4)}`,
        validityDays: rng.chance(0.8) ? 1 : 365,
      })
      this.locations(jwt.ref, rng.pick(['env_var', 'file'] as const), { envVar: 'AGENT_TOKEN' })
      if (rng.chance(0.5)) {
        const token = this.credential(agent, src.spire, 'oauth_token', {
          ref: `oauth:${rng.pick(['jira', 'slack', 'github'])}/${this.id()}`,
          preview: `${rng.chars(alnum, 4)}…${rng.chars(alnum, 4)}`,
          validityDays: 90,
        })
        this.emit({
          type: 'edge',
          source: src.spire,
          edgeType: 'uses_credential',
          from: { type: 'identity', ref: agent.ref },
          to: { type: 'credential', ref: token.ref },
        })
        this.locations(token.ref, 'vault', { vaultPath: `secret/data/agents/${purpose}` })
      }
      this.access(agent, src.spire)
      parent = agent
      // Scope can only narrow along the chain.
      scopes = scopes.filter(() => rng.chance(0.7))
      if (scopes.length === 0) scopes = ['docs:read']
    }
    return count
  }

  sshPrincipal(): number {
    const { rng } = this
    const host = `${rng.pick(hosts)}-${this.id()}.${rng.pick(['prod', 'staging', 'corp'])}.acme.example`
    const user = rng.pick(['deploy', 'backup', 'ansible', 'git', 'jenkins', 'root'])
    const principal = this.identity(
      src.scanner,
      'ssh_principal',
      `ssh:${user}@${host}`,
      `${user}@${host}`,
      { attributes: { host } },
    )
    const keys = rng.int(1, 3)
    for (let i = 0; i < keys; i++) {
      const key = this.credential(principal, src.scanner, 'ssh_key', {
        ref: `ssh-key:SHA256:${rng.chars(alnum, 43)}`,
        preview: `ssh-…${rng.chars(alnum, 4)}`,
      })
      this.locations(key.ref, 'host', { host })
    }
    return 1
  }

  /** A third-party API client whose secrets the scanner found (API keys, webhooks, database URLs). */
  saasClient(): number {
    const { rng } = this
    const vendor = rng.pick(saasVendors)
    const team = rng.pick(this.teams)
    const client = this.identity(
      src.scanner,
      'api_client',
      `saas:${vendor}:${team}:${this.id()}`,
      `${vendor} (${team})`,
      { attributes: { vendor } },
    )
    const kind = rng.int(0, 2)
    const type: CredentialType =
      kind === 0 ? 'api_key' : kind === 1 ? 'webhook' : 'connection_string'
    const preview =
      kind === 0
        ? `${vendor.slice(0, 3)}_…${rng.chars(alnum, 4)}`
        : kind === 1
          ? `http…${rng.chars(alnum, 4)}`
          : `post…${rng.chars(alnum, 4)}`
    const fingerprintRef = this.credential(client, src.scanner, type, {
      ref: `${vendor}-${type}:${this.id()}`,
      preview,
      rotates: kind === 2,
    })
    this.locations(
      fingerprintRef.ref,
      rng.pick(['git', 'env_var', 'file', 'url', 'ci_secret'] as const),
      {},
    )
    this.access(client, src.scanner)
    return 1
  }

  /** A secret the scanner found with no known identity. */
  orphanSecret(): void {
    const { rng } = this
    const fingerprint = `hmac-sha256:${rng.hex(64)}`
    const type = rng.pick([
      'api_key',
      'password',
      'private_key',
      'token',
      'connection_string',
    ] as const)
    const ref = `fp:${fingerprint}`
    this.emit({
      type: 'credential',
      source: src.scanner,
      ref,
      credentialType: type,
      fingerprint,
      preview: type === 'password' ? '****' : `${rng.chars(alnum, 4)}…${rng.chars(alnum, 4)}`,
      state: 'active',
      attributes: { rule: `${type}-generic` },
    })
    this.locations(ref, 'git', {})
  }
}

function actionsFor(resourceType: string): readonly string[] {
  switch (resourceType) {
    case 's3_bucket':
      return ['s3:GetObject', 's3:ListBucket', 's3:PutObject', 's3:DeleteObject']
    case 'dynamodb_table':
      return ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:Scan']
    case 'rds_database':
      return ['rds-db:connect']
    case 'sqs_queue':
      return ['sqs:ReceiveMessage', 'sqs:SendMessage', 'sqs:DeleteMessage']
    case 'secretsmanager_secret':
      return ['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue']
    case 'k8s_namespace':
      return ['get:pods', 'list:configmaps', 'get:secrets', 'create:deployments', 'delete:pods']
    case 'repository':
      return [
        'contents:read',
        'pull_requests:write',
        'contents:write',
        'actions:write',
        'administration:write',
      ]
    case 'vault_mount':
      return ['read', 'list', 'create', 'update', 'delete']
    case 'bigquery_dataset':
      return ['bigquery.tables.getData', 'bigquery.jobs.create', 'bigquery.tables.updateData']
    case 'gcs_bucket':
      return ['storage.objects.get', 'storage.objects.list', 'storage.objects.create']
    case 'key_vault':
      return ['secrets/get', 'secrets/list', 'keys/sign']
    case 'storage_account':
      return ['blob/read', 'blob/write', 'blob/delete']
    case 'ai_tool':
      return ['invoke']
    default:
      return ['api:read', 'api:write']
  }
}

function cap(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1)
}

/**
 * Writes the observations as JSON Lines, respecting back-pressure; returns the line count. Lines
 * are encoded straight into 4 MiB buffers, which is faster than building large strings.
 */
export async function writeJsonLines(
  observations: Iterable<Observation>,
  out: NodeJS.WritableStream,
): Promise<number> {
  const size = 4 << 20
  let lines = 0
  let buffer = Buffer.allocUnsafe(size)
  let used = 0
  const flush = async () => {
    if (used === 0) return
    const full = out.write(buffer.subarray(0, used))
    // The stream keeps the written buffer until it is flushed, so start a new one.
    buffer = Buffer.allocUnsafe(size)
    used = 0
    if (!full) await once(out, 'drain')
  }
  for (const observation of observations) {
    const line = JSON.stringify(observation)
    lines++
    if (used + line.length * 3 + 1 > size) await flush()
    if (line.length * 3 + 1 > size) {
      if (!out.write(`${line}\n`)) await once(out, 'drain')
      continue
    }
    used += buffer.write(line, used)
    buffer[used++] = 0x0a
  }
  await flush()
  return lines
}

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      seed: { type: 'string', default: String(defaultSeed) },
      identities: { type: 'string', default: String(defaultIdentities) },
      now: { type: 'string', default: defaultNow },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    process.stdout.write(
      'usage: npx tsx scripts/generate-inventory.ts [--seed 42] [--identities 2000] [--now ISO] [--out FILE]\n',
    )
    return
  }
  const seed = Number(values.seed)
  const identities = Number(values.identities)
  if (!Number.isSafeInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`)
  if (!Number.isSafeInteger(identities) || identities < 1) {
    throw new Error(`--identities must be a positive integer, got ${values.identities}`)
  }
  const now = new Date(values.now)
  if (Number.isNaN(now.getTime()))
    throw new Error(`--now must be an ISO 8601 instant, got ${values.now}`)
  const started = performance.now()
  const out = values.out ? createWriteStream(values.out) : process.stdout
  const lines = await writeJsonLines(generateObservations({ seed, identities, now }), out)
  if (out !== process.stdout) {
    out.end()
    await once(out, 'finish')
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1)
  process.stderr.write(`${lines} observations for ${identities} identities in ${seconds} s\n`)
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(
      `generate-inventory: ${err instanceof Error ? err.message : String(err)}\n`,
    )
    process.exitCode = 2
  })
}
