import type { RevocationList } from '../../lifecycle/revocations.js'
import { systemClock, type Clock } from '../../runtime/clock.js'
import type { Responder } from '../responder.js'

export interface RevokeResponderDeps {
  revocations: Pick<RevocationList, 'add'>
  clock?: Clock
  name?: string
  /** How long the deny-list entry lasts (default 24 h): an automated revocation is reviewed. */
  ttlMs?: number
}

/**
 * `revoke`: puts the identity's SPIFFE ID on the deny-list (createRevocationList). Agents poll the
 * list every second and the authorization API checks it on every decision, so the revocation takes
 * effect within seconds. An identity that is not a SPIFFE ID is skipped (use `disable`).
 */
export function createRevokeResponder(deps: RevokeResponderDeps): Responder {
  const clock = deps.clock ?? systemClock
  const ttl = deps.ttlMs ?? 24 * 3_600_000
  return {
    kind: 'revoke',
    name: deps.name ?? 'revoke',
    async respond(anomaly) {
      if (!anomaly.identity.startsWith('spiffe://')) {
        return { status: 'skipped', detail: 'not a SPIFFE ID; nothing to put on the deny-list' }
      }
      const entry = await deps.revocations.add({
        targetType: 'spiffe_id',
        value: anomaly.identity,
        reason: `anomaly (score ${anomaly.score.toFixed(2)}): ${anomaly.explanation}`.slice(0, 500),
        expiresAt: new Date(clock.now().getTime() + ttl),
        createdBy: 'detection',
      })
      return { status: 'done', data: { revocationId: entry.id, expiresAt: entry.expiresAt } }
    },
  }
}
