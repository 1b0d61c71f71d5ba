import type { CredentialType, Observation } from '../../inventory/observation.js'
import { createCollector, type Collector } from '../collector.js'
import type { Connector, ConnectorFactory, DiscoverContext } from '../connector.js'
import { isObj, str, type Json } from '../json-export.js'
import { OptionReader } from '../options.js'
import {
  openLiveClient,
  readLiveApi,
  requireOneInput,
  withDocuments,
  type LiveApiConfig,
} from '../live/live-source.js'
import { fetchVault } from './vault-api.js'
import { inputError } from '../parse/input-error.js'
import { formatPath, parseJsonInput } from '../parse/json.js'

/**
 * HashiCorp Vault / OpenBao from an export file of HTTP API responses keyed by request path (the
 * `{"data": …}` bodies `vault read -format=json PATH` prints):
 *
 * - `sys/auth`: auth methods
 * - `sys/policies/acl/<name>`: ACL policies (HCL, read for paths and capabilities)
 * - `auth/<mount>/role/<name>`: AppRole roles (token policies, TTLs, secret-id settings)
 * - `auth/<mount>/role/<name>/secret-id-accessor/lookup/<accessor>`: secret-id metadata
 * - `auth/token/lookup-accessor/<accessor>`: tokens, by accessor (never the token)
 * - `sys/leases/lookup/<lease id>`: leases of dynamic secrets
 */
export const createVaultConnector: ConnectorFactory = (config) => {
  const o = new OptionReader(config)
  const file = o.path('file')
  const live = readLiveApi(o, { tokenEnv: 'VAULT_TOKEN', env: config.env })
  const namespace = o.string('namespace')
  const cluster = o.string('cluster') ?? config.name.replace(/^(vault|openbao):/, '')
  requireOneInput(o, file !== undefined, live, 'file')
  if (namespace !== undefined && !live) o.problems.push('namespace: only with api')
  const problems = o.finish()
  if (problems.length > 0) return { ok: false, problems }
  const connector: Connector = {
    kind: 'vault',
    name: config.name,
    scope: config.scope ?? 'full',
    discover: (ctx) =>
      live
        ? discoverVaultLive(ctx, config.name, cluster, live, namespace)
        : discoverVault(ctx, config.name, cluster, file!),
  }
  return { ok: true, connector }
}

/** The live API (`X-Vault-Token`, optional `X-Vault-Namespace`), read into the export document. */
async function* discoverVaultLive(
  ctx: DiscoverContext,
  source: string,
  cluster: string,
  live: LiveApiConfig,
  namespace: string | undefined,
): AsyncGenerator<Observation> {
  const client = await openLiveClient(ctx, live, {
    auth: { header: 'X-Vault-Token' },
    ...(namespace === undefined ? {} : { headers: { 'x-vault-namespace': namespace } }),
  })
  const doc = await fetchVault(ctx, client)
  const label = `${client.baseUrl}v1`
  yield* discoverVault(withDocuments(ctx, new Map([[label, doc]])), source, cluster, label)
}

/** Vault's "never": the zero time, or a missing value. */
function vaultTime(v: unknown): string | undefined {
  if (typeof v === 'number' && v > 0) return new Date(v * 1000).toISOString()
  if (typeof v !== 'string' || v === '' || v.startsWith('0001-01-01')) return undefined
  const ms = Date.parse(v)
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString()
}

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []

/** `path "secret/data/payments/*" { capabilities = ["read", "list"] }` blocks of an ACL policy. */
export function policyPaths(hcl: string): { path: string; capabilities: string[] }[] {
  const out: { path: string; capabilities: string[] }[] = []
  const re = /path\s+"([^"]+)"\s*\{([^}]*)\}/g
  for (const m of hcl.matchAll(re)) {
    const caps = /capabilities\s*=\s*\[([^\]]*)\]/.exec(m[2]!)
    const capabilities = caps ? [...caps[1]!.matchAll(/"([^"]+)"/g)].map((x) => x[1]!) : []
    out.push({ path: m[1]!, capabilities })
  }
  return out
}

async function* discoverVault(
  ctx: DiscoverContext,
  source: string,
  cluster: string,
  file: string,
): AsyncGenerator<Observation> {
  ctx.progress?.(`reading ${file}`)
  const parsed = parseJsonInput(await ctx.files.readFile(file), file)
  if (parsed.error) ctx.report(parsed.error)
  const doc = parsed.value
  // A response cut short is dropped whole: half a token lookup is not a token.
  const cut = parsed.errorPath?.[0]
  if (isObj(doc) && typeof cut === 'string' && parsed.errorPath!.length > 1) delete doc[cut]
  const c = createCollector(source)
  if (!isObj(doc)) {
    if (doc !== undefined)
      ctx.report(
        inputError(file, 'expected an object of API responses keyed by path', { path: '$' }),
      )
    yield* c.drain()
    return
  }
  const base = `vault://${cluster}`
  const data = (key: string): Json | undefined => {
    const v = doc[key]
    if (isObj(v) && isObj(v.data)) return v.data
    ctx.report(
      inputError(file, 'expected a response with a data object', { path: formatPath([key]) }),
    )
    return undefined
  }
  const policies = new Map<string, { path: string; capabilities: string[] }[]>()
  const roles: { ref: string; policies: string[] }[] = []
  const grantPolicies = (identity: string, names: string[]) => {
    for (const name of names) {
      for (const p of policies.get(name) ?? []) {
        if (p.capabilities.includes('deny') || p.capabilities.length === 0) continue
        const resource = `${base}/${p.path}`
        c.resource({ ref: resource, resourceType: 'vault_path', name: p.path })
        c.grant(identity, resource, p.capabilities, `${base}/sys/policies/acl/${name}`)
      }
    }
  }
  const keys = Object.keys(doc)
  // Policies first: roles and tokens refer to them by name.
  for (const key of keys) {
    const m = /^sys\/policies?\/acl\/(.+)$|^sys\/policy\/(.+)$/.exec(key)
    if (!m) continue
    const d = data(key)
    const text = d ? (str(d.policy) ?? str(d.rules)) : undefined
    if (d && !text)
      ctx.report(inputError(file, 'policy without its text', { path: formatPath([key, 'data']) }))
    if (text) policies.set((m[1] ?? m[2])!, policyPaths(text))
  }
  let known = policies.size
  for (const key of keys) {
    let m: RegExpExecArray | null
    if (key === 'sys/auth') {
      known++
      const d = data(key)
      for (const [path, method] of Object.entries(d ?? {})) {
        if (!isObj(method)) continue
        c.resource({
          ref: `${base}/auth/${path.replace(/\/$/, '')}`,
          resourceType: 'vault_auth_method',
          name: `${path} (${str(method.type) ?? 'unknown'})`,
          attributes: {
            type: str(method.type) ?? null,
            accessor: str(method.accessor) ?? null,
            local: method.local === true,
          },
        })
      }
    } else if ((m = /^auth\/(.+)\/role\/([^/]+)$/.exec(key))) {
      known++
      const d = data(key)
      if (!d) continue
      const ref = `${base}/auth/${m[1]}/role/${m[2]}`
      const tokenPolicies = [...strings(d.token_policies), ...strings(d.policies)]
      c.identity({
        ref,
        kind: 'api_client',
        name: `${m[1]}/role/${m[2]}`,
        state: 'active',
        attributes: {
          mount: m[1],
          policies: [...new Set(tokenPolicies)].sort(),
          tokenTtl: d.token_ttl ?? null,
          tokenMaxTtl: d.token_max_ttl ?? null,
          secretIdTtl: d.secret_id_ttl ?? null,
          bindSecretId: d.bind_secret_id !== false,
          secretIdBoundCidrs: strings(d.secret_id_bound_cidrs),
          tokenBoundCidrs: strings(d.token_bound_cidrs),
        },
      })
      roles.push({ ref, policies: tokenPolicies })
    } else if ((m = /^auth\/(.+)\/role\/([^/]+)\/secret-id-accessor\/lookup\/([^/]+)$/.exec(key))) {
      known++
      const d = data(key)
      if (!d) continue
      const accessor = str(d.secret_id_accessor) ?? m[3]!
      const identity = `${base}/auth/${m[1]}/role/${m[2]}`
      credential(c, `vault-secret-id:${cluster}/${accessor}`, 'client_secret', identity, {
        createdAt: vaultTime(d.creation_time),
        expiresAt: vaultTime(d.expiration_time),
        attributes: {
          accessor,
          numUses: d.secret_id_num_uses ?? null,
          cidrList: strings(d.cidr_list),
        },
        location: `auth/${m[1]}/role/${m[2]}/secret-id`,
        base,
      })
    } else if ((m = /^auth\/token\/lookup-accessor\/([^/]+)$/.exec(key))) {
      known++
      const d = data(key)
      if (!d) continue
      const accessor = str(d.accessor) ?? m[1]!
      const meta = isObj(d.meta) ? d.meta : {}
      const path = str(d.path) ?? ''
      const role = str(meta.role_name)
      const mount = /^auth\/(.+)\/login$/.exec(path)?.[1]
      const identity = role && mount ? `${base}/auth/${mount}/role/${role}` : undefined
      credential(c, `vault-token:${cluster}/${accessor}`, 'token', identity, {
        createdAt: vaultTime(d.issue_time) ?? vaultTime(d.creation_time),
        expiresAt: vaultTime(d.expire_time),
        attributes: {
          accessor,
          displayName: str(d.display_name) ?? null,
          policies: strings(d.policies),
          tokenType: str(d.type) ?? null,
          orphan: d.orphan === true,
          renewable: d.renewable === true,
          path,
        },
        base,
      })
    } else if ((m = /^sys\/leases\/lookup\/(.+)$/.exec(key))) {
      known++
      const d = data(key)
      if (!d) continue
      const id = str(d.id) ?? m[1]!
      const type: CredentialType = id.startsWith('database/')
        ? 'password'
        : id.startsWith('aws/')
          ? 'access_key'
          : 'token'
      credential(c, `vault-lease:${cluster}/${id}`, type, undefined, {
        createdAt: vaultTime(d.issue_time),
        expiresAt: vaultTime(d.expire_time),
        attributes: {
          leaseId: id,
          renewable: d.renewable === true,
          lastRenewal: vaultTime(d.last_renewal) ?? null,
        },
        location: id.replace(/\/[^/]+$/, ''),
        base,
      })
    }
  }
  for (const r of roles) grantPolicies(r.ref, r.policies)
  if (known === 0)
    ctx.report(inputError(file, 'no known Vault API path among the keys', { path: '$' }))
  yield* c.drain()
}

function credential(
  c: Collector,
  ref: string,
  credentialType: CredentialType,
  identity: string | undefined,
  o: {
    createdAt: string | undefined
    expiresAt: string | undefined
    attributes: Record<string, unknown>
    location?: string
    base: string
  },
): void {
  c.credential({
    ref,
    credentialType,
    ...(identity ? { identity } : {}),
    ...(o.createdAt ? { createdAt: o.createdAt } : {}),
    ...(o.expiresAt ? { expiresAt: o.expiresAt } : {}),
    state: 'active',
    attributes: o.attributes,
  })
  if (o.location)
    c.location({
      credential: ref,
      locationType: 'vault',
      path: o.location,
      host: o.base.slice('vault://'.length),
    })
}
