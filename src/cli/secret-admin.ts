import { discardEvents } from '../audit/event-sink.js'
import type {
  ManageInput,
  RotationHistoryItem,
  SecretView,
} from '../lifecycle/rotation/secrets-service.js'
import type { RotationView } from '../lifecycle/rotation/engine.js'
import type { Clock } from '../runtime/clock.js'
import type { Store } from '../store/store.js'
import type { RemoteHttp } from './remote.js'

/**
 * Managed secrets, the same over HTTP (`--server`) or on a store opened here. `tessera secret …`
 * sees only this. None of it ever returns a value.
 */
export interface SecretAdmin {
  manage(input: Omit<ManageInput, 'createdBy'>): Promise<SecretView>
  list(): Promise<SecretView[]>
  show(name: string): Promise<SecretView & { rotations: RotationHistoryItem[] }>
  rotate(name: string): Promise<RotationView>
}

export function remoteSecretAdmin(http: RemoteHttp): SecretAdmin {
  const path = (name: string) => `v1/secrets/${encodeURIComponent(name)}`
  return {
    manage: (input) => http.json('POST', 'v1/secrets', { body: input }),
    list: async () => (await http.json<{ items: SecretView[] }>('GET', 'v1/secrets')).items,
    show: (name) => http.json('GET', path(name)),
    rotate: (name) => http.json('POST', path(name) + '/rotate'),
  }
}

/**
 * On a store opened here, with the key-encryption key the server uses (TESSERA_KEK,
 * TESSERA_KEK_FILE, or the embedded store's file). Rotation steps run in this process; audit
 * events are only kept by a server, so prefer `--server` where one runs.
 */
export function localSecretAdmin(
  store: Store,
  clock: Clock,
  env: NodeJS.ProcessEnv,
  user: string,
): SecretAdmin {
  const open = async () => {
    const [{ resolveKeyManagerConfig }, { createEnvelopeSealer }, { kekIdOf }, svc, inv] =
      await Promise.all([
        import('../ca/kek.js'),
        import('../ca/envelope.js'),
        import('../ca/key-manager.js'),
        import('../lifecycle/rotation/secrets-service.js'),
        import('../inventory/index.js'),
      ])
    const dataDir =
      store.backend === 'pglite' && store.location !== 'memory' ? store.location : undefined
    const km = resolveKeyManagerConfig({
      env,
      store: { backend: store.backend, ...(dataDir === undefined ? {} : { dataDir }) },
    })
    if (km.kind !== 'disk') {
      const { TesseraError } = await import('../errors.js')
      throw new TesseraError(
        'TSR_CONFIG',
        'managed secrets need a key-encryption key: an in-memory store has none (use --server or --data-dir)',
      )
    }
    return svc.createSecretsService({
      store,
      clock,
      sealer: createEnvelopeSealer(km.kek, kekIdOf(km.kek)),
      events: discardEvents,
      inventory: inv.createInventory({ store, clock }),
    })
  }
  return {
    manage: async (input) => (await open()).manage({ ...input, createdBy: `cli:${user}` }),
    list: async () => (await open()).list(),
    show: async (name) => (await open()).show(name),
    rotate: async (name) => (await open()).rotate(name, `cli:${user}`),
  }
}
