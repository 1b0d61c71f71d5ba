import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { createFixedClock, systemClock, type Clock } from '../../runtime/clock.js'
import { startWorkloadApiServer, type WorkloadApiServer } from '../../workload-api/server.js'
import { workloadProtoPath } from '../../workload-api/proto.js'
import { createAgentCore, type AgentCore, type AgentCoreDeps } from '../agent-core.js'
import { loadPeerCredentials } from '../peercred.js'
import { createManualScheduler, createTimerScheduler, type Scheduler } from '../scheduler.js'
import { createStartTimeReader, createUnixAttestor } from '../unix-attestor.js'
import { createFakeControlPort, type FakeControlPort } from './fake-control-port.js'

/**
 * A Workload API client built at run time from the proto with proto-loader, as any third-party
 * client would be: service `SpiffeWorkloadAPI`, no package.
 */
export function createWorkloadClient(
  socketPath: string,
  options: grpc.ChannelOptions = {},
): grpc.Client & Record<string, unknown> {
  const def = protoLoader.loadSync(workloadProtoPath(), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  })
  const loaded = grpc.loadPackageDefinition(def) as unknown as Record<
    string,
    new (
      addr: string,
      creds: grpc.ChannelCredentials,
      options: grpc.ChannelOptions,
    ) => grpc.Client & Record<string, unknown>
  >
  const Ctor = loaded.SpiffeWorkloadAPI!
  return new Ctor(`unix://${socketPath}`, grpc.credentials.createInsecure(), options)
}

export function headerMetadata(): grpc.Metadata {
  const md = new grpc.Metadata()
  md.set('workload.spiffe.io', 'true')
  return md
}

export interface TestAgent {
  dir: string
  socketPath: string
  port: FakeControlPort
  core: AgentCore
  server: WorkloadApiServer
  clock: Clock
  scheduler: Scheduler
  /** Present when started with `manualClock: true`. */
  advance?: (ms: number) => void
  /** Selectors of this test process as the unix attestor sees it. */
  selfSelectors: { uid: string; path: string }
  close(): Promise<void>
}

/** Fake control plane (real signing) + agent core + Workload API server on a temp socket. */
export async function startTestAgent(
  options: {
    manualClock?: boolean
    defaultX509Ttl?: number
    port?: FakeControlPort
    core?: Partial<AgentCoreDeps>
  } = {},
): Promise<TestAgent> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-agent-'))
  const socketPath = join(dir, 'agent.sock')
  let clock: Clock = systemClock
  let scheduler: Scheduler
  let advance: ((ms: number) => void) | undefined
  if (options.manualClock === true) {
    const fixed = createFixedClock(new Date())
    const manual = createManualScheduler(fixed)
    clock = fixed
    scheduler = manual
    advance = (ms) => manual.advance(ms)
  } else {
    scheduler = createTimerScheduler(clock)
  }
  const port =
    options.port ??
    (await createFakeControlPort({
      clock,
      ...(options.defaultX509Ttl === undefined ? {} : { defaultX509Ttl: options.defaultX509Ttl }),
    }))
  const core = createAgentCore({
    port,
    attestors: [createUnixAttestor()],
    clock,
    scheduler,
    ...options.core,
  })
  const server = await startWorkloadApiServer({
    socketPath,
    backend: core,
    peerCredentials: loadPeerCredentials(),
    processStartTime: createStartTimeReader(),
  })
  const { realpathSync } = await import('node:fs')
  return {
    dir,
    socketPath,
    port,
    core,
    server,
    clock,
    scheduler,
    ...(advance === undefined ? {} : { advance }),
    selfSelectors: {
      uid: `uid:${process.getuid?.() ?? 0}`,
      path: `path:${realpathSync(process.execPath)}`,
    },
    async close() {
      await server.close()
      core.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
