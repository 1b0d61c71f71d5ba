import type { Responder } from '../responder.js'

export interface NotifyResponderDeps {
  /** The webhook: http(s) URL that receives a JSON POST per firing. */
  url: string
  fetch?: typeof fetch
  /** Attempts after the first (default 3), with doubling delay from `backoffMs` (default 500). */
  retries?: number
  backoffMs?: number
  timeoutMs?: number
  sleep?: (ms: number) => Promise<void>
  name?: string
  /** Extra headers, e.g. an authorization header for the receiver (never logged). */
  headers?: Record<string, string>
}

/**
 * `notify`: POSTs the anomaly to a webhook (chat, pager, SIEM). A 2xx answer is done; a network
 * error, 5xx or 429 is retried with exponential backoff; another 4xx fails at once.
 */
export function createNotifyResponder(deps: NotifyResponderDeps): Responder {
  const url = new URL(deps.url)
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new Error(`responder(notify): url must be http(s), not ${url.protocol}`)
  }
  const doFetch = deps.fetch ?? fetch
  const retries = deps.retries ?? 3
  const backoff = deps.backoffMs ?? 500
  const timeout = deps.timeoutMs ?? 5000
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)))
  return {
    kind: 'notify',
    name: deps.name ?? 'notify',
    async respond(anomaly) {
      const body = JSON.stringify({
        type: 'tessera.anomaly',
        identity: anomaly.identity,
        score: Number(anomaly.score.toFixed(3)),
        explanation: anomaly.explanation,
        reasons: anomaly.reasons,
        event: anomaly.event,
        finding: anomaly.findingKey,
      })
      let last = ''
      for (let attempt = 0; attempt <= retries; attempt++) {
        if (attempt > 0) await sleep(backoff * 2 ** (attempt - 1))
        try {
          const res = await doFetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...deps.headers },
            body,
            signal: AbortSignal.timeout(timeout),
          })
          await res.arrayBuffer().catch(() => undefined)
          if (res.ok) return { status: 'done', data: { status: res.status, attempts: attempt + 1 } }
          last = `HTTP ${res.status}`
          if (res.status < 500 && res.status !== 429) break
        } catch (err) {
          last = (err as Error).message
        }
      }
      return { status: 'failed', detail: `webhook ${url.origin}: ${last}` }
    },
  }
}
