import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { TesseraError } from '../../errors.js'

/**
 * A small JSON-over-HTTPS client for the connectors' live modes. Every provider API a connector
 * reads (GitHub, Vault, Kubernetes, GCP, Entra ID) is JSON over HTTPS with a bearer token; this
 * client adds what they all need: a private CA, a timeout, a response size cap, and errors that
 * name the URL and status but never the token or the response body (a body may hold a secret).
 */
export interface HttpClientOptions {
  /** Base URL; relative request paths resolve against it. */
  baseUrl: string
  /** Sent as `Authorization: <scheme> <token>`; never logged or put in an error. */
  token?: string
  /** `Bearer` unless the API wants another header (Vault: `X-Vault-Token`). */
  auth?: { scheme: 'bearer' } | { header: string }
  /** PEM CA certificates to trust instead of the default roots (a private cluster or Vault CA). */
  ca?: Buffer
  headers?: Record<string, string>
  timeoutMs?: number
  /** Largest response body accepted (default 64 MiB). */
  maxBytes?: number
  /** A token over plain http is refused unless the host is loopback or this is set. */
  allowInsecureHttp?: boolean
}

export interface HttpResponse {
  status: number
  headers: IncomingHttpHeaders
  body: unknown
  /** The URL answered (after resolving against the base URL). */
  url: string
}

export interface HttpJsonClient {
  readonly baseUrl: string
  /** GET (or another method) a path; non-2xx answers throw unless `okStatuses` lists them. */
  request(
    path: string,
    options?: {
      method?: string
      query?: Record<string, string | number | undefined>
      body?: unknown
      okStatuses?: number[]
    },
  ): Promise<HttpResponse>
}

const loopback = new Set(['localhost', '127.0.0.1', '::1', '[::1]'])

export function createHttpJsonClient(options: HttpClientOptions): HttpJsonClient {
  const base = parseBase(options.baseUrl)
  if (
    base.protocol === 'http:' &&
    options.token !== undefined &&
    !loopback.has(base.hostname) &&
    options.allowInsecureHttp !== true
  ) {
    throw new TesseraError(
      'TSR_CONFIG',
      `${base.origin}: refusing to send an API token over plain http (use https, or allowInsecureHttp for a test endpoint)`,
    )
  }
  const timeoutMs = options.timeoutMs ?? 30_000
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024
  return {
    baseUrl: base.href,
    request: (path, req = {}) => {
      const url = resolveUrl(base, path)
      for (const [k, v] of Object.entries(req.query ?? {})) {
        if (v !== undefined) url.searchParams.set(k, String(v))
      }
      const headers: Record<string, string> = {
        accept: 'application/json',
        'user-agent': 'tessera-discovery',
        ...options.headers,
      }
      if (options.token !== undefined) {
        const auth = options.auth ?? { scheme: 'bearer' }
        if ('header' in auth) headers[auth.header.toLowerCase()] = options.token
        else headers.authorization = `Bearer ${options.token}`
      }
      let payload: Buffer | undefined
      if (req.body !== undefined) {
        payload = Buffer.from(JSON.stringify(req.body))
        headers['content-type'] = 'application/json'
        headers['content-length'] = String(payload.length)
      }
      return send(url, req.method ?? 'GET', headers, payload, {
        ca: options.ca,
        timeoutMs,
        maxBytes,
        okStatuses: req.okStatuses ?? [],
      })
    },
  }
}

function parseBase(raw: string): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new TesseraError('TSR_CONFIG', `api: not a URL: ${JSON.stringify(raw.slice(0, 200))}`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TesseraError('TSR_CONFIG', `api: ${url.protocol} is not http or https`)
  }
  if (url.username !== '' || url.password !== '') {
    throw new TesseraError(
      'TSR_CONFIG',
      'api: credentials in the URL are not accepted; use tokenEnv',
    )
  }
  if (!url.pathname.endsWith('/')) url.pathname += '/'
  return url
}

/** A path relative to the base (`orgs/acme`), or an absolute URL on the same origin (next-page links). */
function resolveUrl(base: URL, path: string): URL {
  if (/^https?:\/\//i.test(path)) {
    const url = new URL(path)
    if (url.origin !== base.origin) {
      throw new TesseraError(
        'TSR_DISCOVERY_SOURCE',
        `${base.origin}: the API pointed to another origin (${url.origin}); not following it with the token`,
      )
    }
    return url
  }
  return new URL(path.replace(/^\/+/, ''), base)
}

function describe(url: URL): string {
  // Query strings may carry page cursors, never secrets; drop them anyway to keep messages short.
  return `${url.origin}${url.pathname}`
}

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  payload: Buffer | undefined,
  o: { ca: Buffer | undefined; timeoutMs: number; maxBytes: number; okStatuses: number[] },
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const fail = (reason: string, cause?: unknown) =>
      reject(
        new TesseraError('TSR_DISCOVERY_SOURCE', `${method} ${describe(url)}: ${reason}`, {
          ...(cause === undefined ? {} : { cause }),
          details: { url: describe(url) },
        }),
      )
    const requestFn = url.protocol === 'https:' ? httpsRequest : httpRequest
    const req = requestFn(
      url,
      { method, headers, ...(o.ca ? { ca: o.ca } : {}), timeout: o.timeoutMs },
      (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > o.maxBytes) {
            req.destroy()
            fail(`response larger than ${o.maxBytes} bytes`)
            return
          }
          chunks.push(chunk)
        })
        res.on('error', (err) => fail(`response failed: ${err.message}`, err))
        res.on('end', () => {
          const status = res.statusCode ?? 0
          const text = Buffer.concat(chunks).toString('utf8')
          const ok = (status >= 200 && status < 300) || o.okStatuses.includes(status)
          if (!ok) {
            fail(`HTTP ${status}${apiMessage(text)}`)
            return
          }
          let body: unknown = undefined
          if (text.trim() !== '') {
            try {
              body = JSON.parse(text)
            } catch (err) {
              fail(`HTTP ${status} with a body that is not JSON`, err)
              return
            }
          }
          resolve({ status, headers: res.headers, body, url: url.href })
        })
      },
    )
    req.on('timeout', () => {
      req.destroy()
      fail(`no answer within ${o.timeoutMs} ms`)
    })
    req.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message, err))
    if (payload) req.write(payload)
    req.end()
  })
}

/**
 * The API's own error text when it has a conventional one (`message`, `errors[]`, `error`), cut
 * short. Error bodies describe the request, not stored secrets, so a short excerpt is safe to show.
 */
function apiMessage(text: string): string {
  try {
    const body = JSON.parse(text) as Record<string, unknown>
    const candidates = [
      body.message,
      Array.isArray(body.errors) ? body.errors.join('; ') : undefined,
      typeof body.error === 'object' && body.error !== null
        ? (body.error as Record<string, unknown>).message
        : body.error,
    ]
    const m = candidates.find((c): c is string => typeof c === 'string' && c !== '')
    return m ? `: ${m.slice(0, 200)}` : ''
  } catch {
    return ''
  }
}
