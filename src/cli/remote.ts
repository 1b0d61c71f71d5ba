import { errorCatalog, TesseraError, type TesseraErrorCode } from '../errors.js'
import type {
  Graph,
  IdentityDetail,
  IdentityFilter,
  IdentitySummary,
  IngestOptions,
  IngestResult,
  Inventory,
  NeighbourhoodOptions,
  Page,
  RunSummary,
} from '../inventory/inventory-types.js'
import type { Observation } from '../inventory/observation.js'
import type {
  RevocationInput,
  RevocationListOptions,
  RevocationPage,
  RevocationView,
} from '../lifecycle/revocations.js'
import type { FederationInput, FederationView, PollOutcome } from '../federation/federation.js'
import type { TokenScope } from '../store/schema.js'

/** An API token as listed (never its secret or hash). */
export interface TokenInfo {
  id: string
  name: string
  scopes: TokenScope[]
  createdAt?: string | null
  expiresAt?: string | null
  lastUsedAt?: string | null
  revokedAt?: string | null
}

/** A token just created: `token` is the secret, shown this once. */
export interface CreatedToken extends TokenInfo {
  token: string
}

export interface CreateTokenInput {
  name: string
  scopes: TokenScope[]
  ttlSeconds?: number
}

/** Managing API tokens, the same over HTTP or directly on a store. */
export interface TokenAdmin {
  create(input: CreateTokenInput): Promise<CreatedToken>
  list(): Promise<TokenInfo[]>
  revoke(id: string): Promise<void>
}

/** The deny-list, the same over HTTP or directly on a store. */
export interface RevocationAdmin {
  add(input: Omit<RevocationInput, 'createdBy'>): Promise<RevocationView>
  list(options?: RevocationListOptions): Promise<RevocationPage>
}

/** Federation relationships, the same over HTTP or directly on a store. */
export interface FederationAdmin {
  add(input: Omit<FederationInput, 'createdBy'>): Promise<FederationView>
  list(): Promise<FederationView[]>
  get(trustDomain: string): Promise<FederationView | undefined>
  remove(trustDomain: string): Promise<void>
  refresh(trustDomain: string): Promise<PollOutcome>
}

export interface RemoteClient {
  readonly baseUrl: string
  readonly inventory: Inventory
  readonly tokens: TokenAdmin
  readonly revocations: RevocationAdmin
  readonly federation: FederationAdmin
  /** Raw JSON calls with this client's token and error mapping (other nouns' clients). */
  readonly http: RemoteHttp
}

export interface RemoteHttp {
  json<T>(
    method: string,
    path: string,
    init?: { query?: Record<string, string | undefined>; body?: unknown },
  ): Promise<T>
}

export interface RemoteClientOptions {
  /** Server base URL, e.g. `http://127.0.0.1:8750`. */
  server: string
  token?: string
  fetch?: typeof fetch
}

/**
 * The `Inventory` (and token admin) over the REST API. Problem+json errors become TesseraErrors with
 * the server's code; a server that cannot be reached is TSR_CLIENT_HTTP.
 */
export function createRemoteClient(options: RemoteClientOptions): RemoteClient {
  const baseUrl = normaliseServerUrl(options.server)
  const doFetch = options.fetch ?? fetch

  async function request(
    method: string,
    path: string,
    init: { query?: Record<string, string | undefined>; body?: unknown } = {},
  ): Promise<Response> {
    const url = new URL(path, baseUrl + '/')
    for (const [k, v] of Object.entries(init.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, v)
    }
    const headers: Record<string, string> = { accept: 'application/json' }
    if (options.token) headers.authorization = `Bearer ${options.token}`
    if (init.body !== undefined) headers['content-type'] = 'application/json'
    let res: Response
    try {
      res = await doFetch(url, {
        method,
        headers,
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      })
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause
      const why = cause?.code ?? cause?.message ?? (err as Error).message
      throw new TesseraError('TSR_CLIENT_HTTP', `cannot reach server at ${baseUrl} (${why})`, {
        cause: err,
      })
    }
    if (!res.ok) throw await problemToError(res, method, url)
    return res
  }

  async function json<T>(
    method: string,
    path: string,
    init?: { query?: Record<string, string | undefined>; body?: unknown },
  ): Promise<T> {
    const res = await request(method, path, init)
    try {
      return (await res.json()) as T
    } catch (err) {
      throw new TesseraError(
        'TSR_CLIENT_HTTP',
        `the server sent an unreadable response to ${method} ${path}`,
        {
          cause: err,
        },
      )
    }
  }

  /** GET that maps a 404 to undefined. */
  async function maybe<T>(
    path: string,
    query: Record<string, string | undefined>,
  ): Promise<T | undefined> {
    try {
      return await json<T>('GET', path, { query })
    } catch (err) {
      if (err instanceof TesseraError && err.code === 'TSR_NOT_FOUND') return undefined
      throw err
    }
  }

  const inventory: Inventory = {
    ingest(observations: readonly Observation[], opts?: IngestOptions): Promise<IngestResult> {
      return json('POST', 'v1/observations', {
        body: { observations, ...(opts?.runs ? { runs: opts.runs } : {}) },
      })
    },
    startRun(source, scope): Promise<RunSummary> {
      return json('POST', 'v1/runs', { body: { source, scope } })
    },
    finishRun(runId, outcome, counts): Promise<RunSummary> {
      return json('POST', `v1/runs/${encodeURIComponent(runId)}/finish`, {
        body: {
          ...(outcome === undefined ? {} : { outcome }),
          ...(counts === undefined ? {} : { counts }),
        },
      })
    },
    listIdentities(filter: IdentityFilter = {}): Promise<Page<IdentitySummary>> {
      return json('GET', 'v1/identities', {
        query: {
          kind: filter.kind,
          source: filter.source,
          owner: filter.owner,
          state: filter.state,
          unusedSince: filter.unusedSince?.toISOString(),
          expiresBefore: filter.expiresBefore?.toISOString(),
          q: filter.q,
          at: filter.at?.toISOString(),
          limit: filter.limit === undefined ? undefined : String(filter.limit),
          cursor: filter.cursor,
        },
      })
    },
    getIdentity(idOrRef, at): Promise<IdentityDetail | undefined> {
      return maybe(`v1/identities/${encodeURIComponent(idOrRef)}`, { at: at?.toISOString() })
    },
    neighbourhood(idOrRef, opts: NeighbourhoodOptions = {}): Promise<Graph | undefined> {
      return maybe('v1/graph', {
        node: idOrRef,
        depth: opts.depth === undefined ? undefined : String(opts.depth),
        at: opts.at?.toISOString(),
        edgeTypes: opts.edgeTypes?.length ? opts.edgeTypes.join(',') : undefined,
        limit: opts.limit === undefined ? undefined : String(opts.limit),
      })
    },
    exportObservations(opts?: { at?: Date }): AsyncIterable<Observation> {
      return (async function* () {
        const res = await request('GET', 'v1/export', { query: { at: opts?.at?.toISOString() } })
        if (!res.body) return
        for await (const line of ndjsonLines(res.body)) yield JSON.parse(line) as Observation
      })()
    },
    stats(): Promise<Record<string, number>> {
      return json('GET', 'v1/stats')
    },
  }

  const tokens: TokenAdmin = {
    create(input) {
      return json('POST', 'v1/tokens', { body: input })
    },
    async list() {
      const body = await json<TokenInfo[] | { items: TokenInfo[] }>('GET', 'v1/tokens')
      return Array.isArray(body) ? body : body.items
    },
    async revoke(id) {
      await request('DELETE', `v1/tokens/${encodeURIComponent(id)}`)
    },
  }

  const revocations: RevocationAdmin = {
    add(input) {
      return json('POST', 'v1/revocations', {
        body: {
          targetType: input.targetType,
          value: input.value,
          ...(input.reason === undefined ? {} : { reason: input.reason }),
          ...(input.expiresAt === undefined ? {} : { expiresAt: input.expiresAt.toISOString() }),
        },
      })
    },
    list(opts = {}) {
      return json('GET', 'v1/revocations', {
        query: {
          after: opts.after === undefined ? undefined : String(opts.after),
          includeExpired: opts.includeExpired ? 'true' : undefined,
          limit: opts.limit === undefined ? undefined : String(opts.limit),
        },
      })
    },
  }

  const td = (trustDomain: string) => `v1/federation/${encodeURIComponent(trustDomain)}`
  const federation: FederationAdmin = {
    add: (input) => json('POST', 'v1/federation', { body: input }),
    async list() {
      return (await json<{ items: FederationView[] }>('GET', 'v1/federation')).items
    },
    get: (trustDomain) => maybe(td(trustDomain), {}),
    async remove(trustDomain) {
      await request('DELETE', td(trustDomain))
    },
    refresh: (trustDomain) => json('POST', td(trustDomain) + '/refresh', { body: {} }),
  }

  return { baseUrl, inventory, tokens, revocations, federation, http: { json } }
}

/** Checks and normalises `--server`: http(s) only, no credentials in it, no trailing slash. */
export function normaliseServerUrl(server: string): string {
  let url: URL
  try {
    url = new URL(server)
  } catch {
    throw new TesseraError('TSR_VALIDATION', `--server: ${JSON.stringify(server)} is not a URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TesseraError('TSR_VALIDATION', `--server: ${JSON.stringify(server)} must be http(s)`)
  }
  if (url.username || url.password) {
    throw new TesseraError(
      'TSR_VALIDATION',
      '--server: put the token in --token or TESSERA_TOKEN, not in the URL',
    )
  }
  return url.origin + url.pathname.replace(/\/+$/, '')
}

/** True when a bearer token would cross the network in the clear (http to a non-loopback host). */
export function isInsecureRemote(baseUrl: string): boolean {
  const url = new URL(baseUrl)
  if (url.protocol === 'https:') return false
  const host = url.hostname.replace(/^\[|\]$/g, '')
  return !(host === 'localhost' || host === '::1' || host.startsWith('127.'))
}

async function problemToError(res: Response, method: string, url: URL): Promise<TesseraError> {
  const where = `${method} ${url.pathname}`
  let body: Record<string, unknown> | undefined
  const text = await res.text().catch(() => '')
  try {
    const parsed: unknown = JSON.parse(text)
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      body = parsed as Record<string, unknown>
    }
  } catch {
    // not JSON: a proxy's HTML page or similar
  }
  const code = typeof body?.code === 'string' ? body.code : undefined
  const detail =
    typeof body?.detail === 'string'
      ? body.detail
      : typeof body?.title === 'string'
        ? body.title
        : `${res.status} ${res.statusText}`.trim()
  const details: Record<string, unknown> = { status: res.status }
  if (typeof body?.requestId === 'string') details.requestId = body.requestId
  if (Array.isArray(body?.errors)) details.errors = body.errors
  if (code !== undefined && code in errorCatalog) {
    return new TesseraError(code as TesseraErrorCode, detail, { details })
  }
  return new TesseraError(
    'TSR_CLIENT_HTTP',
    `server answered ${res.status} to ${where}: ${detail}`,
    {
      details,
    },
  )
}

/** Splits an NDJSON byte stream into non-empty lines. */
export async function* ndjsonLines(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder()
  let buffered = ''
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true })
    let start = 0
    let nl: number
    while ((nl = buffered.indexOf('\n', start)) >= 0) {
      const line = buffered.slice(start, nl).trim()
      start = nl + 1
      if (line) yield line
    }
    buffered = buffered.slice(start)
  }
  buffered += decoder.decode()
  if (buffered.trim()) yield buffered.trim()
}
