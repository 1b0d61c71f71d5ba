import { request } from 'node:https'
import { Readable } from 'node:stream'

/**
 * A `fetch` that trusts the given CA certificates (PEM) for https, instead of the default roots:
 * how the agent reaches a control plane served under a private CA (`--trust-bundle`). Bodies stream
 * both ways like the global fetch's (the agent reads the entry stream as it arrives), and an abort
 * signal cancels the request. Plain http URLs go to the global fetch unchanged.
 */
export function createTlsFetch(options: { ca: string | Buffer }): typeof fetch {
  const tlsFetch = async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(input instanceof Request ? input.url : input.toString())
    if (url.protocol !== 'https:') return fetch(input, init)
    init.signal?.throwIfAborted()
    const headers: Record<string, string> = {}
    new Headers(init.headers).forEach((value, key) => {
      headers[key] = value
    })
    const body =
      init.body === undefined || init.body === null
        ? undefined
        : typeof init.body === 'string'
          ? Buffer.from(init.body)
          : init.body instanceof ArrayBuffer || ArrayBuffer.isView(init.body)
            ? Buffer.from(init.body as ArrayBuffer)
            : undefined
    if (init.body !== undefined && init.body !== null && body === undefined) {
      throw new TypeError('tls fetch: only string and byte bodies are supported')
    }
    if (body) headers['content-length'] = String(body.length)
    return new Promise<Response>((resolve, reject) => {
      const req = request(
        url,
        {
          method: init.method ?? 'GET',
          headers,
          ca: options.ca,
          ...(init.signal ? { signal: init.signal } : {}),
        },
        (res) => {
          const out = new Headers()
          for (const [key, value] of Object.entries(res.headers)) {
            if (Array.isArray(value)) for (const v of value) out.append(key, v)
            else if (value !== undefined) out.set(key, value)
          }
          const status = res.statusCode ?? 502
          const empty = status === 204 || status === 304 || init.method === 'HEAD'
          if (empty) res.resume()
          resolve(
            new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
              status,
              statusText: res.statusMessage ?? '',
              headers: out,
            }),
          )
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  }
  return tlsFetch as typeof fetch
}
