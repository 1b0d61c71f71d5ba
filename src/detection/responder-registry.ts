import { TesseraError } from '../errors.js'
import type { RevocationList } from '../lifecycle/revocations.js'
import type { Clock } from '../runtime/clock.js'
import type { Store } from '../store/store.js'
import type { Responder, ResponderKind } from './responder.js'
import { createDisableResponder } from './responders/disable.js'
import { createNotifyResponder } from './responders/notify.js'
import { createQuarantineResponder } from './responders/quarantine.js'
import { createRevokeResponder } from './responders/revoke.js'

/** What built-in responders may need; each takes only its part. */
export interface ResponderDeps {
  store: Pick<Store, 'transaction'>
  revocations: Pick<RevocationList, 'add'>
  clock: Clock
  fetch?: typeof fetch
  sleep?: (ms: number) => Promise<void>
}

type Factory = (
  name: string,
  config: Record<string, unknown>,
  deps: ResponderDeps,
  problems: string[],
) => Responder | undefined

const num = (v: unknown, field: string, problems: string[]): number | undefined => {
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    problems.push(`${field} must be a non-negative number`)
    return undefined
  }
  return v
}

/** Every built-in, so a new kind fails to compile until it is registered. */
export const responderFactories = {
  notify: (name, c, deps, problems) => {
    if (typeof c.url !== 'string') {
      problems.push(`responders.${name}.url is required (the webhook)`)
      return undefined
    }
    try {
      const retries = num(c.retries, `responders.${name}.retries`, problems)
      const backoffMs = num(c.backoffMs, `responders.${name}.backoffMs`, problems)
      const timeoutMs = num(c.timeoutMs, `responders.${name}.timeoutMs`, problems)
      return createNotifyResponder({
        url: c.url,
        name,
        ...(retries !== undefined ? { retries } : {}),
        ...(backoffMs !== undefined ? { backoffMs } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        ...(deps.fetch ? { fetch: deps.fetch } : {}),
        ...(deps.sleep ? { sleep: deps.sleep } : {}),
      })
    } catch (err) {
      problems.push(`responders.${name}.url: ${(err as Error).message}`)
      return undefined
    }
  },
  disable: (name, _c, deps) =>
    createDisableResponder({ store: deps.store, clock: deps.clock, name }),
  quarantine: (name, _c, deps) =>
    createQuarantineResponder({ store: deps.store, clock: deps.clock, name }),
  revoke: (name, c, deps, problems) => {
    const ttlSeconds = num(c.ttlSeconds, `responders.${name}.ttlSeconds`, problems)
    return createRevokeResponder({
      revocations: deps.revocations,
      clock: deps.clock,
      name,
      ...(ttlSeconds !== undefined ? { ttlMs: ttlSeconds * 1000 } : {}),
    })
  },
} satisfies Record<ResponderKind, Factory>

/**
 * Builds the responders a config names: `{ <name>: { kind?, …options } }`, the kind defaulting to
 * the name (`notify: { url }` or `pager: { kind: notify, url }`). Problems are thrown together.
 */
export function createResponders(config: unknown, deps: ResponderDeps): Responder[] {
  const problems: string[] = []
  const out: Responder[] = []
  if (
    config !== undefined &&
    (typeof config !== 'object' || config === null || Array.isArray(config))
  ) {
    throw new TesseraError(
      'TSR_CONFIG',
      'detection config: responders must be a map of name → options',
    )
  }
  for (const [name, raw] of Object.entries((config ?? {}) as Record<string, unknown>)) {
    const c = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {}
    const kind = (typeof c.kind === 'string' ? c.kind : name) as ResponderKind
    const factory = (responderFactories as Record<string, Factory>)[kind]
    if (!factory) {
      problems.push(
        `responders.${name}: unknown kind ${JSON.stringify(kind)} (notify, disable, revoke, quarantine)`,
      )
      continue
    }
    const r = factory(name, c, deps, problems)
    if (r) out.push(r)
  }
  if (problems.length > 0) {
    throw new TesseraError('TSR_CONFIG', `detection config: ${problems.join('; ')}`, {
      details: { problems },
    })
  }
  return out
}
