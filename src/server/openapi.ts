import { createInventory } from '../inventory/index.js'
import { openStore } from '../store/store.js'
import { buildApp } from './app.js'

/**
 * The OpenAPI document as committed in docs/openapi.json: built from the route schemas of a real
 * app on a throwaway in-memory store, without listening.
 */
export async function generateOpenApiDocument(): Promise<string> {
  const store = await openStore({ backend: 'pglite' })
  try {
    const app = await buildApp({ store, inventory: createInventory({ store }) })
    try {
      await app.ready()
      return JSON.stringify(app.swagger(), null, 2) + '\n'
    } finally {
      await app.close()
    }
  } finally {
    await store.close()
  }
}
