import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { TesseraError, isTesseraError } from '../errors.js'
import type { Selector } from '../spiffe/types.js'
import { protoLoaderOptions, securityHeader } from './proto.js'

/** `tessera.secrets.v1.Secrets` (secrets.proto): managed-secret delivery on the agent socket. */
export const secretsServiceName = 'tessera.secrets.v1.Secrets'

export interface DeliveredSecret {
  name: string
  spiffeId: string
  version: number
  value: string
  rotatedAt?: string
  previousValidUntil?: string
}

export interface SecretResponseMessage {
  name: string
  spiffe_id: string
  version: string
  value: Buffer
  rotated_at: string
  previous_valid_until: string
}

function protoPath(): string {
  for (const c of [
    new URL('./secrets.proto', import.meta.url),
    new URL('../../src/workload-api/secrets.proto', import.meta.url),
  ]) {
    const p = fileURLToPath(c)
    if (existsSync(p)) return p
  }
  throw new TesseraError('TSR_CONFIG', 'secrets.proto not found beside the Workload API module')
}

let cached: grpc.ServiceDefinition | undefined
export function secretsServiceDefinition(): grpc.ServiceDefinition {
  if (cached) return cached
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath(), protoLoaderOptions))
  const svc = (pkg.tessera as grpc.GrpcObject)?.secrets as grpc.GrpcObject | undefined
  const ctor = (svc?.v1 as grpc.GrpcObject | undefined)?.Secrets as
    grpc.ServiceClientConstructor | undefined
  if (!ctor) throw new TesseraError('TSR_INTERNAL', 'Secrets missing in secrets.proto')
  cached = ctor.service
  return cached
}

export interface SecretsHandlerDeps {
  /** Attests the caller (the Workload API server's own attestation); throws when it cannot. */
  attest(call: grpc.ServerWritableStream<unknown, unknown>): Promise<Selector[]>
  /** The SPIFFE IDs the attested workload is entitled to (its matching, unrevoked entries). */
  spiffeIdsFor(selectors: readonly Selector[]): string[]
  /** Asks the control plane (agent proof) for the secret as one SPIFFE ID. */
  fetch(name: string, spiffeId: string): Promise<DeliveredSecret>
  /** How often an open stream re-asks the server for a new version (default 5 s). */
  pollMs?: number
  onError?: (err: unknown) => void
}

const grpcCodeOf = (err: unknown): grpc.status => {
  if (isTesseraError(err, 'TSR_SECRET_DENIED')) return grpc.status.PERMISSION_DENIED
  if (isTesseraError(err, 'TSR_NOT_FOUND')) return grpc.status.NOT_FOUND
  if (isTesseraError(err, 'TSR_VALIDATION')) return grpc.status.INVALID_ARGUMENT
  return grpc.status.UNAVAILABLE
}

/**
 * The FetchSecret handler. The SPIFFE IDs come from the agent's own attestation of the caller; the
 * server checks again that the agent serves that ID and that it is a consumer. A stream re-asks
 * every `pollMs` and sends a message only when the version changed; a transient server failure
 * keeps the stream (the workload holds its last value), a denial ends it.
 */
export function createSecretsHandlers(deps: SecretsHandlerDeps): grpc.UntypedServiceImplementation {
  const pollMs = deps.pollMs ?? 5000
  return {
    FetchSecret: (
      call: grpc.ServerWritableStream<{ name?: string; spiffe_id?: string }, unknown>,
    ) => {
      let done = false
      let timer: NodeJS.Timeout | undefined
      const finish = (err?: { code: grpc.status; details: string }) => {
        if (done) return
        done = true
        if (timer) clearTimeout(timer)
        if (err) call.emit('error', err)
        else call.end()
      }
      call.on('cancelled', () => finish())
      call.on('close', () => {
        done = true
        if (timer) clearTimeout(timer)
      })
      const name = call.request.name ?? ''
      const asked = call.request.spiffe_id ?? ''
      const header = call.metadata.get(securityHeader)
      if (header.length !== 1 || header[0] !== 'true') {
        return finish({
          code: grpc.status.INVALID_ARGUMENT,
          details: 'security header missing from request',
        })
      }
      if (name === '')
        return finish({ code: grpc.status.INVALID_ARGUMENT, details: 'name must be specified' })
      let lastVersion = -1
      const poll = async (selectors: readonly Selector[], first: boolean): Promise<void> => {
        const ids = deps.spiffeIdsFor(selectors).filter((id) => asked === '' || id === asked)
        if (ids.length === 0) {
          return finish({
            code: grpc.status.PERMISSION_DENIED,
            details: asked ? `this workload is not ${asked}` : 'this workload has no SPIFFE ID',
          })
        }
        let delivered: DeliveredSecret | undefined
        let lastErr: unknown
        for (const id of ids) {
          try {
            delivered = await deps.fetch(name, id)
            break
          } catch (err) {
            lastErr = err
            if (!isTesseraError(err, 'TSR_SECRET_DENIED')) break
          }
        }
        if (done) return
        if (!delivered) {
          const code = grpcCodeOf(lastErr)
          if (code === grpc.status.UNAVAILABLE && !first) {
            deps.onError?.(lastErr)
          } else {
            return finish({
              code,
              details:
                code === grpc.status.PERMISSION_DENIED
                  ? `not entitled to the secret ${name}`
                  : `the secret ${name} is not available: ${(lastErr as Error).message}`,
            })
          }
        } else if (delivered.version !== lastVersion) {
          lastVersion = delivered.version
          call.write({
            name: delivered.name,
            spiffe_id: delivered.spiffeId,
            version: String(delivered.version),
            value: Buffer.from(delivered.value, 'utf8'),
            rotated_at: delivered.rotatedAt ?? '',
            previous_valid_until: delivered.previousValidUntil ?? '',
          })
        }
        timer = setTimeout(() => void poll(selectors, false), pollMs)
      }
      deps.attest(call as grpc.ServerWritableStream<unknown, unknown>).then(
        (selectors) => poll(selectors, true),
        () => finish({ code: grpc.status.UNAVAILABLE, details: 'workload attestation failed' }),
      )
    },
  }
}

/** Whether every selector of an entry is among the workload's (the Workload API's subset rule). */
export function entitledSpiffeIds(
  entries: Iterable<{ spiffeId: string; selectors: readonly Selector[] }>,
  selectors: readonly Selector[],
  revokedIds: ReadonlySet<string> = new Set(),
): string[] {
  const have = new Set(selectors.map((s) => `${s.type}:${s.value}`))
  const out = new Set<string>()
  for (const e of entries) {
    if (e.selectors.length === 0 || revokedIds.has(e.spiffeId)) continue
    if (e.selectors.every((s) => have.has(`${s.type}:${s.value}`))) out.add(e.spiffeId)
  }
  return [...out].sort()
}

export interface SecretsClient {
  /** Streams the secret; `onMessage` per version, `onError` once when the stream fails. */
  watch(
    request: { name: string; spiffeId?: string },
    onMessage: (m: SecretResponseMessage) => void,
    onError: (err: grpc.ServiceError) => void,
  ): () => void
  close(): void
}

/** A client of the Secrets service on a Workload API socket (the CLI's `secret fetch`, tests). */
export function createSecretsClient(socketPath: string): SecretsClient {
  const Ctor = grpc.makeGenericClientConstructor(secretsServiceDefinition(), 'Secrets')
  const client = new Ctor(`unix://${socketPath}`, grpc.credentials.createInsecure())
  return {
    watch(request, onMessage, onError) {
      const md = new grpc.Metadata()
      md.set(securityHeader, 'true')
      const stream = (
        client as unknown as {
          FetchSecret(
            req: unknown,
            md: grpc.Metadata,
          ): grpc.ClientReadableStream<SecretResponseMessage>
        }
      ).FetchSecret({ name: request.name, spiffe_id: request.spiffeId ?? '' }, md)
      stream.on('data', onMessage)
      stream.on('error', (err: grpc.ServiceError) => {
        if (err.code !== grpc.status.CANCELLED) onError(err)
      })
      return () => stream.cancel()
    },
    close: () => client.close(),
  }
}
