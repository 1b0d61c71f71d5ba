import type { TesseraError } from '../errors.js'
import type { Observation } from '../inventory/observation.js'
import type { Clock } from '../runtime/clock.js'

/**
 * The discovery seam (DESIGN §3): a connector reads one source (an export file, a live endpoint)
 * and yields observations. It never writes to the store; the runner ingests what it yields under a
 * discovery run of the connector's own name.
 *
 * A connector that meets bad input yields every valid observation it could still read, then either
 * throws a `TesseraError` (the source as a whole is unreadable past that point) or hands the error
 * to `ctx.report` and goes on (one of several inputs is bad). Either way the run is marked failed,
 * so a full run never closes facts that were merely unreadable this time.
 */
export interface Connector {
  readonly kind: ConnectorKind
  /** Instance name from the sources file, e.g. `aws:prod`; the `source` of every observation. */
  readonly name: string
  /** `full`: facts of this source not seen again are closed; `delta`: only adds and changes. */
  readonly scope: 'full' | 'delta'
  discover(ctx: DiscoverContext): AsyncIterable<Observation>
}

export const connectorKinds = [
  'aws',
  'kubernetes',
  'certificates',
  'tls',
  'ssh',
  'gcp',
  'azure',
  'github',
  'vault',
] as const
export type ConnectorKind = (typeof connectorKinds)[number]

/** The side effects a connector may use; tests pass their own. */
export interface DiscoverContext {
  clock: Clock
  files: FileReader
  /** Opens TLS connections (the `tls` connector); see certificates/tls.ts. */
  tls?: TlsProbe
  /** A problem that spoils part of the input but not the rest; the run goes on and is marked failed. */
  report(error: TesseraError): void
  /** Free-text progress ("reading users.csv"), shown by the CLI. */
  progress?(message: string): void
  signal?: AbortSignal
}

export interface FileReader {
  readFile(path: string): Promise<Buffer>
  /** Regular files under a directory (recursively), or the path itself when it is a file. */
  listFiles(path: string): Promise<string[]>
}

export interface TlsProbe {
  /** The served chain, leaf first, as DER, and whether it verified against the default CAs. */
  fetchChain(target: TlsTarget): Promise<TlsChain>
}

export interface TlsTarget {
  host: string
  port: number
  servername?: string
  timeoutMs?: number
  /** Verify against these CA certificates (PEM) instead of the default roots. */
  ca?: Buffer
}

export interface TlsChain {
  certificates: Buffer[]
  authorized: boolean
  /** Why it did not verify (`SELF_SIGNED_CERT_IN_CHAIN`, `CERT_HAS_EXPIRED`…). */
  authorizationError?: string
  protocol?: string
}

/** Where a connector's options are resolved from: relative paths are against `baseDir`. */
export interface ConnectorConfig {
  name: string
  options: Record<string, unknown>
  scope?: 'full' | 'delta'
  baseDir: string
  /** Secrets for options like a PKCS#12 password come from the environment, never the file. */
  env: NodeJS.ProcessEnv
}

/** A factory validates its own options and reports every problem at once. */
export type ConnectorFactory = (
  config: ConnectorConfig,
) => { ok: true; connector: Connector } | { ok: false; problems: string[] }
