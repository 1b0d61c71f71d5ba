import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { TesseraError } from '../errors.js'

/** The gRPC service name: no proto package, so paths are `/SpiffeWorkloadAPI/<Method>`. */
export const workloadServiceName = 'SpiffeWorkloadAPI'

/** The metadata key every Workload API request must carry with the single value `true`. */
export const securityHeader = 'workload.spiffe.io'

/**
 * Where `workload.proto` is: beside this module (the build copies it into dist/), else in the
 * source tree (tsx, tests).
 */
export function workloadProtoPath(): string {
  const candidates = [
    new URL('./workload.proto', import.meta.url),
    new URL('../../src/workload-api/workload.proto', import.meta.url),
  ]
  for (const c of candidates) {
    const p = fileURLToPath(c)
    if (existsSync(p)) return p
  }
  throw new TesseraError('TSR_CONFIG', 'workload.proto not found beside the Workload API module')
}

/** proto-loader options shared by the server and test clients: bytes stay Buffers, keys snake_case. */
export const protoLoaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
}

let cached: grpc.ServiceDefinition | undefined

/** The `SpiffeWorkloadAPI` service definition, loaded once from the proto. */
export function workloadServiceDefinition(): grpc.ServiceDefinition {
  if (cached !== undefined) return cached
  const pkg = protoLoader.loadSync(workloadProtoPath(), protoLoaderOptions)
  const loaded = grpc.loadPackageDefinition(pkg) as unknown as Record<
    string,
    { service: grpc.ServiceDefinition }
  >
  const svc = loaded[workloadServiceName]
  if (svc === undefined)
    throw new TesseraError('TSR_INTERNAL', 'SpiffeWorkloadAPI missing in proto')
  cached = svc.service
  return cached
}
