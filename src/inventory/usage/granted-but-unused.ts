import { sql } from 'kysely'
import { TesseraError } from '../../errors.js'
import type { Store } from '../../store/store.js'

export interface UnusedGrant {
  identityId: string
  identityRef: string
  resourceRef: string
  via: string | null
  /** Granted actions with no matching usage since `since`. */
  unusedActions: string[]
  usedActions: string[]
  /** The latest usage hour of any granted action on this grant's resources, if any. */
  lastUsedAt: string | null
  grantedSince: string
}

export interface GrantedButUnusedOptions {
  db: Store['db']
  /** Usage at or after this instant counts (e.g. now − 90 days). */
  since: Date
  /** Only grants that already existed at `since` (default true: a newer grant had no chance). */
  onlyOlderGrants?: boolean
  /** Only these identities (ids); all when omitted. */
  identityIds?: readonly string[]
}

/**
 * Current grants whose actions saw no use since `since`. IAM-style wildcards are honoured on both
 * sides of the match: a grant of `s3:Get*` on `arn:aws:s3:::logs/*` is used by `s3:GetObject` on
 * `arn:aws:s3:::logs/2026/11/x`; a grant on a Kubernetes collection (`…/namespaces/ns/secrets`) is
 * used by access to any object in it. A grant is reported when at least one of its actions is unused.
 */
export async function grantedButUnused(options: GrantedButUnusedOptions): Promise<UnusedGrant[]> {
  const since = options.since
  if (!(since instanceof Date) || Number.isNaN(since.getTime())) {
    throw new TesseraError('TSR_VALIDATION', 'since is not a valid instant')
  }
  const s = since.toISOString()
  const older = options.onlyOlderGrants ?? true
  const ids = options.identityIds
  const grants = await sql<{
    identity_id: string
    identity_ref: string
    resource_ref: string
    via: string | null
    actions: string[]
    valid_from: Date | string
  }>`
    select g.identity_id, g.identity_ref, g.resource_ref, g.via, g.actions, min_from.valid_from
    from "grant" g
    join lateral (
      select min(h.valid_from) as valid_from from "grant" h where h.id = g.id
    ) min_from on true
    where g.valid_to is null
      ${ids ? sql`and g.identity_id = any(${[...ids]}::uuid[])` : sql``}
      ${older ? sql`and min_from.valid_from <= ${s}::timestamptz` : sql``}
    order by g.identity_ref, g.resource_ref
  `.execute(options.db)
  if (grants.rows.length === 0) return []
  const identityIds = [...new Set(grants.rows.map((g) => g.identity_id))]
  const out: UnusedGrant[] = []
  for (let i = 0; i < identityIds.length; i += 1000) {
    const part = identityIds.slice(i, i + 1000)
    const used = await sql<{
      identity_id: string
      resource_ref: string
      action: string
      last: Date | string
    }>`
      select identity_id, resource_ref, action, max(hour) as last from usage
      where identity_id = any(${part}::uuid[]) and hour + interval '1 hour' > ${s}::timestamptz
        and count > 0
      group by identity_id, resource_ref, action
    `.execute(options.db)
    const byIdentity = new Map<string, typeof used.rows>()
    for (const u of used.rows) {
      const list = byIdentity.get(u.identity_id) ?? []
      list.push(u)
      byIdentity.set(u.identity_id, list)
    }
    const partSet = new Set(part)
    for (const g of grants.rows) {
      if (!partSet.has(g.identity_id)) continue
      const usage = (byIdentity.get(g.identity_id) ?? []).filter((u) =>
        resourceMatches(g.resource_ref, u.resource_ref),
      )
      const usedActions: string[] = []
      const unusedActions: string[] = []
      let last: string | null = null
      for (const action of [...g.actions].sort()) {
        const hits = usage.filter((u) => actionMatches(action, u.action))
        if (hits.length === 0) unusedActions.push(action)
        else {
          usedActions.push(action)
          for (const h of hits) {
            const t = new Date(h.last).toISOString()
            if (last === null || t > last) last = t
          }
        }
      }
      if (unusedActions.length === 0) continue
      out.push({
        identityId: g.identity_id,
        identityRef: g.identity_ref,
        resourceRef: g.resource_ref,
        via: g.via,
        unusedActions,
        usedActions,
        lastUsedAt: last,
        grantedSince: new Date(g.valid_from).toISOString(),
      })
    }
  }
  return out
}

const globCache = new Map<string, RegExp>()

/** IAM-style glob: `*` any run of characters, `?` one character; case-insensitive when asked. */
export function globMatches(pattern: string, value: string, ignoreCase = false): boolean {
  if (!pattern.includes('*') && !pattern.includes('?')) {
    return ignoreCase ? pattern.toLowerCase() === value.toLowerCase() : pattern === value
  }
  const key = (ignoreCase ? 'i' : 's') + pattern
  let re = globCache.get(key)
  if (!re) {
    const body = pattern
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('')
    re = new RegExp(`^${body}$`, ignoreCase ? 'is' : 's')
    if (globCache.size > 10_000) globCache.clear()
    globCache.set(key, re)
  }
  return re.test(value)
}

/** IAM actions compare case-insensitively (`s3:getobject` is `s3:GetObject`). */
export function actionMatches(granted: string, used: string): boolean {
  return globMatches(granted, used, true)
}

export function resourceMatches(granted: string, used: string): boolean {
  if (granted === '*' || granted === used) return true
  if (globMatches(granted, used)) return true
  // A Kubernetes grant names a collection; its objects live under it.
  return granted.startsWith('k8s://') && used.startsWith(granted + '/')
}
