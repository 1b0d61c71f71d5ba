import { isTesseraError, type TesseraError } from '../../errors.js'
import { parseObservation } from '../../inventory/observation-parse.js'
import type { Observation } from '../../inventory/observation.js'
import { createFixedClock } from '../../runtime/clock.js'
import type { Connector, ConnectorFactory, DiscoverContext, FileReader } from '../connector.js'
import { nodeFileReader } from '../files.js'

export interface Collected {
  observations: Observation[]
  /** Errors the connector reported and, last, the one it threw (if any). */
  errors: TesseraError[]
  /** Observations that break the observation contract (a connector bug): `type: reason`. */
  invalid: string[]
}

/** Runs a connector to the end the way the runner does, without a store. */
export async function collect(
  connector: Connector,
  ctx: Partial<Omit<DiscoverContext, 'report'>> & { files?: FileReader } = {},
): Promise<Collected> {
  const out: Collected = { observations: [], errors: [], invalid: [] }
  const context: DiscoverContext = {
    clock: createFixedClock('2026-11-20T12:00:00Z'),
    files: nodeFileReader,
    ...ctx,
    report: (e) => out.errors.push(e),
  }
  try {
    for await (const o of connector.discover(context)) {
      const checked = parseObservation(o)
      if (checked.ok) out.observations.push(o)
      else out.invalid.push(`${o.type}: ${checked.reason}`)
    }
  } catch (err) {
    if (!isTesseraError(err)) throw err
    out.errors.push(err)
  }
  return out
}

/** Builds a connector from options or fails the test with the problems. */
export function make(
  factory: ConnectorFactory,
  options: Record<string, unknown>,
  extra: { name?: string; env?: NodeJS.ProcessEnv; baseDir?: string } = {},
): Connector {
  const made = factory({
    name: extra.name ?? 'test:source',
    options,
    baseDir: extra.baseDir ?? process.cwd(),
    env: extra.env ?? {},
  })
  if (!made.ok) throw new Error(`connector options refused: ${made.problems.join('; ')}`)
  return made.connector
}

/** A file reader over in-memory files (for malformed and truncated variants of a sample). */
export function memoryFiles(files: Record<string, Buffer | string>): FileReader {
  return {
    readFile(path) {
      const f = files[path]
      if (f === undefined) return Promise.reject(new Error(`no file ${path}`))
      return Promise.resolve(Buffer.isBuffer(f) ? f : Buffer.from(f))
    },
    listFiles(path) {
      const under = Object.keys(files).filter((p) => p === path || p.startsWith(path + '/'))
      return Promise.resolve(under.sort())
    },
  }
}

export function byType<T extends Observation['type']>(
  observations: readonly Observation[],
  type: T,
): Extract<Observation, { type: T }>[] {
  return observations.filter((o): o is Extract<Observation, { type: T }> => o.type === type)
}
