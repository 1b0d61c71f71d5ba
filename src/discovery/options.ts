import { isAbsolute, resolve } from 'node:path'
import type { ConnectorConfig } from './connector.js'

/**
 * Reads a connector's `options` object, collecting every problem (SPIRE's pluginconf): unknown keys
 * are problems too, so a typo is never silently ignored.
 */
export class OptionReader {
  readonly problems: string[] = []
  private readonly seen = new Set<string>()

  private readonly config: ConnectorConfig
  constructor(config: ConnectorConfig) {
    this.config = config
  }

  private raw(key: string): unknown {
    this.seen.add(key)
    return this.config.options[key]
  }

  string(key: string, required: true): string
  string(key: string, required?: false): string | undefined
  string(key: string, required = false): string | undefined {
    const v = this.raw(key)
    if (v === undefined) {
      if (required) this.problems.push(`${key}: required`)
      return undefined
    }
    if (typeof v !== 'string' || v === '') {
      this.problems.push(`${key}: must be a non-empty string`)
      return undefined
    }
    return v
  }

  /** A file or directory path, resolved against the sources file's directory. */
  path(key: string, required: true): string
  path(key: string, required?: false): string | undefined
  path(key: string, required = false): string | undefined {
    const v = required ? this.string(key, true) : this.string(key)
    return v === undefined ? undefined : this.resolvePath(v)
  }

  /** One path or a list of them. */
  paths(key: string, required = false): string[] {
    const v = this.raw(key)
    if (v === undefined) {
      if (required) this.problems.push(`${key}: required`)
      return []
    }
    const list = typeof v === 'string' ? [v] : v
    if (!Array.isArray(list) || list.some((p) => typeof p !== 'string' || p === '')) {
      this.problems.push(`${key}: must be a path or a list of paths`)
      return []
    }
    return (list as string[]).map((p) => this.resolvePath(p))
  }

  strings(key: string): string[] {
    const v = this.raw(key)
    if (v === undefined) return []
    const list = typeof v === 'string' ? [v] : v
    if (!Array.isArray(list) || list.some((p) => typeof p !== 'string' || p === '')) {
      this.problems.push(`${key}: must be a string or a list of strings`)
      return []
    }
    return list as string[]
  }

  int(key: string, min: number, max: number): number | undefined {
    const v = this.raw(key)
    if (v === undefined) return undefined
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.problems.push(`${key}: must be a whole number from ${min} to ${max}`)
      return undefined
    }
    return v
  }

  boolean(key: string): boolean | undefined {
    const v = this.raw(key)
    if (v === undefined) return undefined
    if (typeof v !== 'boolean') {
      this.problems.push(`${key}: must be true or false`)
      return undefined
    }
    return v
  }

  /** Whether the options name this key (read or not). */
  has(key: string): boolean {
    return Object.hasOwn(this.config.options, key)
  }

  /** A secret given as the name of an environment variable (`passwordEnv: P12_PASSWORD`). */
  secretFromEnv(key: string): string | undefined {
    const name = this.string(key)
    if (name === undefined) return undefined
    const value = this.config.env[name]
    if (value === undefined) {
      this.problems.push(`${key}: environment variable ${name} is not set`)
      return undefined
    }
    return value
  }

  resolvePath(p: string): string {
    return isAbsolute(p) ? p : resolve(this.config.baseDir, p)
  }

  /** Problems, plus one per option key never read. */
  finish(): string[] {
    for (const key of Object.keys(this.config.options)) {
      if (!this.seen.has(key)) this.problems.push(`${key}: unknown option`)
    }
    return this.problems
  }
}
