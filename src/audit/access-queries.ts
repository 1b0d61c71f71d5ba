import { sql } from 'kysely'
import { TesseraError } from '../errors.js'
import { entityId, isUuid } from '../inventory/ids.js'
import type { Store } from '../store/store.js'

/**
 * Temporal access questions answered from the bitemporal graph and the audit log:
 *
 * - who could access resource R at instant T: grants valid at T whose identity existed and was
 *   active at T and held a usable credential at T (a credential version valid, active and unexpired
 *   at T, or an SVID of its SPIFFE ID valid at T and not on the deny-list at T);
 * - who did access R between T1 and T2: `authz.decision` events with decision `allow` in [T1, T2),
 *   and `usage` rows whose hour overlaps [T1, T2) (usage is per hour, so it is marked as such);
 * - what could identity X reach at T: the same as who-could, from the identity's side.
 *
 * Intervals are half-open everywhere: a version valid from A to B is valid at A and not at B.
 */

export interface AccessQueryDeps {
  store: Pick<Store, 'db'>
}

export interface CredentialAtT {
  kind: 'credential' | 'svid'
  /** Credential ref, or `x509:<serial>` / `jwt:<jti>` for an SVID. */
  ref: string
  type: string
  validFrom: string
  validTo: string | null
}

export interface PolicyAtT {
  name: string
  version: number
}

export interface GrantAtT {
  identityId: string
  identityRef: string
  identityName: string | null
  identityKind: string | null
  resourceRef: string
  actions: string[]
  via: string | null
  /** The Cedar or governance policy version named by `via` that was active at T, when recorded. */
  policy: PolicyAtT | null
  grantValidFrom: string
  grantValidTo: string | null
  credentials: CredentialAtT[]
}

export interface WhoCouldResult {
  resource: string
  at: string
  /** Granted, existing, active and holding a usable credential at T. */
  could: GrantAtT[]
  /** Granted at T but unable to use it then, with the reason. */
  blocked: (GrantAtT & { reason: 'no-identity' | 'identity-inactive' | 'no-credential' })[]
}

export interface ReachResult {
  identity: string
  identityId: string
  at: string
  /** The identity's version at T, when it existed. */
  state: string | null
  usable: boolean
  /** Resources the identity held grants on at T; `usable` says whether it could act then. */
  grants: GrantAtT[]
  credentials: CredentialAtT[]
}

export interface AccessActivity {
  identityRef: string
  identityId: string
  actions: string[]
  /** Allowed decisions in the range. */
  decisions: number
  /** Denied decisions in the range (attempts, not access). */
  denied: number
  firstAt: string | null
  lastAt: string | null
  /** Usage rows whose hour overlaps the range: hour-granular, so possibly just outside it. */
  usage: { action: string; hour: string; count: number; source: string }[]
}

export interface WhoDidResult {
  resource: string
  from: string
  to: string
  identities: AccessActivity[]
}

export interface AccessQueries {
  whoCould(resource: string, at: Date): Promise<WhoCouldResult>
  whoDid(resource: string, from: Date, to: Date): Promise<WhoDidResult>
  reach(identity: string, at: Date): Promise<ReachResult>
}

const maxRef = 2048

function checkRef(value: string, field: string): string {
  const v = typeof value === 'string' ? value.trim() : ''
  if (v.length === 0 || v.length > maxRef) {
    throw new TesseraError('TSR_VALIDATION', `${field} must be 1 to ${maxRef} characters`)
  }
  return v
}

function checkInstant(value: Date, field: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new TesseraError('TSR_VALIDATION', `${field} is not a valid instant`)
  }
  return value
}

const iso = (d: Date | string | null): string | null =>
  d === null ? null : new Date(d).toISOString()

interface GrantRowAt {
  identity_id: string
  identity_ref: string
  resource_ref: string
  actions: string[]
  via: string | null
  valid_from: Date | string
  valid_to: Date | string | null
  name: string | null
  kind: string | null
  state: string | null
  identity_exists: boolean
}

export function createAccessQueries(deps: AccessQueryDeps): AccessQueries {
  const db = deps.store.db

  /** Grant versions valid at `at`, with the identity's version at `at` (if any). */
  async function grantsAt(at: Date, by: { resource: string } | { identityId: string }) {
    const t = at.toISOString()
    const filter =
      'resource' in by
        ? sql`g.resource_ref = ${by.resource}`
        : sql`g.identity_id = ${by.identityId}::uuid`
    const rows = await sql<GrantRowAt>`
      select g.identity_id, g.identity_ref, g.resource_ref, g.actions, g.via, g.valid_from,
        g.valid_to, i.name, i.kind, i.state, (i.id is not null) as identity_exists
      from "grant" g
      left join lateral (
        select id, name, kind, state from identity
        where id = g.identity_id and valid_from <= ${t}::timestamptz
          and (valid_to is null or valid_to > ${t}::timestamptz)
        order by valid_from desc limit 1
      ) i on true
      where ${filter} and g.valid_from <= ${t}::timestamptz
        and (g.valid_to is null or g.valid_to > ${t}::timestamptz)
      order by g.identity_ref, g.resource_ref, g.via nulls first
    `.execute(db)
    return rows.rows
  }

  /** Usable credentials at `at`, per identity id: credential versions and SPIFFE SVIDs. */
  async function credentialsAt(
    at: Date,
    identities: readonly { id: string; ref: string }[],
  ): Promise<Map<string, CredentialAtT[]>> {
    const out = new Map<string, CredentialAtT[]>()
    if (identities.length === 0) return out
    const t = at.toISOString()
    const ids = identities.map((i) => i.id)
    const creds = await sql<{
      identity_id: string
      ref: string
      credential_type: string
      valid_from: Date | string
      valid_to: Date | string | null
      created_at: Date | string | null
      expires_at: Date | string | null
    }>`
      select identity_id, ref, credential_type, valid_from, valid_to, created_at, expires_at
      from credential
      where identity_id = any(${ids}::uuid[]) and valid_from <= ${t}::timestamptz
        and (valid_to is null or valid_to > ${t}::timestamptz)
        and state = 'active'
        and (expires_at is null or expires_at > ${t}::timestamptz)
        and (created_at is null or created_at <= ${t}::timestamptz)
      order by ref
    `.execute(db)
    for (const c of creds.rows) {
      const list = out.get(c.identity_id) ?? []
      list.push({
        kind: 'credential',
        ref: c.ref,
        type: c.credential_type,
        validFrom: iso(c.created_at ?? c.valid_from)!,
        validTo: iso(earliest(c.valid_to, c.expires_at)),
      })
      out.set(c.identity_id, list)
    }
    const spiffe = identities.filter((i) => i.ref.startsWith('spiffe://'))
    if (spiffe.length > 0) {
      const byRef = new Map(spiffe.map((i) => [i.ref, i.id]))
      // An SVID counts unless a deny-list entry for it (or its SPIFFE ID) was in force at T.
      const svids = await sql<{
        spiffe_id: string
        svid_type: string
        serial: string | null
        jti: string | null
        not_before: Date | string
        not_after: Date | string
      }>`
        select s.spiffe_id, s.svid_type, s.serial, s.jti, s.not_before, s.not_after
        from issuance s
        where s.spiffe_id = any(${[...byRef.keys()]}::text[])
          and s.not_before <= ${t}::timestamptz and s.not_after > ${t}::timestamptz
          and not exists (
            select 1 from revocation r
            where r.created_at <= ${t}::timestamptz
              and (r.expires_at is null or r.expires_at > ${t}::timestamptz)
              and ((r.target_type = 'spiffe_id' and r.value = s.spiffe_id)
                or (r.target_type = 'serial' and r.value = s.serial)
                or (r.target_type = 'jti' and r.value = s.jti)
                or (r.target_type = 'agent' and r.value = s.agent_id::text))
          )
        order by s.not_before
        limit 1000
      `.execute(db)
      for (const s of svids.rows) {
        const id = byRef.get(s.spiffe_id)!
        const list = out.get(id) ?? []
        list.push({
          kind: 'svid',
          ref: s.svid_type === 'x509' ? `x509:${s.serial ?? ''}` : `jwt:${s.jti ?? ''}`,
          type: `${s.svid_type}-svid`,
          validFrom: iso(s.not_before)!,
          validTo: iso(s.not_after),
        })
        out.set(id, list)
      }
    }
    return out
  }

  /** For each policy name, the latest version created at or before T. */
  async function policiesAt(at: Date, names: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>()
    if (names.length === 0) return out
    const rows = await sql<{ name: string; version: number }>`
      select name, max(version)::int as version from policy
      where name = any(${[...new Set(names)]}::text[]) and created_at <= ${at.toISOString()}::timestamptz
      group by name
    `.execute(db)
    for (const r of rows.rows) out.set(r.name, Number(r.version))
    return out
  }

  async function resolveGrants(at: Date, rows: readonly GrantRowAt[]): Promise<GrantAtT[]> {
    const identities = [...new Map(rows.map((r) => [r.identity_id, r.identity_ref])).entries()].map(
      ([id, ref]) => ({ id, ref }),
    )
    const [creds, policies] = await Promise.all([
      credentialsAt(at, identities),
      policiesAt(
        at,
        rows.flatMap((r) => (r.via === null ? [] : [r.via])),
      ),
    ])
    return rows.map((r) => ({
      identityId: r.identity_id,
      identityRef: r.identity_ref,
      identityName: r.name,
      identityKind: r.kind,
      resourceRef: r.resource_ref,
      actions: [...r.actions].sort(),
      via: r.via,
      policy:
        r.via !== null && policies.has(r.via)
          ? { name: r.via, version: policies.get(r.via)! }
          : null,
      grantValidFrom: iso(r.valid_from)!,
      grantValidTo: iso(r.valid_to),
      credentials: creds.get(r.identity_id) ?? [],
    }))
  }

  return {
    async whoCould(resource, at) {
      const ref = checkRef(resource, 'resource')
      checkInstant(at, 'at')
      const rows = await grantsAt(at, { resource: ref })
      const grants = await resolveGrants(at, rows)
      const result: WhoCouldResult = { resource: ref, at: at.toISOString(), could: [], blocked: [] }
      grants.forEach((g, i) => {
        const row = rows[i]!
        if (!row.identity_exists) result.blocked.push({ ...g, reason: 'no-identity' })
        else if (row.state !== 'active') result.blocked.push({ ...g, reason: 'identity-inactive' })
        else if (g.credentials.length === 0) result.blocked.push({ ...g, reason: 'no-credential' })
        else result.could.push(g)
      })
      return result
    },

    async reach(identity, at) {
      const ref = checkRef(identity, 'identity')
      checkInstant(at, 'at')
      const t = at.toISOString()
      // An identity is named by its ref (ARN, SPIFFE ID…) or by its id.
      const byId = isUuid(ref)
        ? await sql<{ ref: string }>`
            select ref from identity where id = ${ref}::uuid order by valid_from desc limit 1
          `.execute(db)
        : undefined
      const identityRef = byId?.rows[0]?.ref ?? ref
      const identityId = isUuid(ref) ? ref.toLowerCase() : entityId('identity', ref)
      const version = await sql<{ state: string }>`
        select state from identity where id = ${identityId}::uuid and valid_from <= ${t}::timestamptz
          and (valid_to is null or valid_to > ${t}::timestamptz)
        order by valid_from desc limit 1
      `.execute(db)
      const state = version.rows[0]?.state ?? null
      const rows = await grantsAt(at, { identityId })
      const grants = await resolveGrants(at, rows)
      const credentials =
        grants[0]?.credentials ??
        (await credentialsAt(at, [{ id: identityId, ref: identityRef }])).get(identityId) ??
        []
      return {
        identity: identityRef,
        identityId,
        at: t,
        state,
        usable: state === 'active' && credentials.length > 0,
        grants,
        credentials,
      }
    },

    async whoDid(resource, from, to) {
      const ref = checkRef(resource, 'resource')
      checkInstant(from, 'from')
      checkInstant(to, 'to')
      if (to.getTime() <= from.getTime()) {
        throw new TesseraError('TSR_VALIDATION', '--to must be later than --from')
      }
      const f = from.toISOString()
      const tt = to.toISOString()
      const decisions = await sql<{
        subject: string
        decision: string
        action: string | null
        n: number | string
        first_at: Date | string
        last_at: Date | string
      }>`
        select subject, decision, action, count(*) as n, min(at) as first_at, max(at) as last_at
        from event
        where event_type = 'authz.decision' and resource = ${ref} and subject is not null
          and decision in ('allow', 'deny')
          and at >= ${f}::timestamptz and at < ${tt}::timestamptz
        group by subject, decision, action
      `.execute(db)
      // Usage rows cover [hour, hour + 1h); keep those that overlap [from, to).
      const usage = await sql<{
        identity_id: string
        identity_ref: string
        action: string
        hour: Date | string
        count: number
        source: string
      }>`
        select identity_id, identity_ref, action, hour, count, source from usage
        where resource_ref = ${ref} and hour < ${tt}::timestamptz
          and hour > ${f}::timestamptz - interval '1 hour'
        order by identity_ref, hour, action
      `.execute(db)
      const byId = new Map<string, AccessActivity & { actionSet: Set<string> }>()
      const entry = (id: string, identityRef: string) => {
        let a = byId.get(id)
        if (!a) {
          a = {
            identityRef,
            identityId: id,
            actions: [],
            actionSet: new Set(),
            decisions: 0,
            denied: 0,
            firstAt: null,
            lastAt: null,
            usage: [],
          }
          byId.set(id, a)
        }
        return a
      }
      for (const d of decisions.rows) {
        const id = isUuid(d.subject) ? d.subject.toLowerCase() : entityId('identity', d.subject)
        const a = entry(id, d.subject)
        if (d.decision === 'deny') {
          a.denied += Number(d.n)
          continue
        }
        a.decisions += Number(d.n)
        if (d.action !== null) a.actionSet.add(d.action)
        const first = iso(d.first_at)!
        const last = iso(d.last_at)!
        if (a.firstAt === null || first < a.firstAt) a.firstAt = first
        if (a.lastAt === null || last > a.lastAt) a.lastAt = last
      }
      for (const u of usage.rows) {
        if (u.count <= 0) continue
        const a = entry(u.identity_id, u.identity_ref)
        a.actionSet.add(u.action)
        a.usage.push({ action: u.action, hour: iso(u.hour)!, count: u.count, source: u.source })
      }
      const identities = [...byId.values()]
        // An identity that was only denied did not access the resource.
        .filter((a) => a.decisions > 0 || a.usage.length > 0)
        .map(({ actionSet, ...a }) => ({ ...a, actions: [...actionSet].sort() }))
        .sort((a, b) =>
          a.identityRef < b.identityRef ? -1 : a.identityRef > b.identityRef ? 1 : 0,
        )
      return { resource: ref, from: f, to: tt, identities }
    },
  }
}

function earliest(a: Date | string | null, b: Date | string | null): Date | string | null {
  if (a === null) return b
  if (b === null) return a
  return new Date(a) < new Date(b) ? a : b
}
