import type { DynamicBackend, DynamicBackendType } from './dynamic-backend.js'
import type { DynamicBackendConfig, DynamicConfig } from './dynamic-config.js'
import { createPostgresBackend } from './postgres-backend.js'
import { createRedisBackend } from './redis-backend.js'

type DynamicBackendFactory = (config: DynamicBackendConfig) => DynamicBackend

/** The built-in backends; a new type fails to compile until it is registered here. */
export const dynamicBackendFactories = {
  postgres: (config) => createPostgresBackend(config),
  redis: (config) => createRedisBackend(config),
} satisfies Record<DynamicBackendType, DynamicBackendFactory>

/** One backend per configured entry (connections open lazily, on first use). */
export function createDynamicBackends(
  config: DynamicConfig,
): { backend: DynamicBackend; config: DynamicBackendConfig }[] {
  return config.backends.map((b) => ({ backend: dynamicBackendFactories[b.type](b), config: b }))
}
