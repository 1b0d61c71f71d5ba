import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import type { AuditEventInput, EventSink } from '../../audit/event-sink.js'
import { TesseraError } from '../../errors.js'
import type { Clock } from '../../runtime/clock.js'
import type { RotationState } from '../../store/schema.js'
import type { Store } from '../../store/store.js'
import { nextRotationAt } from './policy.js'
import type { CredentialVersion, RotationContext, Rotator } from './rotator.js'
import { loadSecret, type ManagedSecretRow, type SecretVault } from './secret-store.js'

/**
 * The rotation state machine. A rotation moves
 *
 *   pending → created → verified → activated → grace → revoked → done      (or → failed)
 *
 * and each transition is: (1) the rotator's effect on the real system, (2) a `rotation.step`
 * event, (3) the new state written in the store, conditional on the old one. A crash between any
 * two of these leaves the row in the old state, so the next `run` repeats the step, which every
 * rotator makes idempotent. Consequences:
 * - the old value is revoked only from `grace`, i.e. after the new one was verified and activated
 *   (never zero working credentials);
 * - `grace` ends at `grace_until`; any `run` after it revokes the old one, and the scheduler calls
 *   `run` on every open rotation each tick (never two past the grace, beyond one tick);
 * - a step that fails is retried with backoff; before activation, after `maxAttempts` the new
 *   credential is revoked (`drop` = new, `keep` = current) and the rotation ends `failed`.
 */
export interface RotationEngineDeps {
  store: Pick<Store, 'db' | 'transaction'>
  vault: SecretVault
  /** Builds the rotator for a secret from its (opened) configuration. */
  rotatorFor(secret: ManagedSecretRow, config: Record<string, unknown>): Rotator
  clock: Clock
  events: EventSink
  /** The keyed fingerprint of a value (the inventory's). */
  fingerprint(value: string): Promise<string>
  /** Attempts of a step before a rotation that is not yet activated is rolled back (default 3). */
  maxAttempts?: number
  /** First retry delay (default 30 s), doubled per attempt, at most 1 h. */
  retryBackoffMs?: number
  /** After a rotation activated a new value or finished: delivery and inventory hooks. */
  onChange?: (secretName: string, what: 'activated' | 'done' | 'failed') => void | Promise<void>
}

export interface RotationView {
  id: string
  secretName: string
  state: RotationState
  reason: string
  fromVersion: number
  newFingerprint?: string
  graceUntil?: string
  attempts: number
  nextAttemptAt?: string
  error?: string
  startedAt: string
  finishedAt?: string
}

export interface RotationEngine {
  /** Opens a rotation of `secretName` (or returns the open one). */
  start(secretName: string, reason: string, requestedBy?: string): Promise<string>
  /** Advances a rotation as far as it can go now; throws TSR_ROTATION_FAILED when a step fails. */
  run(rotationId: string): Promise<RotationView>
  /** Runs every open rotation whose next step may run now (grace over, retry due). */
  resumeOpen(): Promise<{ id: string; error?: unknown }[]>
  view(rotationId: string): Promise<RotationView>
}

const openStates: RotationState[] = [
  'pending',
  'created',
  'verified',
  'activated',
  'grace',
  'revoked',
]

export function createRotationEngine(deps: RotationEngineDeps): RotationEngine {
  const { store, vault, clock, events } = deps
  const maxAttempts = deps.maxAttempts ?? 3
  const backoff = deps.retryBackoffMs ?? 30_000

  async function loadRotation(id: string) {
    const row = await store.db
      .selectFrom('secret_rotation')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()
    if (!row) throw new TesseraError('TSR_NOT_FOUND', `no rotation ${id}`)
    return row
  }
  type RotationRow = Awaited<ReturnType<typeof loadRotation>>

  function viewOf(r: RotationRow): RotationView {
    return {
      id: r.id,
      secretName: r.secret_name,
      state: r.state,
      reason: r.reason,
      fromVersion: r.from_version,
      ...(r.new_fingerprint ? { newFingerprint: r.new_fingerprint } : {}),
      ...(r.grace_until ? { graceUntil: r.grace_until.toISOString() } : {}),
      attempts: r.attempts,
      ...(r.next_attempt_at ? { nextAttemptAt: r.next_attempt_at.toISOString() } : {}),
      ...(r.error ? { error: r.error } : {}),
      startedAt: r.started_at.toISOString(),
      ...(r.finished_at ? { finishedAt: r.finished_at.toISOString() } : {}),
    }
  }

  function event(
    secret: ManagedSecretRow,
    r: RotationRow,
    state: string,
    extra: Record<string, unknown> = {},
  ): AuditEventInput {
    return {
      type: 'rotation.step',
      actor: r.requested_by ?? 'system',
      subject: secret.identity_ref ?? secret.credential_ref,
      resource: `secret:${secret.name}`,
      action: state,
      at: clock.now(),
      data: { rotationId: r.id, rotator: secret.rotator, fromVersion: r.from_version, ...extra },
    }
  }

  /** Moves `r` from its state to `to`, only if nobody else did; records the step. */
  async function transition(
    r: RotationRow,
    to: RotationState,
    set: Record<string, unknown>,
    detail: Record<string, unknown>,
    secretUpdate?: Record<string, unknown>,
  ): Promise<boolean> {
    const now = clock.now()
    return store.transaction(async (tx) => {
      const moved = await tx.db
        .updateTable('secret_rotation')
        .set({
          ...set,
          state: to,
          updated_at: now,
          attempts: 0,
          next_attempt_at: null,
          error: null,
        })
        .where('id', '=', r.id)
        .where('state', '=', r.state)
        .executeTakeFirst()
      if (Number(moved.numUpdatedRows) !== 1) return false
      await tx.db
        .insertInto('secret_rotation_step')
        .values({ rotation_id: r.id, state: to, at: now, detail: JSON.stringify(detail) })
        .execute()
      if (secretUpdate) {
        await tx.db
          .updateTable('managed_secret')
          .set(secretUpdate)
          .where('name', '=', r.secret_name)
          .execute()
      }
      return true
    })
  }

  function currentOf(secret: ManagedSecretRow): CredentialVersion | undefined {
    return secret.value_sealed
      ? vault.openValue(secret.name, secret.value_sealed, secret.value_meta)
      : undefined
  }

  async function step(r: RotationRow, rotator: Rotator): Promise<'again' | 'wait' | 'end'> {
    const secret = await loadSecret(store, r.secret_name)
    vault.checkKek(secret)
    const now = clock.now()
    // Before activation the secret's value is the old one; from activation on it is the new one
    // and the old one sits in `previous_*`.
    const activated = r.state === 'activated' || r.state === 'grace' || r.state === 'revoked'
    const oldVersion: CredentialVersion | undefined = activated
      ? secret.previous_sealed
        ? vault.openValue(secret.name, secret.previous_sealed, secret.previous_meta ?? {})
        : undefined
      : currentOf(secret)
    const next =
      r.new_sealed !== null
        ? vault.openValue(secret.name, r.new_sealed, r.new_meta ?? {})
        : undefined
    const ctx: RotationContext = {
      secretName: secret.name,
      rotationId: r.id,
      current: oldVersion,
      resumed: r.attempts > 0,
    }
    switch (r.state) {
      case 'pending': {
        const created = await rotator.create(ctx)
        const fp = await deps.fingerprint(created.value)
        await events.append(event(secret, r, 'created', { fingerprint: fp, meta: created.meta }))
        await transition(
          r,
          'created',
          {
            new_sealed: vault.sealValue(secret.name, created),
            new_meta: JSON.stringify(created.meta),
            new_fingerprint: fp,
          },
          { fingerprint: fp, meta: created.meta },
        )
        return 'again'
      }
      case 'created': {
        await rotator.verify(ctx, next!)
        await events.append(event(secret, r, 'verified', { fingerprint: r.new_fingerprint }))
        await transition(r, 'verified', {}, {})
        return 'again'
      }
      case 'verified': {
        const graceUntil = new Date(now.getTime() + secret.grace_seconds * 1000)
        await rotator.activate(ctx, next!, graceUntil)
        await events.append(
          event(secret, r, 'activated', {
            fingerprint: r.new_fingerprint,
            version: secret.version + 1,
            graceUntil: graceUntil.toISOString(),
          }),
        )
        const policy = {
          periodSeconds: secret.period_seconds,
          graceSeconds: secret.grace_seconds,
          ...(secret.rotation_window ? { window: secret.rotation_window } : {}),
        }
        const moved = await transition(
          r,
          'activated',
          { grace_until: graceUntil },
          { version: secret.version + 1, graceUntil: graceUntil.toISOString() },
          {
            version: secret.version + 1,
            value_sealed: r.new_sealed,
            value_meta: JSON.stringify(r.new_meta ?? {}),
            fingerprint: r.new_fingerprint,
            previous_sealed: secret.value_sealed,
            previous_meta: secret.value_sealed ? JSON.stringify(secret.value_meta) : null,
            previous_fingerprint: secret.fingerprint,
            previous_valid_until: secret.value_sealed ? graceUntil : null,
            last_rotated_at: now,
            next_rotation_at: nextRotationAt(now, policy),
            last_error: null,
            consecutive_failures: 0,
          },
        )
        if (moved) await deps.onChange?.(secret.name, 'activated')
        return 'again'
      }
      case 'activated': {
        await events.append(event(secret, r, 'grace', { graceUntil: r.grace_until?.toISOString() }))
        await transition(r, 'grace', {}, { graceUntil: r.grace_until?.toISOString() })
        return 'again'
      }
      case 'grace': {
        if (r.grace_until && now < r.grace_until) return 'wait'
        if (oldVersion) await rotator.revoke(ctx, next, oldVersion)
        await events.append(
          event(secret, r, 'revoked', {
            ...(secret.previous_fingerprint ? { fingerprint: secret.previous_fingerprint } : {}),
          }),
        )
        await transition(
          r,
          'revoked',
          {},
          {},
          {
            previous_sealed: null,
            previous_meta: null,
            previous_fingerprint: null,
            previous_valid_until: null,
          },
        )
        return 'again'
      }
      case 'revoked': {
        await events.append(event(secret, r, 'done', { version: secret.version }))
        if (await transition(r, 'done', { finished_at: now }, {})) {
          await deps.onChange?.(secret.name, 'done')
        }
        return 'end'
      }
      case 'done':
      case 'failed':
        return 'end'
    }
  }

  async function rollback(r: RotationRow, rotator: Rotator, reason: string): Promise<void> {
    const secret = await loadSecret(store, r.secret_name)
    const now = clock.now()
    if (r.new_sealed !== null) {
      const current = currentOf(secret)
      const drop = vault.openValue(secret.name, r.new_sealed, r.new_meta ?? {})
      await rotator.revoke(
        { secretName: secret.name, rotationId: r.id, current, resumed: true },
        current,
        drop,
      )
    }
    await events.append(event(secret, r, 'failed', { error: reason }))
    const moved = await transition(
      r,
      'failed',
      { finished_at: now },
      { error: reason },
      {
        last_error: reason,
        consecutive_failures: sql`consecutive_failures + 1`,
      },
    )
    // transition() cleared the error column; keep the reason on the failed rotation.
    await store.db
      .updateTable('secret_rotation')
      .set({ error: reason })
      .where('id', '=', r.id)
      .execute()
    if (moved) await deps.onChange?.(secret.name, 'failed')
  }

  async function recordFailure(r: RotationRow, err: unknown): Promise<void> {
    const attempts = r.attempts + 1
    const message = err instanceof Error ? err.message : String(err)
    const delay = Math.min(backoff * 2 ** (attempts - 1), 3_600_000)
    await store.db
      .updateTable('secret_rotation')
      .set({
        attempts,
        error: message,
        next_attempt_at: new Date(clock.now().getTime() + delay),
        updated_at: clock.now(),
      })
      .where('id', '=', r.id)
      .where('state', '=', r.state)
      .execute()
    await store.db
      .updateTable('managed_secret')
      .set({ last_error: `${r.state}: ${message}` })
      .where('name', '=', r.secret_name)
      .execute()
  }

  /**
   * One runner per rotation in this process: the scheduler resuming open rotations and a manual
   * rotate of the same secret join the same run instead of stepping it twice at once.
   */
  const inProgress = new Map<string, Promise<RotationView>>()
  function run(id: string): Promise<RotationView> {
    const existing = inProgress.get(id)
    if (existing) return existing
    const started = runSteps(id).finally(() => inProgress.delete(id))
    inProgress.set(id, started)
    return started
  }

  async function runSteps(id: string): Promise<RotationView> {
    let r = await loadRotation(id)
    if (r.state === 'done' || r.state === 'failed') return viewOf(r)
    const secret = await loadSecret(store, r.secret_name)
    vault.checkKek(secret)
    const rotator = deps.rotatorFor(secret, vault.openConfig(secret.name, secret.config_sealed))
    try {
      for (;;) {
        let outcome: 'again' | 'wait' | 'end'
        try {
          outcome = await step(r, rotator)
        } catch (err) {
          const before = ['pending', 'created', 'verified'].includes(r.state)
          // A step failing for good before activation is undone; after it, retried until it works
          // (the new value is already what consumers get).
          const permanent =
            before &&
            (r.attempts + 1 >= maxAttempts ||
              (err instanceof TesseraError && err.code === 'TSR_ROTATION_LIMIT'))
          if (permanent) {
            await rollback(r, rotator, err instanceof Error ? err.message : String(err))
          } else {
            await recordFailure(r, err).catch(() => {})
          }
          throw err instanceof TesseraError
            ? err
            : new TesseraError(
                'TSR_ROTATION_FAILED',
                `rotation of ${r.secret_name} failed at ${r.state}: ${(err as Error).message}`,
                { cause: err },
              )
        }
        r = await loadRotation(id)
        if (outcome !== 'again') return viewOf(r)
      }
    } finally {
      await rotator.close?.().catch(() => {})
    }
  }

  return {
    async start(secretName, reason, requestedBy) {
      const secret = await loadSecret(store, secretName)
      const open = await store.db
        .selectFrom('secret_rotation')
        .select('id')
        .where('secret_name', '=', secretName)
        .where('state', 'in', openStates)
        .executeTakeFirst()
      if (open) return open.id
      const id = randomUUID()
      const now = clock.now()
      const inserted = await store.db
        .insertInto('secret_rotation')
        .values({
          id,
          secret_name: secretName,
          state: 'pending',
          reason,
          requested_by: requestedBy ?? null,
          from_version: secret.version,
          started_at: now,
          updated_at: now,
        })
        .onConflict((oc) =>
          oc.column('secret_name').where('state', 'not in', ['done', 'failed']).doNothing(),
        )
        .returning('id')
        .executeTakeFirst()
      if (!inserted) return this.start(secretName, reason, requestedBy)
      await store.db
        .insertInto('secret_rotation_step')
        .values({ rotation_id: id, state: 'pending', at: now, detail: JSON.stringify({ reason }) })
        .execute()
      return id
    },
    run,
    async resumeOpen() {
      const now = clock.now()
      const rows = await store.db
        .selectFrom('secret_rotation')
        .select(['id', 'state', 'grace_until', 'next_attempt_at'])
        .where('state', 'in', openStates)
        .execute()
      const out: { id: string; error?: unknown }[] = []
      for (const row of rows) {
        if (row.next_attempt_at && now < row.next_attempt_at) continue
        if (row.state === 'grace' && row.grace_until && now < row.grace_until) continue
        try {
          await run(row.id)
          out.push({ id: row.id })
        } catch (error) {
          out.push({ id: row.id, error })
        }
      }
      return out
    },
    view: async (id) => viewOf(await loadRotation(id)),
  }
}
