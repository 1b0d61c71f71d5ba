import {
  createServer,
  type IncomingHttpHeaders,
  type RequestListener,
  type Server,
} from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'

export interface FakeRequest {
  method: string
  path: string
  query: URLSearchParams
  headers: IncomingHttpHeaders
  body: unknown
}

export interface FakeAnswer {
  status?: number
  body?: unknown
  headers?: Record<string, string>
}

/**
 * A provider API on a loopback port for the live-mode tests: a real HTTP server (the connector's
 * real client talks to it), answering from a handler and recording every request it saw.
 */
export interface FakeApi {
  url: string
  requests: FakeRequest[]
  close(): Promise<void>
}

export async function startFakeApi(
  handler: (req: FakeRequest, baseUrl: string) => FakeAnswer | undefined,
  options: { tls?: { key: Buffer; cert: Buffer } } = {},
): Promise<FakeApi> {
  const requests: FakeRequest[] = []
  let baseUrl = ''
  const listener: RequestListener = (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', baseUrl)
      const text = Buffer.concat(chunks).toString('utf8')
      const fake: FakeRequest = {
        method: req.method ?? 'GET',
        path: decodeURIComponent(url.pathname),
        query: url.searchParams,
        headers: req.headers,
        body: text === '' ? undefined : JSON.parse(text),
      }
      requests.push(fake)
      const answer = handler(fake, baseUrl) ?? { status: 404, body: { message: 'Not Found' } }
      res.writeHead(answer.status ?? 200, {
        'content-type': 'application/json',
        ...answer.headers,
      })
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body))
    })
  }
  const server: Server = options.tls
    ? createTlsServer(options.tls, listener)
    : createServer(listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const scheme = options.tls ? 'https' : 'http'
  baseUrl = `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url: baseUrl,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Serves `items` in pages of `per_page` with GitHub's Link header. */
export function linkPaged(
  req: FakeRequest,
  baseUrl: string,
  items: unknown[],
  wrap: (page: unknown[]) => unknown = (p) => p,
): FakeAnswer {
  const perPage = Number(req.query.get('per_page') ?? 30)
  const page = Number(req.query.get('page') ?? 1)
  const slice = items.slice((page - 1) * perPage, page * perPage)
  const headers: Record<string, string> = {}
  if (page * perPage < items.length) {
    const next = new URL(req.path, baseUrl)
    next.searchParams.set('per_page', String(perPage))
    next.searchParams.set('page', String(page + 1))
    headers.link = `<${next.href}>; rel="next", <${next.origin}${req.path}?page=1>; rel="first"`
  }
  return { body: wrap(slice), headers }
}
