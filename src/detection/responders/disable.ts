import { systemClock, type Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/store.js'
import type { Responder } from '../responder.js'
import { setIdentityState } from './identity-state.js'

/** `disable`: the identity's state becomes `disabled` (a new version, audited by the engine). */
export function createDisableResponder(deps: {
  store: Pick<Store, 'transaction'>
  clock?: Clock
  name?: string
}): Responder {
  const clock = deps.clock ?? systemClock
  return {
    kind: 'disable',
    name: deps.name ?? 'disable',
    async respond(anomaly) {
      const r = await setIdentityState(
        deps.store,
        clock,
        anomaly.identity,
        'disabled',
        `anomaly: ${anomaly.explanation}`.slice(0, 500),
      )
      if (!r) return { status: 'skipped', detail: 'identity not in the inventory' }
      return {
        status: 'done',
        data: { previous: r.previous, state: 'disabled', changed: r.changed },
      }
    },
  }
}
