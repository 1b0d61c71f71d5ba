import { TesseraError } from '../errors.js'
import { eventJson, type ChainedEvent } from './chain.js'
import type { EventObserver, StoredAuditEvent } from './event-sink.js'

export interface WebhookSinkOptions {
  /** Where batches are POSTed as `{"events": [...]}` (application/json). */
  url: string
  /** Extra headers (e.g. the SIEM's authorization). Never logged. */
  headers?: Record<string, string>
  fetch?: typeof fetch
  /** Events per POST (default 500). */
  batchSize?: number
  /** Attempts per batch after the first (default 5). */
  retries?: number
  /** First backoff, doubled per attempt with jitter (default 250 ms), capped at `maxBackoffMs`. */
  backoffMs?: number
  maxBackoffMs?: number
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number
  /** Events held while the SIEM is away; the oldest are dropped beyond it (default 100,000). */
  maxBuffer?: number
  sleep?: (ms: number) => Promise<void>
  random?: () => number
  /** A batch given up on (after the retries, or refused with a 4xx), or events dropped. */
  onError?: (err: TesseraError, droppedEvents: number) => void
}

export interface WebhookSink extends EventObserver {
  /** Resolves when everything observed so far was delivered or given up on. */
  flush(): Promise<void>
  /** Counts so far. */
  stats(): { delivered: number; failed: number; attempts: number }
}

/**
 * Sends audit events to a SIEM's HTTP collector. As an EventObserver it returns at once and posts
 * in the background, in order, one batch at a time; a batch that fails with a network error, a
 * 429 or a 5xx is retried with exponential backoff (honouring Retry-After), a 4xx is given up on.
 */
export function createWebhookSink(options: WebhookSinkOptions): WebhookSink {
  const url = checkUrl(options.url)
  const doFetch = options.fetch ?? fetch
  const batchSize = options.batchSize ?? 500
  const retries = options.retries ?? 5
  const backoffMs = options.backoffMs ?? 250
  const maxBackoffMs = options.maxBackoffMs ?? 30_000
  const timeoutMs = options.timeoutMs ?? 10_000
  const maxBuffer = options.maxBuffer ?? 100_000
  const sleep = options.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)))
  const random = options.random ?? Math.random
  const queue: StoredAuditEvent[] = []
  const stats = { delivered: 0, failed: 0, attempts: 0 }
  let running: Promise<void> | undefined

  async function post(batch: StoredAuditEvent[]): Promise<void> {
    const body = JSON.stringify({ events: batch.map((e) => eventJson(e as ChainedEvent)) })
    let lastError = ''
    for (let attempt = 0; attempt <= retries; attempt++) {
      stats.attempts++
      let wait = Math.min(maxBackoffMs, backoffMs * 2 ** attempt) * (0.5 + random() / 2)
      try {
        const res = await doFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...options.headers },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        })
        await res.body?.cancel().catch(() => {})
        if (res.ok) {
          stats.delivered += batch.length
          return
        }
        lastError = `HTTP ${res.status}`
        if (res.status !== 429 && res.status < 500) break
        const retryAfter = Number(res.headers.get('retry-after'))
        if (Number.isFinite(retryAfter) && retryAfter > 0) {
          wait = Math.min(maxBackoffMs, retryAfter * 1000)
        }
      } catch (err) {
        lastError = (err as Error).message
      }
      if (attempt < retries) await sleep(wait)
    }
    stats.failed += batch.length
    options.onError?.(
      new TesseraError(
        'TSR_CLIENT_HTTP',
        `the audit webhook ${redact(url)} did not take ${batch.length} event(s): ${lastError}`,
      ),
      batch.length,
    )
  }

  async function run(): Promise<void> {
    try {
      while (queue.length > 0) await post(queue.splice(0, batchSize))
    } finally {
      running = undefined
    }
  }

  return {
    observe(events) {
      for (const e of events) queue.push(e)
      if (queue.length > maxBuffer) {
        const dropped = queue.splice(0, queue.length - maxBuffer).length
        stats.failed += dropped
        options.onError?.(
          new TesseraError(
            'TSR_CLIENT_HTTP',
            `the audit webhook buffer is full: dropped the ${dropped} oldest event(s)`,
          ),
          dropped,
        )
      }
      running ??= run()
    },
    async flush() {
      while (running !== undefined) await running
    },
    stats: () => ({ ...stats }),
  }
}

function checkUrl(text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new TesseraError('TSR_VALIDATION', `webhook: ${JSON.stringify(text)} is not a URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TesseraError('TSR_VALIDATION', 'webhook: the URL must be http(s)')
  }
  return url
}

function redact(url: URL): string {
  return url.origin + url.pathname
}
