import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { TesseraError } from '../errors.js'
import {
  protoLoaderOptions,
  securityHeader,
  workloadProtoPath,
  workloadServiceName,
} from './proto.js'

/**
 * Where the Workload API is: `unix:///path`, `unix:/path` or a plain absolute path (as in
 * SPIFFE_ENDPOINT_SOCKET). Returns the filesystem path.
 */
export function parseEndpointSocket(value: string): string {
  const v = value.trim()
  let path: string
  if (v.startsWith('unix://')) path = v.slice('unix://'.length)
  else if (v.startsWith('unix:')) path = v.slice('unix:'.length)
  else path = v
  if (!path.startsWith('/') || path.includes('\0') || /[?#]/.test(path)) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `Workload API endpoint must be unix:///absolute/path or an absolute path, not ${JSON.stringify(value)}`,
    )
  }
  return path
}

export interface X509SvidMessage {
  spiffe_id: string
  x509_svid: Buffer
  x509_svid_key: Buffer
  bundle: Buffer
  hint: string
}

export interface X509SvidResponseMessage {
  svids: X509SvidMessage[]
  crl: Buffer[]
  federated_bundles: Record<string, Buffer>
}

/** A Workload API client (proto-loader + grpc-js) that always sends the security header. */
export interface WorkloadApiClient {
  /** Opens FetchX509SVID; returns a cancel function. `onError` gets the stream's final error. */
  watchX509Svids(
    onMessage: (m: X509SvidResponseMessage) => void,
    onError: (err: grpc.ServiceError) => void,
  ): () => void
  fetchJwtSvid(
    audience: string[],
    spiffeId?: string,
  ): Promise<{ spiffe_id: string; svid: string }[]>
  close(): void
}

export function createWorkloadApiClient(socketPath: string): WorkloadApiClient {
  const def = protoLoader.loadSync(workloadProtoPath(), protoLoaderOptions)
  const Ctor = (grpc.loadPackageDefinition(def) as unknown as Record<string, typeof grpc.Client>)[
    workloadServiceName
  ]!
  const client = new Ctor(
    `unix://${socketPath}`,
    grpc.credentials.createInsecure(),
  ) as grpc.Client & Record<string, (...args: unknown[]) => unknown>
  const md = (): grpc.Metadata => {
    const m = new grpc.Metadata()
    m.set(securityHeader, 'true')
    return m
  }
  return {
    watchX509Svids(onMessage, onError) {
      const call = client.FetchX509SVID!(
        {},
        md(),
      ) as grpc.ClientReadableStream<X509SvidResponseMessage>
      let cancelled = false
      call.on('data', onMessage)
      call.on('error', (err: grpc.ServiceError) => {
        if (!cancelled) onError(err)
      })
      call.on('end', () => {
        if (!cancelled) {
          onError(
            Object.assign(new Error('stream ended'), {
              code: grpc.status.UNAVAILABLE,
              details: 'stream ended',
              metadata: new grpc.Metadata(),
            }),
          )
        }
      })
      return () => {
        cancelled = true
        call.cancel()
      }
    },
    fetchJwtSvid(audience, spiffeId) {
      return new Promise((resolve, reject) => {
        client.FetchJWTSVID!(
          { audience, spiffe_id: spiffeId ?? '' },
          md(),
          (err: grpc.ServiceError | null, res: { svids: { spiffe_id: string; svid: string }[] }) =>
            err ? reject(err) : resolve(res.svids),
        )
      })
    },
    close: () => client.close(),
  }
}
