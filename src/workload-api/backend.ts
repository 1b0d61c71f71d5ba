import type { Selector } from '../spiffe/types.js'

/** The caller of the Workload API as the kernel reports it (SO_PEERCRED) when it connected. */
export interface PeerCredentials {
  pid: number
  uid: number
  gid: number
}

/** A connected workload: its credentials plus what the PID-reuse defence recorded at accept time. */
export interface WorkloadPeer extends PeerCredentials {
  /** `/proc/<pid>/stat` start time (field 22) read right after accept; undefined off Linux. */
  startTime?: string
}

/** The gRPC codes the Workload API spec prescribes (spiffe.md §0, §1.10). */
export type WorkloadApiErrorCode = 'INVALID_ARGUMENT' | 'PERMISSION_DENIED' | 'UNAVAILABLE'

/** An error a Workload API handler answers with its exact gRPC code. */
export class WorkloadApiError extends Error {
  readonly code: WorkloadApiErrorCode
  constructor(code: WorkloadApiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'WorkloadApiError'
    this.code = code
  }
}

/** Treated as immutable: the server may cache a response's encoding per item object. */
export interface X509SvidItem {
  spiffeId: string
  /** Leaf first; DER certificates. */
  certChain: Buffer[]
  /** `certChain` concatenated, when the backend keeps it encoded (saves a copy per response). */
  certChainDer?: Buffer
  /** Unencrypted PKCS#8 DER. */
  privateKey: Buffer
  /** Concatenated DER root certificates of the SVID's trust domain. */
  bundle: Buffer
  hint?: string
}

export interface X509SvidState {
  svids: X509SvidItem[]
  /** Key `spiffe://<td>`, value concatenated DER certificates. */
  federatedBundles: Map<string, Buffer>
}

export type WatchUpdate<T> = { ok: true; value: T } | { ok: false; error: WorkloadApiError }

/** What the Workload API server needs from the agent core. */
export interface WorkloadApiBackend {
  /** Selectors of the caller; throws (→ UNAVAILABLE) when attestation fails. */
  attest(peer: WorkloadPeer): Promise<Selector[]>
  /** Full state now (as soon as it is ready) and on every change, until the returned cancel. */
  watchX509Svids(
    selectors: readonly Selector[],
    onUpdate: (u: WatchUpdate<X509SvidState>) => void,
  ): () => void
  /** Key `spiffe://<td>`, value concatenated DER roots; own and federated trust domains. */
  watchX509Bundles(
    selectors: readonly Selector[],
    onUpdate: (u: WatchUpdate<Map<string, Buffer>>) => void,
  ): () => void
  /** Key `spiffe://<td>`, value JWKS JSON. */
  watchJwtBundles(
    selectors: readonly Selector[],
    onUpdate: (u: WatchUpdate<Map<string, Buffer>>) => void,
  ): () => void
  fetchJwtSvids(
    selectors: readonly Selector[],
    audience: readonly string[],
    spiffeId: string | undefined,
  ): Promise<{ spiffeId: string; token: string; hint?: string }[]>
  validateJwtSvid(
    selectors: readonly Selector[],
    token: string,
    audience: string,
  ): Promise<{ spiffeId: string; claims: Record<string, unknown> }>
}
