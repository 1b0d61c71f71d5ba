import type { FastifyInstance } from 'fastify'
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { Inventory } from '../../inventory/inventory-types.js'

export interface AppMetrics {
  readonly registry: Registry
}

/**
 * One prom-client registry per app, never the global one, so several apps in one process (tests,
 * replicas in one process) keep separate counts.
 */
export function registerMetrics(
  app: FastifyInstance,
  deps: { inventory: Pick<Inventory, 'stats'> },
): AppMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route, method and status code',
    labelNames: ['route', 'method', 'status_code'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })

  new Gauge({
    name: 'tessera_inventory_facts',
    help: 'Current facts in the inventory per table (refreshed on scrape)',
    labelNames: ['table'] as const,
    registers: [registry],
    async collect() {
      this.reset()
      try {
        const counts = await deps.inventory.stats()
        for (const [table, n] of Object.entries(counts)) this.set({ table }, n)
      } catch {
        // The store is down: /readyz says so; metrics still answer with what they have.
      }
    },
  })

  app.addHook('onResponse', async (request, reply) => {
    // Unmatched URLs share one label value, so scanners cannot blow up the label cardinality.
    const route = request.routeOptions.url ?? 'unmatched'
    duration.observe(
      { route, method: request.method, status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    )
  })

  return { registry }
}
