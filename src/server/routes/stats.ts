import type { Inventory } from '../../inventory/inventory-types.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses, StatsSchema } from '../schemas.js'

export function registerStatsRoutes(
  app: TesseraApp,
  deps: { inventory: Pick<Inventory, 'stats'> },
): void {
  app.get(
    '/v1/stats',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['inventory'],
        summary: 'Counts of current facts per table',
        security: bearerSecurity,
        response: { 200: StatsSchema, ...problemResponses(401, 403) },
      },
    },
    async () => deps.inventory.stats(),
  )
}
