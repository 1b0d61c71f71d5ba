import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { TesseraError } from '../errors.js'
import { sourcePattern } from '../inventory/observation-schema.js'
import { connectorKinds, type Connector, type ConnectorKind } from './connector.js'
import { connectorFactories } from './registry.js'

/**
 * The sources file (YAML or JSON):
 *
 * ```yaml
 * sources:
 *   - name: aws:prod            # the `source` of its facts, and its discovery run's source
 *     type: aws                 # a connector kind (see docs/connectors.md)
 *     scope: full               # full (default): close facts not seen again; delta: never close
 *     interval: 6h              # the server runs it this often (omit: only `discover run`)
 *     options:
 *       authorizationDetails: ../examples/aws/authorization-details.json
 * ```
 */
export interface SourceConfig {
  name: string
  type: ConnectorKind
  scope: 'full' | 'delta'
  /** Server schedule, in milliseconds. */
  intervalMs?: number
  connector: Connector
}

const sourceKeys = new Set(['name', 'type', 'scope', 'interval', 'options'])

export async function loadSourcesFile(
  file: string,
  env: NodeJS.ProcessEnv,
): Promise<SourceConfig[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new TesseraError(
      'TSR_CONFIG',
      `cannot read sources file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      { cause: err },
    )
  }
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err) {
    const pos = (err as { linePos?: { line: number; col: number }[] }).linePos?.[0]
    throw new TesseraError(
      'TSR_CONFIG',
      `sources file ${file}${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}: not valid YAML or JSON`,
      { cause: err },
    )
  }
  return parseSources(doc, { file, baseDir: dirname(resolve(file)), env })
}

/** Validates a parsed sources document and builds its connectors; every problem in one error. */
export function parseSources(
  doc: unknown,
  where: { file: string; baseDir: string; env: NodeJS.ProcessEnv },
): SourceConfig[] {
  const problems: string[] = []
  const out: SourceConfig[] = []
  const list = (doc as { sources?: unknown } | null)?.sources
  if (typeof doc !== 'object' || doc === null || !Array.isArray(list)) {
    problems.push('sources: must be a list')
  } else {
    for (const key of Object.keys(doc)) if (key !== 'sources') problems.push(`${key}: unknown key`)
    const names = new Set<string>()
    list.forEach((entry: unknown, i) => {
      const at = `sources[${i}]`
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
        problems.push(`${at}: must be an object`)
        return
      }
      const e = entry as Record<string, unknown>
      for (const key of Object.keys(e)) {
        if (!sourceKeys.has(key)) problems.push(`${at}.${key}: unknown key`)
      }
      const name = e.name
      if (typeof name !== 'string' || !new RegExp(sourcePattern).test(name) || name.length > 200) {
        problems.push(`${at}.name: required, letters, digits and . _ : - (e.g. aws:prod)`)
        return
      }
      if (names.has(name)) problems.push(`${at}.name: ${name} is used twice`)
      names.add(name)
      const type = e.type
      if (typeof type !== 'string' || !(connectorKinds as readonly string[]).includes(type)) {
        problems.push(`${name}: type must be one of ${connectorKinds.join(', ')}`)
        return
      }
      const scope = e.scope ?? 'full'
      if (scope !== 'full' && scope !== 'delta')
        problems.push(`${name}: scope must be full or delta`)
      let intervalMs: number | undefined
      if (e.interval !== undefined) {
        intervalMs = parseInterval(e.interval)
        if (intervalMs === undefined) {
          problems.push(`${name}: interval must be a duration of at least 1m (e.g. 15m, 6h, 1d)`)
        }
      }
      const options = e.options ?? {}
      if (typeof options !== 'object' || options === null || Array.isArray(options)) {
        problems.push(`${name}: options must be an object`)
        return
      }
      const made = connectorFactories[type as ConnectorKind]({
        name,
        options: options as Record<string, unknown>,
        scope: scope === 'delta' ? 'delta' : 'full',
        baseDir: where.baseDir,
        env: where.env,
      })
      if (!made.ok) {
        for (const p of made.problems) problems.push(`${name}: options.${p}`)
        return
      }
      out.push({
        name,
        type: type as ConnectorKind,
        scope: made.connector.scope,
        ...(intervalMs === undefined ? {} : { intervalMs }),
        connector: made.connector,
      })
    })
  }
  if (problems.length > 0) {
    throw new TesseraError(
      'TSR_CONFIG',
      `sources file ${where.file}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n  ${problems.join('\n  ')}`}`,
      { details: { file: where.file, problems } },
    )
  }
  return out
}

/** `90s` is refused: anything more often than a minute would hammer a provider's API. */
export function parseInterval(value: unknown): number | undefined {
  if (typeof value === 'number')
    return Number.isInteger(value) && value >= 60 ? value * 1000 : undefined
  if (typeof value !== 'string') return undefined
  const m = /^(\d+)\s*(m|h|d)$/.exec(value.trim())
  if (!m) return undefined
  const ms = Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd']
  return ms >= 60_000 && Number.isSafeInteger(ms) ? ms : undefined
}

/** The sources to run: all of them, or those named (an unknown name is a usage error). */
export function selectSources(
  all: readonly SourceConfig[],
  names: readonly string[],
): SourceConfig[] {
  if (names.length === 0) return [...all]
  const byName = new Map(all.map((s) => [s.name, s]))
  const unknown = names.filter((n) => !byName.has(n))
  if (unknown.length > 0) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `no source named ${unknown.join(', ')} (configured: ${all.map((s) => s.name).join(', ') || 'none'})`,
    )
  }
  return names.map((n) => byName.get(n)!)
}
