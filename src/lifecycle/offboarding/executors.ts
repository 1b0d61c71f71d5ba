import { TesseraError } from '../../errors.js'
import type {
  CredentialObservation,
  IdentityObservation,
  Inventory,
} from '../../inventory/index.js'
import type { Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/index.js'
import type { RevocationList } from '../revocations.js'
import type { CredentialRotator, StepExecutors, StepTarget } from './offboarding-types.js'

export interface InventoryExecutorDeps {
  store: Store
  inventory: Pick<Inventory, 'ingest'>
  revocations: Pick<RevocationList, 'add'>
  clock: Clock
  /** The rotation engine; without one a rotation request is recorded on the credential. */
  rotator?: CredentialRotator
}

/** Source of the facts offboarding writes (explicit owner assignments, markers). */
export const offboardingSource = 'offboarding'

const iso = (v: Date | string | null): string | undefined =>
  v === null ? undefined : new Date(v).toISOString()

function attrs(v: unknown): Record<string, unknown> {
  return (typeof v === 'string' ? JSON.parse(v) : (v ?? {})) as Record<string, unknown>
}

/**
 * Executors over the inventory: a new version of the identity or credential (same source, one
 * field changed), so history shows the change and re-running a step writes nothing new.
 */
export function createInventoryExecutors(deps: InventoryExecutorDeps): StepExecutors {
  const { store, inventory, clock } = deps

  async function identity(step: StepTarget) {
    const row = await store.db
      .selectFrom('identity')
      .selectAll()
      .where('id', '=', step.targetId)
      .where('valid_to', 'is', null)
      .executeTakeFirst()
    if (!row) throw new TesseraError('TSR_NOT_FOUND', `identity ${step.targetRef} is gone`)
    const obs: IdentityObservation = {
      type: 'identity',
      source: row.source,
      ref: row.ref,
      kind: row.kind,
      name: row.name,
      ...(row.owner_ref ? { owner: row.owner_ref } : {}),
      ...(row.created_by ? { createdBy: row.created_by } : {}),
      state: row.state as IdentityObservation['state'],
      ...(row.created_at ? { createdAt: iso(row.created_at) } : {}),
      attributes: attrs(row.attributes),
      observedAt: clock.now().toISOString(),
    }
    return { row, obs }
  }

  async function credential(step: StepTarget) {
    const row = await store.db
      .selectFrom('credential')
      .selectAll()
      .where('id', '=', step.targetId)
      .where('valid_to', 'is', null)
      .executeTakeFirst()
    if (!row) throw new TesseraError('TSR_NOT_FOUND', `credential ${step.targetRef} is gone`)
    const obs: CredentialObservation = {
      type: 'credential',
      source: row.source,
      ref: row.ref,
      ...(row.identity_ref ? { identity: row.identity_ref } : {}),
      credentialType: row.credential_type as CredentialObservation['credentialType'],
      ...(row.fingerprint ? { fingerprint: row.fingerprint } : {}),
      ...(row.preview ? { preview: row.preview } : {}),
      ...(row.issuer ? { issuer: row.issuer } : {}),
      ...(row.created_at ? { createdAt: iso(row.created_at) } : {}),
      ...(row.expires_at ? { expiresAt: iso(row.expires_at) } : {}),
      ...(row.last_rotated_at ? { lastRotatedAt: iso(row.last_rotated_at) } : {}),
      state: row.state as CredentialObservation['state'],
      attributes: attrs(row.attributes),
      observedAt: clock.now().toISOString(),
    }
    return { row, obs }
  }

  return {
    async reassign(step) {
      const to = step.params.to
      if (typeof to !== 'string' || to === '') {
        throw new TesseraError('TSR_VALIDATION', `step ${step.seq}: reassign needs params.to`)
      }
      const { row, obs } = await identity(step)
      await inventory.ingest([
        { ...obs, owner: to },
        {
          type: 'edge',
          source: offboardingSource,
          edgeType: 'owns',
          from: { type: 'owner', ref: to },
          to: { type: 'identity', ref: row.ref },
          attributes: { assignment: 'explicit', plan: step.planId, reason: step.reason },
        },
      ])
      return { from: row.owner_ref, to }
    },

    async disable(step) {
      const { row, obs } = await identity(step)
      if (row.state !== 'disabled') await inventory.ingest([{ ...obs, state: 'disabled' }])
      return { previousState: row.state, state: 'disabled' }
    },

    async revoke(step) {
      if (step.targetType === 'identity') {
        const spiffeId = typeof step.params.spiffeId === 'string' ? step.params.spiffeId : undefined
        if (spiffeId === undefined) {
          throw new TesseraError(
            'TSR_VALIDATION',
            `step ${step.seq}: revoking an identity needs its SPIFFE ID`,
          )
        }
        // add() returns the existing entry for a target already on the list: idempotent.
        const entry = await deps.revocations.add({
          targetType: 'spiffe_id',
          value: spiffeId,
          reason: `offboarding ${step.planId}: ${step.reason}`.slice(0, 500),
          createdBy: step.actor,
        })
        return { denyListEntry: entry.id, spiffeId }
      }
      const { row, obs } = await credential(step)
      if (row.state !== 'revoked') await inventory.ingest([{ ...obs, state: 'revoked' }])
      return { previousState: row.state, state: 'revoked' }
    },

    async rotate(step) {
      const { row, obs } = await credential(step)
      if (deps.rotator) {
        const r = await deps.rotator.rotate({
          id: row.id,
          ref: row.ref,
          credentialType: row.credential_type,
          identityRef: row.identity_ref,
          reason: step.reason,
          planId: step.planId,
        })
        return { ...r }
      }
      // The marker names the plan and step, not a time: recording it twice is one fact.
      const marker = { plan: step.planId, step: step.seq, reason: step.reason }
      await inventory.ingest([
        { ...obs, attributes: { ...obs.attributes, rotationRequested: marker } },
      ])
      return {
        status: 'requested',
        detail:
          'no rotation engine is configured: a rotation request was recorded on the credential (attribute rotationRequested); rotate it by hand or with the rotation engine',
      }
    },
  }
}
