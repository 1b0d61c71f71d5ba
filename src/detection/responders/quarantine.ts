import { systemClock, type Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/store.js'
import type { Responder } from '../responder.js'
import { setIdentityState } from './identity-state.js'

/**
 * `quarantine`: the identity's state becomes `quarantined`. Unlike `disable` it is meant to be
 * reversible after review: authorization policies can deny quarantined principals (the state is an
 * entity attribute) while their credentials stay valid for forensics.
 */
export function createQuarantineResponder(deps: {
  store: Pick<Store, 'transaction'>
  clock?: Clock
  name?: string
}): Responder {
  const clock = deps.clock ?? systemClock
  return {
    kind: 'quarantine',
    name: deps.name ?? 'quarantine',
    async respond(anomaly) {
      const r = await setIdentityState(
        deps.store,
        clock,
        anomaly.identity,
        'quarantined',
        `anomaly: ${anomaly.explanation}`.slice(0, 500),
      )
      if (!r) return { status: 'skipped', detail: 'identity not in the inventory' }
      return {
        status: 'done',
        data: { previous: r.previous, state: 'quarantined', changed: r.changed },
      }
    },
  }
}
