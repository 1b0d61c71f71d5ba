import { TesseraError } from '../../../errors.js'
import { configChecker } from '../config-check.js'
import {
  defaultSleep,
  type CredentialVersion,
  type Rotator,
  type RotatorDeps,
  type RotatorModule,
} from '../rotator.js'

/**
 * Generic HTTP rotator: a webhook in another system does the work. Each step is one
 * `POST <url>` with a JSON body (docs/rotation.md, "HTTP rotator protocol"):
 *
 *   { "action": "create" | "verify" | "activate" | "revoke", "secret": NAME, "rotationId": UUID,
 *     "current"?: {meta}, "next"?: {value, meta}, "keep"?: {meta}, "drop"?: {meta},
 *     "graceUntil"?: ISO-8601 }
 *
 * with `Idempotency-Key: <rotationId>:<action>` and, when configured, `Authorization: Bearer
 * <token>`. A 2xx answers `{"value"?: string, "meta"?: object}` (`create` must return `value`).
 * 408, 429, 5xx and network errors are retried with exponential backoff; other 4xx fail at once.
 * Only `verify` is sent a secret value (the new one, to test); `create` receives none.
 */
export interface HttpRotatorConfig {
  url: string
  /** Bearer token the webhook expects. Secret. */
  token?: string
  /** Attempts per step (default 5). */
  attempts: number
  /** First backoff (default 200 ms), doubled each retry. */
  backoffMs: number
  /** Per-request timeout (default 10 s). */
  timeoutMs: number
}

export const httpRotatorModule: RotatorModule<HttpRotatorConfig> = {
  kind: 'http',
  secretFields: ['token'],
  parseConfig(config) {
    const c = configChecker('http', config, ['url', 'token', 'attempts', 'backoffMs', 'timeoutMs'])
    const url = c.url('url', ['http:', 'https:'])
    const token = c.string('token', { optional: true })
    const attempts = c.integer('attempts', 1, 20) ?? 5
    const backoffMs = c.integer('backoffMs', 0, 60_000) ?? 200
    const timeoutMs = c.integer('timeoutMs', 1, 300_000) ?? 10_000
    c.done()
    return {
      url: url!.toString(),
      ...(token === undefined ? {} : { token }),
      attempts,
      backoffMs,
      timeoutMs,
    }
  },
  create: createHttpRotator,
}

const metaOnly = (v: CredentialVersion | undefined) => (v ? { meta: v.meta } : undefined)

export function createHttpRotator(config: HttpRotatorConfig, deps: RotatorDeps): Rotator {
  const doFetch = deps.fetch ?? fetch
  const sleep = deps.sleep ?? defaultSleep

  async function call(
    action: string,
    rotationId: string,
    body: Record<string, unknown>,
  ): Promise<{ value?: unknown; meta?: unknown }> {
    let last = ''
    for (let attempt = 1; attempt <= config.attempts; attempt++) {
      if (attempt > 1) await sleep(config.backoffMs * 2 ** (attempt - 2))
      let res: Response
      try {
        res = await doFetch(config.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json',
            'idempotency-key': `${rotationId}:${action}`,
            ...(config.token ? { authorization: `Bearer ${config.token}` } : {}),
          },
          body: JSON.stringify({ action, rotationId, ...body }),
          signal: AbortSignal.timeout(config.timeoutMs),
        })
      } catch (err) {
        last = (err as Error).message
        continue
      }
      const text = await res.text().catch(() => '')
      if (res.ok) {
        if (text.trim() === '') return {}
        try {
          const parsed = JSON.parse(text) as unknown
          if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
            throw new Error('not an object')
          }
          return parsed as { value?: unknown; meta?: unknown }
        } catch {
          throw new TesseraError(
            'TSR_ROTATION_FAILED',
            `rotator(http): ${action}: the webhook answered ${res.status} with a body that is not a JSON object`,
          )
        }
      }
      // The body may echo what we sent; only the status goes into the message.
      last = `HTTP ${res.status}`
      if (res.status !== 408 && res.status !== 429 && res.status < 500) break
    }
    throw new TesseraError(
      'TSR_ROTATION_FAILED',
      `rotator(http): ${action}: the webhook failed (${last})`,
    )
  }

  return {
    kind: 'http',
    async create(ctx) {
      const out = await call('create', ctx.rotationId, {
        secret: ctx.secretName,
        ...(ctx.current ? { current: metaOnly(ctx.current) } : {}),
      })
      if (typeof out.value !== 'string' || out.value === '') {
        throw new TesseraError(
          'TSR_ROTATION_FAILED',
          'rotator(http): create: the webhook answered no "value"',
        )
      }
      const meta =
        typeof out.meta === 'object' && out.meta !== null && !Array.isArray(out.meta)
          ? (out.meta as Record<string, unknown>)
          : {}
      return { value: out.value, meta }
    },
    async verify(ctx, next) {
      await call('verify', ctx.rotationId, { secret: ctx.secretName, next })
    },
    async activate(ctx, next, graceUntil) {
      await call('activate', ctx.rotationId, {
        secret: ctx.secretName,
        next: metaOnly(next),
        graceUntil: graceUntil.toISOString(),
      })
    },
    async revoke(ctx, keep, drop) {
      await call('revoke', ctx.rotationId, {
        secret: ctx.secretName,
        ...(keep ? { keep: metaOnly(keep) } : {}),
        drop: metaOnly(drop),
      })
    },
  }
}
