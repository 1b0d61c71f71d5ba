import { TesseraError } from '../../errors.js'

/** Collects every problem of a rotator configuration, then throws them all at once. */
export function configChecker(kind: string, config: unknown, known: readonly string[]) {
  const problems: string[] = []
  const obj: Record<string, unknown> =
    typeof config === 'object' && config !== null && !Array.isArray(config)
      ? (config as Record<string, unknown>)
      : (problems.push('must be an object'), {})
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) problems.push(`unknown field ${key}`)
  }
  const check = {
    string(name: string, opts: { optional?: boolean; pattern?: RegExp } = {}): string | undefined {
      const v = obj[name]
      if (v === undefined && opts.optional) return undefined
      if (typeof v !== 'string' || v === '') {
        problems.push(`${name} must be a non-empty string`)
        return undefined
      }
      if (opts.pattern && !opts.pattern.test(v)) {
        problems.push(`${name} must match ${opts.pattern.source}`)
        return undefined
      }
      return v
    },
    integer(name: string, min: number, max: number): number | undefined {
      const v = obj[name]
      if (v === undefined) return undefined
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        problems.push(`${name} must be an integer from ${min} to ${max}`)
        return undefined
      }
      return v
    },
    boolean(name: string): boolean | undefined {
      const v = obj[name]
      if (v === undefined) return undefined
      if (typeof v !== 'boolean') {
        problems.push(`${name} must be true or false`)
        return undefined
      }
      return v
    },
    url(name: string, protocols: readonly string[]): URL | undefined {
      const s = check.string(name)
      if (s === undefined) return undefined
      try {
        const u = new URL(s)
        if (!protocols.includes(u.protocol)) {
          problems.push(`${name} must be a ${protocols.join(' or ')} URL`)
          return undefined
        }
        return u
      } catch {
        problems.push(`${name} is not a URL`)
        return undefined
      }
    },
    problem(message: string) {
      problems.push(message)
    },
    done(): void {
      if (problems.length > 0) {
        throw new TesseraError(
          'TSR_VALIDATION',
          `rotator(${kind}): invalid config: ${problems.join('; ')}`,
          { details: { errors: problems } },
        )
      }
    },
  }
  return check
}
