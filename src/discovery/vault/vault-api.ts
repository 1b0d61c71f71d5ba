import type { DiscoverContext } from '../connector.js'
import type { HttpJsonClient } from '../live/http-client.js'
import { tryFetch } from '../live/live-source.js'
import { maxPages } from '../live/pagination.js'

type Json = Record<string, unknown>
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Reads a Vault / OpenBao cluster through its HTTP API into the export document the file connector
 * parses (`vault read -format=json` bodies keyed by request path): auth methods, ACL policies,
 * AppRole roles and their secret-id accessors, token accessors, and leases. Only metadata is read:
 * token lookups go by accessor, secret ids by accessor, and no secret engine is ever read.
 *
 * The token needs `list`/`read` (and `sudo` for `sys/leases/lookup`) on those paths; a path it may
 * not read is reported and skipped.
 */
export async function fetchVault(
  ctx: DiscoverContext,
  client: HttpJsonClient,
  options: { maxLeases?: number } = {},
): Promise<Json> {
  const doc: Json = {}
  const get = (path: string) => client.request(`v1/${path}`).then((r) => r.body)
  const post = (path: string, body: Json) =>
    client.request(`v1/${path}`, { method: 'POST', body }).then((r) => r.body)
  /** LIST, where Vault answers 404 for "nothing here". */
  const list = async (path: string): Promise<string[]> => {
    const res = await client.request(`v1/${path}`, { query: { list: 'true' }, okStatuses: [404] })
    if (res.status === 404) return []
    const data = isObj(res.body) ? res.body.data : undefined
    const keys = isObj(data) ? data.keys : undefined
    return Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : []
  }

  ctx.progress?.('Vault: auth methods')
  const auth = await tryFetch(ctx, () => get('sys/auth'))
  if (auth !== undefined) doc['sys/auth'] = auth
  const mounts = isObj(auth) && isObj(auth.data) ? auth.data : {}

  ctx.progress?.('Vault: ACL policies')
  for (const name of (await tryFetch(ctx, () => list('sys/policies/acl'))) ?? []) {
    const body = await tryFetch(ctx, () => get(`sys/policies/acl/${encodeURIComponent(name)}`))
    if (body !== undefined) doc[`sys/policies/acl/${name}`] = body
  }

  for (const [mountPath, method] of Object.entries(mounts)) {
    if (!isObj(method) || method.type !== 'approle') continue
    const mount = mountPath.replace(/\/$/, '')
    ctx.progress?.(`Vault: AppRoles under auth/${mount}`)
    for (const role of (await tryFetch(ctx, () => list(`auth/${mount}/role`))) ?? []) {
      const rolePath = `auth/${mount}/role/${role}`
      const body = await tryFetch(ctx, () => get(`auth/${mount}/role/${encodeURIComponent(role)}`))
      if (body === undefined) continue
      doc[rolePath] = body
      const accessors =
        (await tryFetch(ctx, () =>
          list(`auth/${mount}/role/${encodeURIComponent(role)}/secret-id`),
        )) ?? []
      for (const accessor of accessors) {
        const lookup = await tryFetch(ctx, () =>
          post(`auth/${mount}/role/${encodeURIComponent(role)}/secret-id-accessor/lookup`, {
            secret_id_accessor: accessor,
          }),
        )
        if (lookup !== undefined) doc[`${rolePath}/secret-id-accessor/lookup/${accessor}`] = lookup
      }
    }
  }

  ctx.progress?.('Vault: token accessors')
  for (const accessor of (await tryFetch(ctx, () => list('auth/token/accessors'))) ?? []) {
    const body = await tryFetch(ctx, () => post('auth/token/lookup-accessor', { accessor }))
    if (body !== undefined) doc[`auth/token/lookup-accessor/${accessor}`] = body
  }

  ctx.progress?.('Vault: leases')
  const limit = options.maxLeases ?? 100_000
  let leases = 0
  const pending = ['']
  for (let step = 0; pending.length > 0 && step < maxPages * 10; step++) {
    const prefix = pending.shift()!
    const keys = (await tryFetch(ctx, () => list(`sys/leases/lookup/${prefix}`))) ?? []
    for (const key of keys) {
      if (key.endsWith('/')) {
        pending.push(prefix + key)
        continue
      }
      if (leases >= limit) break
      const id = prefix + key
      const body = await tryFetch(ctx, () =>
        client
          .request('v1/sys/leases/lookup', { method: 'PUT', body: { lease_id: id } })
          .then((r) => r.body),
      )
      if (body !== undefined) {
        doc[`sys/leases/lookup/${id}`] = body
        leases++
      }
    }
  }
  return doc
}
