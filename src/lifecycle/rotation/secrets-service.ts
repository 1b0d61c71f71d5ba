import { randomBytes } from 'node:crypto'
import type { EventSink } from '../../audit/event-sink.js'
import type { EnvelopeSealer } from '../../ca/envelope.js'
import { TesseraError } from '../../errors.js'
import type { Inventory } from '../../inventory/inventory-types.js'
import type { CredentialObservation, CredentialType } from '../../inventory/observation.js'
import type { FindingInput, FindingReporter } from '../../posture/finding-types.js'
import type { Clock } from '../../runtime/clock.js'
import { fingerprintSecret, redactedPreview } from '../../scanner/fingerprint.js'
import { loadStoreKey } from '../../scanner/store-key.js'
import { formatSpiffeId, parseSpiffeId } from '../../spiffe/id.js'
import type { Store } from '../../store/store.js'
import { createRotationEngine, type RotationEngine, type RotationView } from './engine.js'
import { checkPolicy, mayRotateAt, nextRotationAt } from './policy.js'
import type { CredentialVersion, Rotator, RotatorDeps } from './rotator.js'
import { buildRotator, checkRotatorConfig } from './rotator-registry.js'
import { parseAwsValue } from './rotators/aws-iam.js'
import { parsePgValue } from './rotators/pg.js'
import {
  checkSecretName,
  createSecretVault,
  loadSecret,
  type ManagedSecretRow,
} from './secret-store.js'

export interface ManageInput {
  name: string
  rotator: string
  config: unknown
  /** SPIFFE IDs allowed to read the value. */
  consumers: readonly string[]
  periodSeconds: number
  window?: string
  graceSeconds: number
  /** The value consumers use now. Without it the first rotation is due at once. */
  value?: string
  /** A discovered credential (id or ref) this secret takes over in the inventory. */
  fromCredential?: string
  createdBy?: string
}

/** What anyone with read access may see: never a value, never a sealed config field. */
export interface SecretView {
  name: string
  rotator: string
  config: Record<string, unknown>
  consumers: string[]
  periodSeconds: number
  window?: string
  graceSeconds: number
  version: number
  fingerprint?: string
  previousFingerprint?: string
  previousValidUntil?: string
  credentialRef: string
  identityRef?: string
  createdAt: string
  createdBy?: string
  lastRotatedAt?: string
  nextRotationAt: string
  lastError?: string
  consecutiveFailures: number
  kekId: string
}

export interface RotationHistoryItem extends RotationView {
  steps: { state: string; at: string; detail: Record<string, unknown> }[]
}

export interface SecretDelivery {
  name: string
  spiffeId: string
  version: number
  value: string
  rotatedAt?: string
  /** Until when the previous value still works (consumers may switch until then). */
  previousValidUntil?: string
}

export interface SecretsServiceDeps {
  store: Store
  sealer: EnvelopeSealer
  clock: Clock
  events: EventSink
  inventory?: Pick<Inventory, 'ingest'>
  findings?: FindingReporter
  /** Replaces the built-in rotators (tests inject crashes through it). */
  rotatorFor?: (secret: ManagedSecretRow, config: Record<string, unknown>) => Rotator
  rotatorDeps?: Partial<RotatorDeps>
  maxAttempts?: number
  retryBackoffMs?: number
  /** Told after a secret's value changed (agents poll; this wakes local listeners). */
  onValueChange?: (name: string) => void
}

export interface SecretsService {
  manage(input: ManageInput): Promise<SecretView>
  list(): Promise<SecretView[]>
  show(name: string): Promise<SecretView & { rotations: RotationHistoryItem[] }>
  /** Starts (or resumes) a rotation now and runs it as far as it goes (up to the grace). */
  rotate(name: string, requestedBy?: string): Promise<RotationView>
  /** The value for the first of `spiffeIds` that is a consumer; TSR_SECRET_DENIED otherwise. */
  deliver(name: string, spiffeIds: readonly string[]): Promise<SecretDelivery>
  /** Starts due rotations, resumes open ones, reports failures as findings. */
  tick(): Promise<{ started: string[]; resumed: number; failed: string[] }>
  unmanage(name: string): Promise<void>
  readonly engine: RotationEngine
}

const credentialTypeOf: Record<string, CredentialType> = {
  pg: 'password',
  redis: 'password',
  http: 'api_key',
  'aws-iam': 'access_key',
}

export const rotationFailedRule = 'rotation-failed'

function metaOf(rotator: string, value: string, config: Record<string, unknown>) {
  try {
    if (rotator === 'pg') return { username: parsePgValue(value).username }
    if (rotator === 'aws-iam') return { accessKeyId: parseAwsValue(value).accessKeyId }
  } catch (err) {
    if (err instanceof TesseraError) throw err
    throw new TesseraError('TSR_VALIDATION', `rotator(${rotator}): the value is not JSON`)
  }
  if (rotator === 'redis') return { username: config.username }
  return {}
}

export function createSecretsService(deps: SecretsServiceDeps): SecretsService {
  const { store, clock } = deps
  const vault = createSecretVault(deps.sealer)
  let fpKey: Promise<Buffer> | undefined
  const fingerprint = async (value: string) =>
    fingerprintSecret(await (fpKey ??= loadStoreKey(store)), value)
  const rotatorDeps: RotatorDeps = { clock, random: randomBytes, ...deps.rotatorDeps }
  const rotatorFor =
    deps.rotatorFor ??
    ((secret: ManagedSecretRow, config: Record<string, unknown>) =>
      buildRotator(secret.rotator, config, rotatorDeps))

  async function record(name: string): Promise<void> {
    if (!deps.inventory) return
    const row = await loadSecret(store, name)
    const observation: CredentialObservation = {
      type: 'credential',
      source: 'rotation',
      ref: row.credential_ref,
      ...(row.identity_ref ? { identity: row.identity_ref } : {}),
      credentialType: credentialTypeOf[row.rotator] ?? 'password',
      ...(row.fingerprint ? { fingerprint: row.fingerprint } : {}),
      issuer: `tessera-rotation:${row.rotator}`,
      createdAt: row.created_at.toISOString(),
      ...(row.last_rotated_at ? { lastRotatedAt: row.last_rotated_at.toISOString() } : {}),
      // Outside the discovery vocabulary on purpose: posture tells a managed secret (rotated by
      // Tessera) from a long-lived static one by this state.
      state: 'managed' as CredentialObservation['state'],
      attributes: {
        managed: true,
        secret: row.name,
        rotator: row.rotator,
        version: row.version,
        consumers: row.consumers,
        periodSeconds: row.period_seconds,
        graceSeconds: row.grace_seconds,
        ...(row.rotation_window ? { window: row.rotation_window } : {}),
        nextRotationAt: row.next_rotation_at.toISOString(),
        ...(row.last_error ? { lastError: row.last_error } : {}),
      },
    }
    await deps.inventory.ingest([observation])
  }

  const engine = createRotationEngine({
    store,
    vault,
    rotatorFor,
    clock,
    events: deps.events,
    fingerprint,
    ...(deps.maxAttempts === undefined ? {} : { maxAttempts: deps.maxAttempts }),
    ...(deps.retryBackoffMs === undefined ? {} : { retryBackoffMs: deps.retryBackoffMs }),
    onChange: async (name, what) => {
      if (what === 'activated') deps.onValueChange?.(name)
      await record(name).catch(() => {})
    },
  })

  function viewOf(r: ManagedSecretRow): SecretView {
    return {
      name: r.name,
      rotator: r.rotator,
      config: r.config_public,
      consumers: r.consumers,
      periodSeconds: r.period_seconds,
      ...(r.rotation_window ? { window: r.rotation_window } : {}),
      graceSeconds: r.grace_seconds,
      version: r.version,
      ...(r.fingerprint ? { fingerprint: r.fingerprint } : {}),
      ...(r.previous_fingerprint ? { previousFingerprint: r.previous_fingerprint } : {}),
      ...(r.previous_valid_until
        ? { previousValidUntil: r.previous_valid_until.toISOString() }
        : {}),
      credentialRef: r.credential_ref,
      ...(r.identity_ref ? { identityRef: r.identity_ref } : {}),
      createdAt: r.created_at.toISOString(),
      ...(r.created_by ? { createdBy: r.created_by } : {}),
      ...(r.last_rotated_at ? { lastRotatedAt: r.last_rotated_at.toISOString() } : {}),
      nextRotationAt: r.next_rotation_at.toISOString(),
      ...(r.last_error ? { lastError: r.last_error } : {}),
      consecutiveFailures: r.consecutive_failures,
      kekId: r.kek_id,
    }
  }

  async function reportFailures(): Promise<string[]> {
    const failing = await store.db
      .selectFrom('managed_secret')
      .selectAll()
      .where('last_error', 'is not', null)
      .execute()
    if (deps.findings) {
      const findings: FindingInput[] = failing.map((r) => ({
        rule: rotationFailedRule,
        severity: r.consecutive_failures > 0 ? 'high' : 'medium',
        subjectType: 'credential',
        subjectRef: r.credential_ref,
        evidence: {
          secret: r.name,
          rotator: r.rotator,
          error: r.last_error,
          consecutiveFailures: r.consecutive_failures,
          lastRotatedAt: r.last_rotated_at?.toISOString() ?? null,
        },
        dedupKey: `${rotationFailedRule}:${r.name}`,
      }))
      await deps.findings.report(rotationFailedRule, findings, { complete: true })
    }
    return failing.map((r) => r.name)
  }

  return {
    engine,
    async manage(input) {
      const name = checkSecretName(input.name)
      const consumers = [...new Set(input.consumers)].map((c) => {
        try {
          return formatSpiffeId(parseSpiffeId(c))
        } catch {
          throw new TesseraError(
            'TSR_VALIDATION',
            `consumer ${JSON.stringify(c)} is not a SPIFFE ID`,
          )
        }
      })
      const policy = checkPolicy({
        periodSeconds: input.periodSeconds,
        graceSeconds: input.graceSeconds,
        ...(input.window ? { window: input.window } : {}),
      })
      const { config, publicConfig } = checkRotatorConfig(input.rotator, input.config)
      const now = clock.now()
      let credentialRef = `managed-secret:${name}`
      let identityRef: string | undefined
      if (input.fromCredential !== undefined) {
        const found = await store.db
          .selectFrom('credential')
          .select(['id', 'ref', 'identity_ref'])
          .where('valid_to', 'is', null)
          .where((eb) =>
            /^[0-9a-f-]{36}$/i.test(input.fromCredential!)
              ? eb.or([eb('id', '=', input.fromCredential!), eb('ref', '=', input.fromCredential!)])
              : eb('ref', '=', input.fromCredential!),
          )
          .executeTakeFirst()
        if (!found) {
          throw new TesseraError(
            'TSR_NOT_FOUND',
            `no current credential with id or ref ${input.fromCredential} in the inventory`,
          )
        }
        credentialRef = found.ref
        identityRef = found.identity_ref ?? undefined
      }
      let current: CredentialVersion | undefined
      if (input.value !== undefined) {
        if (input.value === '') throw new TesseraError('TSR_VALIDATION', 'the value is empty')
        current = { value: input.value, meta: metaOf(input.rotator, input.value, config) }
      }
      const fp = current ? await fingerprint(current.value) : undefined
      const row = await store.db
        .insertInto('managed_secret')
        .values({
          name,
          rotator: input.rotator,
          config_public: JSON.stringify(publicConfig),
          config_sealed: vault.sealConfig(name, config),
          consumers,
          period_seconds: policy.periodSeconds,
          rotation_window: policy.window ?? null,
          grace_seconds: policy.graceSeconds,
          kek_id: vault.kekId,
          value_sealed: current ? vault.sealValue(name, current) : null,
          value_meta: JSON.stringify(current?.meta ?? {}),
          fingerprint: fp ?? null,
          credential_ref: credentialRef,
          identity_ref: identityRef ?? null,
          created_at: now,
          created_by: input.createdBy ?? null,
          // Blind (no current value): rotate at once, so Tessera holds the only working one.
          next_rotation_at: current ? nextRotationAt(now, policy) : now,
        })
        .onConflict((oc) => oc.column('name').doNothing())
        .returningAll()
        .executeTakeFirst()
      if (!row) throw new TesseraError('TSR_CONFLICT', `a managed secret named ${name} exists`)
      await deps.events.append({
        type: 'rotation.managed',
        actor: input.createdBy ?? 'system',
        subject: identityRef ?? credentialRef,
        resource: `secret:${name}`,
        action: 'manage',
        at: now,
        data: {
          rotator: input.rotator,
          consumers,
          ...(fp ? { fingerprint: fp, preview: redactedPreview(fp) } : {}),
        },
      })
      await record(name)
      return viewOf(row)
    },
    async list() {
      const rows = await store.db.selectFrom('managed_secret').selectAll().orderBy('name').execute()
      return rows.map(viewOf)
    },
    async show(name) {
      const row = await loadSecret(store, name)
      const rotations = await store.db
        .selectFrom('secret_rotation')
        .select('id')
        .where('secret_name', '=', name)
        .orderBy('started_at', 'desc')
        .limit(50)
        .execute()
      const items: RotationHistoryItem[] = []
      for (const { id } of rotations) {
        const steps = await store.db
          .selectFrom('secret_rotation_step')
          .select(['state', 'at', 'detail'])
          .where('rotation_id', '=', id)
          .orderBy('seq')
          .execute()
        items.push({
          ...(await engine.view(id)),
          steps: steps.map((s) => ({ state: s.state, at: s.at.toISOString(), detail: s.detail })),
        })
      }
      return { ...viewOf(row), rotations: items }
    },
    async rotate(name, requestedBy) {
      const id = await engine.start(name, 'manual', requestedBy)
      return engine.run(id)
    },
    async deliver(name, spiffeIds) {
      const row = await store.db
        .selectFrom('managed_secret')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst()
      // Unknown and not allowed look the same: a workload learns nothing about other secrets.
      const spiffeId = row ? spiffeIds.find((id) => row.consumers.includes(id)) : undefined
      if (!row || spiffeId === undefined) {
        throw new TesseraError(
          'TSR_SECRET_DENIED',
          `no managed secret ${name} for ${spiffeIds.join(', ') || 'this workload'}`,
        )
      }
      if (!row.value_sealed) {
        throw new TesseraError(
          'TSR_NOT_FOUND',
          `the managed secret ${name} has no value yet (its first rotation has not run)`,
        )
      }
      vault.checkKek(row)
      const v = vault.openValue(name, row.value_sealed, row.value_meta)
      return {
        name,
        spiffeId,
        version: row.version,
        value: v.value,
        ...(row.last_rotated_at ? { rotatedAt: row.last_rotated_at.toISOString() } : {}),
        ...(row.previous_valid_until
          ? { previousValidUntil: row.previous_valid_until.toISOString() }
          : {}),
      }
    },
    async tick() {
      const now = clock.now()
      const due = await store.db
        .selectFrom('managed_secret')
        .select(['name', 'rotation_window'])
        .where('next_rotation_at', '<=', now)
        .execute()
      const started: string[] = []
      for (const d of due) {
        if (!mayRotateAt(now, d.rotation_window ?? undefined)) continue
        const open = await store.db
          .selectFrom('secret_rotation')
          .select('id')
          .where('secret_name', '=', d.name)
          .where('state', 'not in', ['done', 'failed'])
          .executeTakeFirst()
        if (open) continue
        // A failed rotation is tried again at the next period, not at every tick.
        const last = await store.db
          .selectFrom('secret_rotation')
          .select(['state', 'finished_at'])
          .where('secret_name', '=', d.name)
          .orderBy('started_at', 'desc')
          .executeTakeFirst()
        if (last?.state === 'failed' && last.finished_at) {
          const secret = await loadSecret(store, d.name)
          const retryAt = new Date(
            last.finished_at.getTime() + Math.min(secret.period_seconds * 1000, 3_600_000),
          )
          if (now < retryAt) continue
        }
        await engine.start(d.name, 'scheduled')
        started.push(d.name)
      }
      const resumed = await engine.resumeOpen()
      const failed = await reportFailures()
      return { started, resumed: resumed.length, failed }
    },
    async unmanage(name) {
      await loadSecret(store, name)
      await store.db.deleteFrom('managed_secret').where('name', '=', name).execute()
    },
  }
}

/** Runs `service.tick()` every `intervalMs` (never two at once) until stopped. */
export function startRotationScheduler(
  service: Pick<SecretsService, 'tick'>,
  options: { intervalMs?: number; onError?: (err: unknown) => void } = {},
): { stop(): void; runNow(): Promise<void> } {
  let running: Promise<void> | undefined
  const runNow = () =>
    (running ??= service
      .tick()
      .then(
        () => {},
        (err: unknown) => options.onError?.(err),
      )
      .finally(() => {
        running = undefined
      }))
  const timer = setInterval(() => void runNow(), options.intervalMs ?? 10_000)
  timer.unref()
  return { stop: () => clearInterval(timer), runNow }
}
