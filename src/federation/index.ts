import { storedTrustDomain } from '../ca/start.js'
import { TesseraError } from '../errors.js'
import type { Clock } from '../runtime/clock.js'
import { parseBundle } from '../spiffe/bundle.js'
import type { Store } from '../store/store.js'
import { createBundleFetcher } from './bundle-fetcher.js'
import { createFederation, type Federation } from './federation.js'

export * from './federation.js'
export { createBundleFetcher } from './bundle-fetcher.js'

/**
 * Federation on a store opened by the CLI: the trust domain is the one the store's CA serves, so
 * the server must have started once before relationships can be managed locally.
 */
export function localFederationAdmin(store: Store, clock: Clock, createdBy: string) {
  let federation: Promise<Federation> | undefined
  const open = () =>
    (federation ??= (async () => {
      const ownTrustDomain = await storedTrustDomain(store)
      if (!ownTrustDomain) {
        throw new TesseraError(
          'TSR_CONFIG',
          'this store has no trust domain yet: start "tessera server" on it once first',
        )
      }
      return createFederation({
        store,
        clock,
        ownTrustDomain,
        parseBundle,
        fetchBundle: createBundleFetcher(),
      })
    })())
  return {
    add: async (input: Parameters<Federation['add']>[0]) =>
      (await open()).add({ ...input, createdBy }),
    list: async () => (await open()).list(),
    get: async (trustDomain: string) => (await open()).get(trustDomain),
    remove: async (trustDomain: string) => (await open()).remove(trustDomain),
    refresh: async (trustDomain: string) => (await open()).refresh(trustDomain),
  }
}
