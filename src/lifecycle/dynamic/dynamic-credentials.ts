import { randomBytes, randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import type { AuditEventInput, EventSink } from '../../audit/event-sink.js'
import { TesseraError } from '../../errors.js'
import type { Inventory } from '../../inventory/inventory-types.js'
import type { Observation } from '../../inventory/observation.js'
import type { Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/store.js'
import { dynamicPassword, dynamicUsername, userPrefixOf } from './credential-material.js'
import type { DynamicBackend } from './dynamic-backend.js'
import { allowed, type DynamicBackendConfig } from './dynamic-config.js'
import {
  getLease,
  leaseView,
  listLeases,
  type LeaseFilter,
  type LeaseRow,
  type LeaseView,
} from './leases.js'

/** The inventory source of dynamic credentials. */
export const dynamicSource = 'tessera:dynamic'

export interface DynamicCredentialsDeps {
  store: Pick<Store, 'db'>
  clock: Clock
  /** Each backend with its configuration (templates, TTLs, who may ask). */
  backends: readonly { backend: DynamicBackend; config: DynamicBackendConfig }[]
  events: EventSink
  inventory?: Pick<Inventory, 'ingest'>
  /** The installation's keyed fingerprint of a password (HMAC; src/scanner/fingerprint.ts). */
  fingerprint: (password: string) => Promise<string>
  /** Whether the SPIFFE ID is on the deny-list now (checked at issuance). */
  isRevoked?: (spiffeId: string) => Promise<boolean>
  random?: (n: number) => Buffer
  /** Reaper period (default 5 s). */
  reaperIntervalMs?: number
  /** A lease still pending after this long is an orphan of a crash (default 60 s). */
  pendingGraceMs?: number
  /** Orphan backend users are looked for every this many sweeps, and at the first (default 12). */
  orphanScanEvery?: number
  /**
   * A tag of this installation (1-8 of [a-z0-9]) put in every username, `tsr_<tag>_…`, when
   * backends are shared by several installations (or test runs): each one's orphan sweep then
   * leaves the others' users alone. Without it, `tsr_…` users belong to this installation.
   */
  installation?: string
  /** Problems of the background reaper (it retries at its next pass). */
  onError?: (err: unknown, context: Record<string, unknown>) => void
}

export interface IssueRequest {
  spiffeId: string
  backend: string
  template: string
  ttlSeconds?: number
  /** Recorded on the lease and the event (e.g. `x509-svid`, `jwt-svid`). */
  via?: string
  requestId?: string
}

/** What the workload gets, once: the password exists nowhere else. */
export interface IssuedCredential {
  leaseId: string
  backend: string
  backendType: string
  template: string
  username: string
  password: string
  spiffeId: string
  expiresAt: Date
  connection: Readonly<Record<string, string | number>>
}

export interface SweepResult {
  revoked: number
  failed: number
  orphansRemoved: number
  used: number
}

export interface DynamicCredentials {
  issue(request: IssueRequest): Promise<IssuedCredential>
  /** Revokes one lease now (idempotent); throws TSR_DYNAMIC_BACKEND when the backend fails. */
  revoke(leaseId: string, options?: { reason?: string; actor?: string }): Promise<LeaseView>
  /** Revokes every open lease of a workload (its SPIFFE ID was revoked). */
  revokeWorkload(spiffeId: string, options?: { reason?: string; actor?: string }): Promise<number>
  get(leaseId: string): Promise<LeaseView>
  list(filter?: LeaseFilter): Promise<LeaseView[]>
  backends(): { name: string; type: string; templates: string[]; maxTtlSeconds: number }[]
  /** One reaper pass: expired, revocation-requested, deny-listed and orphan leases; use sampling. */
  sweep(): Promise<SweepResult>
  /** Runs a sweep now, then every interval. */
  start(): void
  /** Stops the reaper (waiting for a running pass) and closes the backends. */
  close(): Promise<void>
}

export function createDynamicCredentials(deps: DynamicCredentialsDeps): DynamicCredentials {
  const { store, clock, events } = deps
  const db = store.db
  const random = deps.random ?? randomBytes
  const byName = new Map(deps.backends.map((b) => [b.config.name, b]))
  const pendingGraceMs = deps.pendingGraceMs ?? 60_000
  const orphanScanEvery = deps.orphanScanEvery ?? 12
  const onError = deps.onError ?? (() => {})
  const userPrefix = userPrefixOf(deps.installation)
  let sweeps = 0
  let timer: NodeJS.Timeout | undefined
  let running: Promise<unknown> | undefined
  // Sessions seen per lease at the last sample: a 0 → n change is a use event.
  const lastSessions = new Map<string, number>()

  const observe = (observations: Observation[]) => {
    if (!deps.inventory) return
    deps.inventory.ingest(observations).catch((err: unknown) => {
      onError(err, { what: 'recording a dynamic credential in the inventory failed' })
    })
  }
  const credentialObservation = (row: LeaseRow, state: 'active' | 'revoked'): Observation => ({
    type: 'credential',
    source: dynamicSource,
    ref: `dynamic:${row.backend}:${row.username}`,
    identity: row.spiffe_id,
    credentialType: 'password',
    ...(row.fingerprint ? { fingerprint: row.fingerprint } : {}),
    issuer: `${dynamicSource}:${row.backend}`,
    createdAt: new Date(row.created_at).toISOString(),
    expiresAt: new Date(row.expires_at).toISOString(),
    state,
    attributes: {
      leaseId: row.id,
      backend: row.backend,
      backendType: row.backend_type,
      template: row.template,
      username: row.username,
      ...(state === 'revoked' && row.revoke_reason ? { revokeReason: row.revoke_reason } : {}),
    },
  })
  const event = (
    type: string,
    row: LeaseRow,
    extra: Partial<AuditEventInput> & { data?: Record<string, unknown> } = {},
  ): AuditEventInput => ({
    type,
    subject: row.spiffe_id,
    resource: `dynamic:${row.backend}/${row.template}`,
    actor: extra.actor ?? 'system',
    ...(extra.requestId ? { requestId: extra.requestId } : {}),
    data: { leaseId: row.id, backend: row.backend, username: row.username, ...extra.data },
  })

  /** Drops the credential and closes the lease; emits `dynamic.revoked` once (the winner). */
  async function revokeRow(
    row: LeaseRow,
    reason: string,
    actor: string,
  ): Promise<{ view: LeaseView; done: boolean }> {
    const entry = byName.get(row.backend)
    if (!entry) {
      const err = new TesseraError(
        'TSR_DYNAMIC_BACKEND',
        `backend ${row.backend} is not configured on this server; lease ${row.id} stays open`,
      )
      await recordFailure(row, err, reason)
      throw err
    }
    let sessionsTerminated: number
    try {
      ;({ sessionsTerminated } = await entry.backend.revoke(row.username))
    } catch (err) {
      await recordFailure(row, err, reason)
      throw err
    }
    const now = clock.now()
    const updated = await db
      .updateTable('dynamic_lease')
      .set({
        state: 'revoked',
        revoked_at: now,
        revoke_requested_at: sql`coalesce(revoke_requested_at, ${now.toISOString()}::timestamptz)`,
        revoke_reason: sql`coalesce(revoke_reason, ${reason})`,
        last_error: null,
      })
      .where('id', '=', row.id)
      .where('state', '<>', 'revoked')
      .returningAll()
      .executeTakeFirst()
    lastSessions.delete(row.id)
    if (!updated) return { view: leaseView(await getLease(db, row.id)), done: false }
    await events.append(
      event('dynamic.revoked', updated, {
        actor,
        data: {
          reason: updated.revoke_reason,
          sessionsTerminated,
          wasState: row.state,
        },
      }),
    )
    observe([credentialObservation(updated, 'revoked')])
    return { view: leaseView(updated), done: true }
  }

  /** A failed revocation stays requested, so the reaper retries it (on any replica). */
  async function recordFailure(row: LeaseRow, err: unknown, reason: string) {
    await db
      .updateTable('dynamic_lease')
      .set({
        revoke_requested_at: sql`coalesce(revoke_requested_at, ${clock.now().toISOString()}::timestamptz)`,
        revoke_reason: sql`coalesce(revoke_reason, ${reason})`,
        revoke_attempts: sql`revoke_attempts + 1`,
        last_error: String((err as Error).message ?? err).slice(0, 500),
      })
      .where('id', '=', row.id)
      .execute()
      .catch(() => {})
  }

  async function sweepOnce(): Promise<SweepResult> {
    const now = clock.now()
    const result: SweepResult = { revoked: 0, failed: 0, orphansRemoved: 0, used: 0 }
    const nowTs = sql`${now.toISOString()}::timestamptz`
    const graceTs = sql`${new Date(now.getTime() - pendingGraceMs).toISOString()}::timestamptz`
    const due = await db
      .selectFrom('dynamic_lease as l')
      .selectAll('l')
      .select(
        sql<boolean>`exists (select 1 from revocation r where r.target_type = 'spiffe_id'
          and r.value = l.spiffe_id and (r.expires_at is null or r.expires_at > ${nowTs}))`.as(
          'denied',
        ),
      )
      .where('l.state', '<>', 'revoked')
      .where((eb) =>
        eb.or([
          eb('l.expires_at', '<=', now),
          eb('l.revoke_requested_at', 'is not', null),
          eb.and([eb('l.state', '=', 'pending'), eb('l.created_at', '<=', graceTs as never)]),
          sql<boolean>`exists (select 1 from revocation r where r.target_type = 'spiffe_id'
            and r.value = l.spiffe_id and (r.expires_at is null or r.expires_at > ${nowTs}))`,
        ]),
      )
      .orderBy('l.expires_at')
      .limit(1000)
      .execute()
    for (const { denied, ...row } of due) {
      const reason =
        row.revoke_reason ??
        (row.revoke_requested_at
          ? 'requested'
          : denied
            ? 'spiffe-id-revoked'
            : new Date(row.expires_at).getTime() <= now.getTime()
              ? 'expired'
              : 'orphan-pending')
      try {
        const { done } = await revokeRow(row, reason, 'system:reaper')
        if (done) result.revoked++
      } catch (err) {
        result.failed++
        onError(err, { leaseId: row.id, backend: row.backend })
      }
    }
    if (sweeps++ % orphanScanEvery === 0) result.orphansRemoved = await removeOrphans()
    result.used = await sampleUse()
    return result
  }

  /** Backend users named like ours that no open lease accounts for (a crash, or a failed drop). */
  async function removeOrphans(): Promise<number> {
    let removed = 0
    for (const { backend, config } of deps.backends) {
      try {
        // Only names of the exact shape Tessera makes: other tools' `tsr_…` users are not ours.
        const shape = new RegExp(`^${userPrefix}[0-9a-f]{10}_[a-z2-7]{12}$`)
        const users = (await backend.listManaged(userPrefix)).filter((u) => shape.test(u))
        if (users.length === 0) continue
        // Read after listing: a lease row is written before its user, so a live one is seen here.
        const open = new Set(
          (
            await db
              .selectFrom('dynamic_lease')
              .select('username')
              .where('backend', '=', config.name)
              .where('state', '<>', 'revoked')
              .where('username', 'in', users)
              .execute()
          ).map((r) => r.username),
        )
        for (const username of users) {
          if (open.has(username)) continue
          const { sessionsTerminated } = await backend.revoke(username)
          removed++
          await events.append({
            type: 'dynamic.revoked',
            actor: 'system:reaper',
            resource: `dynamic:${config.name}`,
            data: { backend: config.name, username, reason: 'orphan-user', sessionsTerminated },
          })
        }
      } catch (err) {
        onError(err, { backend: config.name, what: 'orphan sweep failed' })
      }
    }
    return removed
  }

  /** Samples live sessions of active leases: the first session after none is a use event. */
  async function sampleUse(): Promise<number> {
    let used = 0
    const active = await db
      .selectFrom('dynamic_lease')
      .selectAll()
      .where('state', '=', 'active')
      .limit(5000)
      .execute()
    const byBackend = new Map<string, LeaseRow[]>()
    for (const row of active) {
      const list = byBackend.get(row.backend) ?? []
      list.push(row)
      byBackend.set(row.backend, list)
    }
    for (const [name, rows] of byBackend) {
      const entry = byName.get(name)
      if (!entry) continue
      try {
        const sessions = await entry.backend.sessions(rows.map((r) => r.username))
        const now = clock.now()
        for (const row of rows) {
          const n = sessions.get(row.username) ?? 0
          const before = lastSessions.get(row.id) ?? 0
          lastSessions.set(row.id, n)
          if (n === 0) continue
          await db
            .updateTable('dynamic_lease')
            .set({
              last_used_at: now,
              first_used_at: sql`coalesce(first_used_at, ${now.toISOString()}::timestamptz)`,
            })
            .where('id', '=', row.id)
            .execute()
          if (before === 0) {
            used++
            await events.append(
              event('dynamic.used', row, { actor: row.spiffe_id, data: { sessions: n } }),
            )
          }
        }
      } catch (err) {
        onError(err, { backend: name, what: 'use sampling failed' })
      }
    }
    return used
  }

  const service: DynamicCredentials = {
    async issue(request) {
      const entry = byName.get(request.backend)
      if (!entry) throw new TesseraError('TSR_NOT_FOUND', `no dynamic backend ${request.backend}`)
      const { backend, config } = entry
      const template = config.templates[request.template]
      if (!template) {
        throw new TesseraError(
          'TSR_NOT_FOUND',
          `backend ${request.backend} has no template ${request.template}`,
          { details: { templates: backend.templates } },
        )
      }
      if (!allowed(template.allow, request.spiffeId)) {
        throw new TesseraError(
          'TSR_DYNAMIC_DENIED',
          `${request.spiffeId} may not request ${request.backend}/${request.template}`,
        )
      }
      if (await deps.isRevoked?.(request.spiffeId)) {
        throw new TesseraError('TSR_DYNAMIC_DENIED', `${request.spiffeId} is revoked`)
      }
      const ttl = request.ttlSeconds ?? config.defaultTtlSeconds
      if (!Number.isSafeInteger(ttl) || ttl < 1) {
        throw new TesseraError('TSR_VALIDATION', 'ttlSeconds must be a positive integer')
      }
      const now = clock.now()
      // Whole seconds: PostgreSQL's VALID UNTIL and the lease agree to the second.
      const expiresAt = new Date(
        Math.floor(now.getTime() / 1000) * 1000 + Math.min(ttl, config.maxTtlSeconds) * 1000,
      )
      const password = dynamicPassword(random)
      const fingerprint = await deps.fingerprint(password)
      const lease = await db
        .insertInto('dynamic_lease')
        .values({
          id: randomUUID(),
          backend: config.name,
          backend_type: backend.type,
          template: request.template,
          username: dynamicUsername(request.spiffeId, random, deps.installation),
          spiffe_id: request.spiffeId,
          state: 'pending',
          fingerprint,
          created_at: now,
          expires_at: expiresAt,
          created_by: request.via ?? null,
        })
        .returningAll()
        .executeTakeFirstOrThrow()
      try {
        await backend.create({
          username: lease.username,
          password,
          template: request.template,
          spiffeId: request.spiffeId,
          leaseId: lease.id,
          expiresAt,
        })
      } catch (err) {
        await db
          .updateTable('dynamic_lease')
          .set({ revoke_requested_at: clock.now(), revoke_reason: 'creation-failed' })
          .where('id', '=', lease.id)
          .execute()
        // A half-made user (e.g. the reply was lost) goes now, or at the reaper's next pass.
        await revokeRow(lease, 'creation-failed', 'system').catch(() => {})
        throw err
      }
      const active = await db
        .updateTable('dynamic_lease')
        .set({ state: 'active', activated_at: clock.now() })
        .where('id', '=', lease.id)
        .where('state', '=', 'pending')
        .returningAll()
        .executeTakeFirst()
      if (!active) {
        // The reaper took it for an orphan meanwhile (a request slower than the pending grace).
        await backend.revoke(lease.username).catch(() => {})
        throw new TesseraError('TSR_DYNAMIC_BACKEND', 'the credential took too long to create')
      }
      try {
        // The audit record is durable before the workload sees the password.
        await events.append(
          event('dynamic.created', active, {
            actor: request.spiffeId,
            ...(request.requestId ? { requestId: request.requestId } : {}),
            data: {
              template: request.template,
              expiresAt: expiresAt.toISOString(),
              fingerprint,
              via: request.via ?? null,
            },
          }),
        )
      } catch (err) {
        await revokeRow(active, 'audit-failed', 'system').catch(() => {})
        throw err
      }
      observe([credentialObservation(active, 'active')])
      return {
        leaseId: lease.id,
        backend: config.name,
        backendType: backend.type,
        template: request.template,
        username: lease.username,
        password,
        spiffeId: request.spiffeId,
        expiresAt,
        connection: backend.connection,
      }
    },

    async revoke(leaseId, options = {}) {
      const row = await getLease(db, leaseId)
      if (row.state === 'revoked') return leaseView(row)
      const reason = options.reason ?? 'requested'
      return (await revokeRow(row, reason, options.actor ?? 'system')).view
    },

    async revokeWorkload(spiffeId, options = {}) {
      const rows = await db
        .selectFrom('dynamic_lease')
        .select('id')
        .where('spiffe_id', '=', spiffeId)
        .where('state', '<>', 'revoked')
        .execute()
      let n = 0
      for (const r of rows) {
        await service.revoke(r.id, {
          reason: options.reason ?? 'spiffe-id-revoked',
          ...(options.actor ? { actor: options.actor } : {}),
        })
        n++
      }
      return n
    },

    get: async (leaseId) => leaseView(await getLease(db, leaseId)),
    list: (filter) => listLeases(db, filter),
    backends: () =>
      deps.backends.map(({ backend, config }) => ({
        name: config.name,
        type: backend.type,
        templates: [...backend.templates],
        maxTtlSeconds: config.maxTtlSeconds,
      })),

    sweep() {
      // One pass at a time per process; another caller waits for the running one, then runs.
      const next = (running ?? Promise.resolve()).catch(() => {}).then(sweepOnce)
      running = next
      return next
    },

    start() {
      if (timer) return
      let busy = false
      const tick = () => {
        if (busy) return
        busy = true
        service
          .sweep()
          .catch((err: unknown) => onError(err, { what: 'reaper pass failed' }))
          .finally(() => {
            busy = false
          })
      }
      tick()
      timer = setInterval(tick, deps.reaperIntervalMs ?? 5000)
      timer.unref()
    },

    async close() {
      if (timer) clearInterval(timer)
      timer = undefined
      await running?.catch(() => {})
      await Promise.all(deps.backends.map(({ backend }) => backend.close().catch(() => {})))
    },
  }
  return service
}
