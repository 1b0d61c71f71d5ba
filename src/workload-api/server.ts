import { chmod, lstat, mkdir, unlink } from 'node:fs/promises'
import net from 'node:net'
import { dirname } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { TesseraError } from '../errors.js'
import type { Selector } from '../spiffe/types.js'
import {
  WorkloadApiError,
  type PeerCredentials,
  type WatchUpdate,
  type WorkloadApiBackend,
  type WorkloadPeer,
  type X509SvidItem,
  type X509SvidState,
} from './backend.js'
import { securityHeader, workloadServiceDefinition } from './proto.js'

export interface WorkloadApiServerDeps {
  /** Path of the Unix socket to serve on. */
  socketPath: string
  backend: WorkloadApiBackend
  /** SO_PEERCRED of a connected socket's fd (the native addon). */
  peerCredentials: (fd: number) => PeerCredentials
  /** Reads the peer's process start time at accept, for the PID-reuse defence. */
  processStartTime?: (pid: number) => Promise<string | undefined>
  /** File mode of the socket. Default 0o666: anyone may connect, the attestor decides who gets what. */
  socketMode?: number
  /** Called with errors that have nowhere else to go (a failed accept, a peer lookup failure). */
  onError?: (err: unknown) => void
  /**
   * More gRPC services on the same socket, beside SpiffeWorkloadAPI (which must not be extended):
   * Tessera's `tessera.secrets.v1.Secrets`. Their handlers attest callers through `attest`.
   */
  extraServices?: readonly {
    definition: grpc.ServiceDefinition
    handlers(
      attest: (call: { metadata: grpc.Metadata; getPeer(): string }) => Promise<Selector[]>,
    ): grpc.UntypedServiceImplementation
  }[]
}

export interface WorkloadApiServer {
  readonly socketPath: string
  /** Number of open client connections. */
  connections(): number
  close(): Promise<void>
}

type AnyCall = {
  metadata: grpc.Metadata
  getPeer(): string
}

const statusOf: Record<WorkloadApiError['code'], grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
}

function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  if (err instanceof WorkloadApiError) return { code: statusOf[err.code], details: err.message }
  return { code: grpc.status.UNAVAILABLE, details: 'workload API backend failed' }
}

/**
 * Removes a socket file left by a dead agent. A live socket (something answers) or a path that is not
 * a socket is refused rather than deleted.
 */
export async function removeStaleSocket(path: string): Promise<void> {
  let st
  try {
    st = await lstat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  if (!st.isSocket()) {
    throw new TesseraError(
      'TSR_AGENT_SOCKET',
      `${path} exists and is not a socket; not removing it`,
    )
  }
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(path)
    c.once('connect', () => {
      c.destroy()
      resolve(true)
    })
    c.once('error', () => resolve(false))
  })
  if (alive) {
    throw new TesseraError('TSR_AGENT_SOCKET', `another process is serving on ${path}`)
  }
  await unlink(path)
}

/**
 * Serves the SPIFFE Workload API on a Unix socket. We accept connections on our own net.Server so we
 * hold each socket's fd and can read its peer credentials, tag the socket, then hand it to grpc-js
 * through its connection injector; handlers find the caller again through `call.getPeer()`.
 */
export async function startWorkloadApiServer(
  deps: WorkloadApiServerDeps,
): Promise<WorkloadApiServer> {
  const { socketPath, backend } = deps
  const onError = deps.onError ?? (() => {})
  const peers = new Map<string, WorkloadPeer>()
  const sockets = new Set<net.Socket>()
  let nextPeer = 1

  // FetchX509SVID responses are serialized once per SVID item and shared by every stream and call
  // that sends the same state (see encodeX509); the serializer passes such bytes through.
  const definition = workloadServiceDefinition()
  const fetchX509 = definition.FetchX509SVID!
  const serializeX509 = fetchX509.responseSerialize
  const service: grpc.ServiceDefinition = {
    ...definition,
    FetchX509SVID: {
      ...fetchX509,
      responseSerialize: (v: unknown) => (Buffer.isBuffer(v) ? v : serializeX509(v)),
    },
  }
  const encodedX509 = new WeakMap<X509SvidItem, Buffer>()
  const grpcServer = new grpc.Server({ 'grpc.max_concurrent_streams': 1000 })
  grpcServer.addService(service, buildHandlers())
  for (const extra of deps.extraServices ?? []) {
    grpcServer.addService(
      extra.definition,
      extra.handlers((call) => attest(call)),
    )
  }
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure())

  await mkdir(dirname(socketPath), { recursive: true })
  await removeStaleSocket(socketPath)
  const netServer = net.createServer({ pauseOnConnect: true }, (socket) => {
    void accept(socket)
  })
  await new Promise<void>((resolve, reject) => {
    netServer.once('error', reject)
    netServer.listen(socketPath, () => {
      netServer.off('error', reject)
      resolve()
    })
  })
  await chmod(socketPath, deps.socketMode ?? 0o666)
  netServer.on('error', onError)

  async function accept(socket: net.Socket): Promise<void> {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd
    let peer: WorkloadPeer
    try {
      if (typeof fd !== 'number' || fd < 0) throw new Error('accepted socket has no fd')
      const cred = deps.peerCredentials(fd)
      const startTime = await deps.processStartTime?.(cred.pid)
      peer = { ...cred, ...(startTime === undefined ? {} : { startTime }) }
    } catch (err) {
      onError(err)
      socket.destroy()
      return
    }
    if (socket.destroyed) return
    const tag = `tessera-peer-${nextPeer++}`
    peers.set(tag, peer)
    socket.once('close', () => peers.delete(tag))
    // grpc-js reports `socket.remoteAddress` as the call's peer; a Unix socket has none, so the tag
    // is how a handler finds the credentials read above.
    Object.defineProperty(socket, 'remoteAddress', { value: tag, configurable: true })
    injector.injectConnection(socket)
    socket.resume()
  }

  function checkHeader(call: AnyCall): void {
    const values = call.metadata.get(securityHeader)
    if (values.length !== 1 || values[0] !== 'true') {
      throw new WorkloadApiError('INVALID_ARGUMENT', 'security header missing from request')
    }
  }

  async function attest(call: AnyCall): Promise<Selector[]> {
    checkHeader(call)
    const peer = peers.get(call.getPeer())
    if (peer === undefined) throw new WorkloadApiError('UNAVAILABLE', 'workload attestation failed')
    try {
      return await backend.attest(peer)
    } catch (err) {
      if (err instanceof WorkloadApiError) throw err
      throw new WorkloadApiError('UNAVAILABLE', 'workload attestation failed', { cause: err })
    }
  }

  function stream<T>(
    call: grpc.ServerWritableStream<unknown, unknown>,
    watch: (selectors: Selector[], on: (u: WatchUpdate<T>) => void) => () => void,
    encode: (value: T) => unknown,
    dedupe: boolean,
  ): void {
    let cancel: (() => void) | undefined
    let done = false
    let last: string | undefined
    const finish = (err?: unknown): void => {
      if (done) return
      done = true
      cancel?.()
      if (err !== undefined) call.emit('error', toServiceError(err))
      else call.end()
    }
    call.on('cancelled', () => finish())
    call.on('close', () => {
      done = true
      cancel?.()
    })
    attest(call as unknown as AnyCall).then(
      (selectors) => {
        if (done) return
        cancel = watch(selectors, (u) => {
          if (done) return
          if (!u.ok) return finish(u.error)
          const msg = encode(u.value)
          if (dedupe) {
            const key = JSON.stringify(msg, (_k, v: unknown) =>
              Buffer.isBuffer(v) ? v.toString('base64') : v,
            )
            if (key === last) return
            last = key
          }
          call.write(msg)
        })
        if (done) cancel()
      },
      (err: unknown) => finish(err),
    )
  }

  function unary<T>(
    call: grpc.ServerUnaryCall<unknown, unknown>,
    callback: grpc.sendUnaryData<unknown>,
    run: (selectors: Selector[]) => Promise<T>,
  ): void {
    attest(call as unknown as AnyCall)
      .then(run)
      .then(
        (value) => callback(null, value),
        (err: unknown) => callback(toServiceError(err) as grpc.ServiceError),
      )
  }

  function bundleMap(m: Map<string, Buffer>): Record<string, Buffer> {
    return Object.fromEntries(m)
  }

  function x509Message(state: X509SvidState): unknown {
    return {
      svids: state.svids.map((svid) => ({
        spiffe_id: svid.spiffeId,
        x509_svid: svid.certChainDer ?? Buffer.concat(svid.certChain),
        x509_svid_key: svid.privateKey,
        bundle: svid.bundle,
        hint: svid.hint ?? '',
      })),
      crl: [],
      federated_bundles: bundleMap(state.federatedBundles),
    }
  }

  /** The common state (one SVID, no federated bundles) is serialized once per SVID item. */
  function encodeX509(state: X509SvidState): unknown {
    const only = state.svids.length === 1 ? state.svids[0] : undefined
    if (only === undefined || state.federatedBundles.size > 0) return x509Message(state)
    let bytes = encodedX509.get(only)
    if (bytes === undefined) {
      bytes = serializeX509(x509Message(state))
      encodedX509.set(only, bytes)
    }
    return bytes
  }

  function buildHandlers(): grpc.UntypedServiceImplementation {
    return {
      FetchX509SVID: (call: grpc.ServerWritableStream<unknown, unknown>) =>
        stream<X509SvidState>(call, (s, on) => backend.watchX509Svids(s, on), encodeX509, false),
      FetchX509Bundles: (call: grpc.ServerWritableStream<unknown, unknown>) =>
        stream<Map<string, Buffer>>(
          call,
          (s, on) => backend.watchX509Bundles(s, on),
          (m) => ({ crl: [], bundles: bundleMap(m) }),
          true,
        ),
      FetchJWTBundles: (call: grpc.ServerWritableStream<unknown, unknown>) =>
        stream<Map<string, Buffer>>(
          call,
          (s, on) => backend.watchJwtBundles(s, on),
          (m) => ({ bundles: bundleMap(m) }),
          true,
        ),
      FetchJWTSVID: (
        call: grpc.ServerUnaryCall<{ audience?: string[]; spiffe_id?: string }, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) =>
        unary(call, callback, async (selectors) => {
          const audience = (call.request.audience ?? []).filter((a) => a !== '')
          if (audience.length === 0) {
            throw new WorkloadApiError('INVALID_ARGUMENT', 'audience must be specified')
          }
          const spiffeId = call.request.spiffe_id === '' ? undefined : call.request.spiffe_id
          const svids = await backend.fetchJwtSvids(selectors, audience, spiffeId)
          return {
            svids: svids.map((s) => ({ spiffe_id: s.spiffeId, svid: s.token, hint: s.hint ?? '' })),
          }
        }),
      ValidateJWTSVID: (
        call: grpc.ServerUnaryCall<{ audience?: string; svid?: string }, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) =>
        unary(call, callback, async (selectors) => {
          const audience = call.request.audience ?? ''
          const token = call.request.svid ?? ''
          if (audience === '')
            throw new WorkloadApiError('INVALID_ARGUMENT', 'audience must be specified')
          if (token === '') throw new WorkloadApiError('INVALID_ARGUMENT', 'svid must be specified')
          const res = await backend.validateJwtSvid(selectors, token, audience)
          return { spiffe_id: res.spiffeId, claims: toStruct(res.claims) }
        }),
      FetchWITSVID: (call: grpc.ServerWritableStream<unknown, unknown>) =>
        call.emit('error', {
          code: grpc.status.UNIMPLEMENTED,
          details: 'WIT-SVIDs are not supported',
        }),
      FetchWITBundles: (call: grpc.ServerWritableStream<unknown, unknown>) =>
        call.emit('error', {
          code: grpc.status.UNIMPLEMENTED,
          details: 'WIT-SVIDs are not supported',
        }),
    }
  }

  return {
    socketPath,
    connections: () => sockets.size,
    async close() {
      await new Promise<void>((resolve) => {
        netServer.close(() => resolve())
        injector.drain(200)
        for (const s of sockets) s.destroy()
      })
      injector.destroy()
      await new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()))
      await unlink(socketPath).catch(() => {})
    },
  }
}

/** google.protobuf.Struct in proto-loader's object form. */
type StructValue =
  | { nullValue: 'NULL_VALUE' }
  | { numberValue: number }
  | { stringValue: string }
  | { boolValue: boolean }
  | { structValue: { fields: Record<string, StructValue> } }
  | { listValue: { values: StructValue[] } }

export function toStructValue(v: unknown): StructValue {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' }
  if (typeof v === 'number') return { numberValue: v }
  if (typeof v === 'string') return { stringValue: v }
  if (typeof v === 'boolean') return { boolValue: v }
  if (Array.isArray(v)) return { listValue: { values: v.map(toStructValue) } }
  if (typeof v === 'object') return { structValue: toStruct(v as Record<string, unknown>) }
  return { stringValue: String(v) }
}

export function toStruct(o: Record<string, unknown>): { fields: Record<string, StructValue> } {
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toStructValue(v)])) }
}
