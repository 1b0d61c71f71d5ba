import { systemClock, type Clock } from '../runtime/clock.js'
import type { PeerCredentials } from '../workload-api/backend.js'
import { startWorkloadApiServer, type WorkloadApiServer } from '../workload-api/server.js'
import {
  createSecretsHandlers,
  entitledSpiffeIds,
  secretsServiceDefinition,
  type DeliveredSecret,
} from '../workload-api/secrets-service.js'
import { createAgentCore, type AgentCore } from './agent-core.js'
import type { AgentControlPort } from './agent-ports.js'
import type { WorkloadAttestor } from './attestor.js'
import { createK8sAttestor } from './k8s-attestor.js'
import { loadPeerCredentials } from './peercred.js'
import { createTimerScheduler } from './scheduler.js'
import { createStartTimeReader, createUnixAttestor } from './unix-attestor.js'

export interface AgentConfig {
  /** The control plane, already attested (src/agent/sync builds it). */
  port: AgentControlPort
  /** Workload API socket path. */
  socketPath: string
  /** Default 0o666: any local process may ask; attestation decides what it gets. */
  socketMode?: number
  /** Workload attestors, by name or as objects. Default `['unix']`. */
  attestors?: readonly ('unix' | 'k8s' | WorkloadAttestor)[]
  /** For the `k8s` attestor: the kubelet's pod list (e.g. `https://127.0.0.1:10250/pods`). */
  kubelet?: { url: string; token?: string; fetch?: typeof fetch }
  maxX509Svids?: number
  maxJwtSvids?: number
  clock?: Clock
  /** SO_PEERCRED reader; default the native addon (TSR_AGENT_NATIVE when it was not built). */
  peerCredentials?: (fd: number) => PeerCredentials
  log?: (event: string, fields: Record<string, unknown>) => void
  /**
   * Managed-secret delivery (`tessera.secrets.v1.Secrets` on the same socket): how to ask the
   * control plane for a secret as one SPIFFE ID (agent proof), and how often streams re-ask.
   */
  secrets?: { fetch(name: string, spiffeId: string): Promise<DeliveredSecret>; pollMs?: number }
}

export interface RunningAgent {
  core: AgentCore
  server: WorkloadApiServer
  close(): Promise<void>
}

function kubeletFetcher(k: NonNullable<AgentConfig['kubelet']>): () => Promise<string> {
  const f = k.fetch ?? fetch
  return async () => {
    const res = await f(k.url, {
      headers: k.token === undefined ? {} : { authorization: `Bearer ${k.token}` },
    })
    if (!res.ok) throw new Error(`kubelet ${k.url} answered ${res.status}`)
    return res.text()
  }
}

/**
 * Starts the node agent's workload side: the agent core over `config.port` and the SPIFFE Workload
 * API on `config.socketPath`. Fails fast (TSR_AGENT_NATIVE) when the peer-credentials addon is
 * missing, and (TSR_AGENT_SOCKET) when another process serves on the socket.
 */
export async function startAgent(config: AgentConfig): Promise<RunningAgent> {
  const peerCredentials = config.peerCredentials ?? loadPeerCredentials()
  const clock = config.clock ?? systemClock
  const attestors: WorkloadAttestor[] = (config.attestors ?? ['unix']).map((a) => {
    if (a === 'unix') return createUnixAttestor()
    if (a === 'k8s') {
      const kubelet = config.kubelet ?? { url: 'http://127.0.0.1:10255/pods' }
      return createK8sAttestor({ fetchPods: kubeletFetcher(kubelet) })
    }
    return a
  })
  const core = createAgentCore({
    port: config.port,
    attestors,
    clock,
    scheduler: createTimerScheduler(clock),
    ...(config.maxX509Svids === undefined ? {} : { maxX509Svids: config.maxX509Svids }),
    ...(config.maxJwtSvids === undefined ? {} : { maxJwtSvids: config.maxJwtSvids }),
    ...(config.log === undefined ? {} : { log: config.log }),
  })
  let server: WorkloadApiServer
  try {
    server = await startWorkloadApiServer({
      socketPath: config.socketPath,
      backend: core,
      peerCredentials,
      processStartTime: createStartTimeReader(),
      ...(config.socketMode === undefined ? {} : { socketMode: config.socketMode }),
      ...(config.secrets ? { extraServices: [secretsService(config, config.secrets)] } : {}),
      ...(config.log === undefined
        ? {}
        : { onError: (err: unknown) => config.log!('workload_api_error', { error: String(err) }) }),
    })
  } catch (err) {
    core.close()
    throw err
  }
  return {
    core,
    server,
    async close() {
      await server.close()
      core.close()
    },
  }
}

/** The Secrets service: entitlement is the caller's matching, unrevoked entries' SPIFFE IDs. */
function secretsService(config: AgentConfig, secrets: NonNullable<AgentConfig['secrets']>) {
  return {
    definition: secretsServiceDefinition(),
    handlers: (attest: Parameters<typeof createSecretsHandlers>[0]['attest']) =>
      createSecretsHandlers({
        attest,
        spiffeIdsFor: (selectors) =>
          entitledSpiffeIds(
            config.port.entries().values(),
            selectors,
            new Set(
              config.port
                .revocations()
                .filter((r) => r.targetType === 'spiffe_id')
                .map((r) => r.value),
            ),
          ),
        fetch: (name, spiffeId) => secrets.fetch(name, spiffeId),
        ...(secrets.pollMs === undefined ? {} : { pollMs: secrets.pollMs }),
        ...(config.log === undefined
          ? {}
          : {
              onError: (err: unknown) => config.log!('secret_fetch_error', { error: String(err) }),
            }),
      }),
  }
}
