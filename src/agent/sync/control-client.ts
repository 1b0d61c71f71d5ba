import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto'
import type { DeliveredSecret } from '../../workload-api/secrets-service.js'
import { SignJWT } from 'jose'
import type { JwtSvidResult, X509SvidResult } from '../../ca/ca-types.js'
import type { AgentNodeAttestor } from '../../attestation/node-attestor.js'
import { errorCatalog, TesseraError, type TesseraErrorCode } from '../../errors.js'
import { systemClock, type Clock } from '../../runtime/clock.js'
import type { RegistrationEntry, Revocation, TrustBundle } from '../../spiffe/types.js'
import type { AgentControlPort } from '../agent-ports.js'

/**
 * The node agent's side of the agent API: implements AgentControlPort over HTTP.
 *
 * - Attests with the configured node attestor, for a key pair it makes itself (the private key
 *   never leaves the process), and renews its SVID at half its lifetime.
 * - Keeps the entry map current from the server's NDJSON delta stream; reconnects with jittered
 *   exponential backoff, resuming from the last revision. While the server is away the cached
 *   entries and bundle stay, and `connected()` is false.
 * - When its SVID can no longer be renewed (expired while the server was away, replaced), it
 *   attests again in process, with fresh evidence, if its attestor allows (join tokens do not).
 * - Every call carries a proof signed with the agent SVID key (docs/attestation.md).
 */
export interface AgentControlClientOptions {
  serverUrl: string
  attestor: AgentNodeAttestor
  fetch?: typeof fetch
  clock?: Clock
  /** Reconnect backoff (default 250 ms doubling to 30 s, ±20% jitter). */
  backoff?: { initialMs?: number; maxMs?: number }
  /**
   * How often the deny-list is polled (default 1 s; public and incremental, so each poll is one
   * small request). Revocations reach the agent's workloads within this plus one stream push.
   */
  revocationPollMs?: number
  /** How often federated trust domains' bundles are fetched (default 30 s; they change at their refresh hint). */
  federatedPollMs?: number
  /** A stream silent this long is considered dead (default 45 s; the server beats every 15 s). */
  staleAfterMs?: number
  random?: () => number
  /** Observability hook: attested, renewed, reattested, connected, disconnected, error. */
  onEvent?: (event: AgentClientEvent) => void
}

export type AgentClientEvent =
  | { type: 'attested' | 'reattested' | 'renewed'; spiffeId: string; notAfter: Date }
  | { type: 'connected'; revision: number }
  | { type: 'disconnected'; error: string }

export interface AgentControlClient extends AgentControlPort {
  /** Attests and opens the stream; resolves once the first sync arrived. */
  start(): Promise<void>
  stop(): Promise<void>
  /** The agent's SPIFFE ID once attested. */
  spiffeId(): string | undefined
  /** The entry revision the client has applied. */
  revision(): number
  /** A managed secret's value for a SPIFFE ID this agent serves (docs/rotation.md). */
  secret(name: string, spiffeId: string): Promise<DeliveredSecret>
}

interface AgentSvid {
  spiffeId: string
  certChain: Buffer[]
  key: KeyObject
  serial: string
  notBefore: Date
  notAfter: Date
}

interface SvidJson {
  spiffeId: string
  certChain: string[]
  serial: string
  notBefore: string
  notAfter: string
}

type EntryJson = Omit<RegistrationEntry, 'expiresAt'> & { expiresAt?: string }

interface BundleJson {
  trustDomain: string
  x509Authorities: string[]
  jwtAuthorities: { kid: string; publicKey: Record<string, unknown>; expiresAt?: string }[]
  sequence: number
  refreshHintSeconds: number
}

export function entryFromJson(e: EntryJson): RegistrationEntry {
  const { expiresAt, ...rest } = e
  return { ...rest, ...(expiresAt ? { expiresAt: new Date(expiresAt) } : {}) }
}

function svidFromJson(s: SvidJson): X509SvidResult {
  return {
    spiffeId: s.spiffeId,
    certChain: s.certChain.map((c) => Buffer.from(c, 'base64')),
    serial: s.serial,
    notBefore: new Date(s.notBefore),
    notAfter: new Date(s.notAfter),
  }
}

function bundleFromJson(b: BundleJson): TrustBundle {
  return {
    trustDomain: b.trustDomain,
    x509Authorities: b.x509Authorities.map((c) => Buffer.from(c, 'base64')),
    jwtAuthorities: b.jwtAuthorities.map((a) => ({
      kid: a.kid,
      publicKey: a.publicKey,
      ...(a.expiresAt ? { expiresAt: new Date(a.expiresAt) } : {}),
    })),
    sequence: b.sequence,
    refreshHintSeconds: b.refreshHintSeconds,
  }
}

const abortable = (signal: AbortSignal, ms: number) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(t)
      resolve()
    })
  })

export function createAgentControlClient(options: AgentControlClientOptions): AgentControlClient {
  const base = options.serverUrl.replace(/\/+$/, '')
  const doFetch = options.fetch ?? fetch
  const clock = options.clock ?? systemClock
  const random = options.random ?? Math.random
  const initialBackoff = options.backoff?.initialMs ?? 250
  const maxBackoff = options.backoff?.maxMs ?? 30_000
  const staleAfterMs = options.staleAfterMs ?? 45_000
  const emit = (e: AgentClientEvent) => options.onEvent?.(e)

  const entries = new Map<string, RegistrationEntry>()
  const bundles = new Map<string, TrustBundle>()
  const listeners = new Set<(what: 'entries' | 'bundles' | 'revocations') => void>()
  let svid: AgentSvid | undefined
  let revision = 0
  let isConnected = false
  let lifecycle: AbortController | undefined
  let loop: Promise<void> | undefined
  let firstSync: { resolve: () => void; reject: (err: unknown) => void } | undefined
  let renewing: Promise<void> | undefined
  const revoked = new Map<number, Revocation>()
  let revocationCursor = 0
  let revocationLoop: Promise<void> | undefined
  const revocationPollMs = options.revocationPollMs ?? 1000
  const federatedPollMs = options.federatedPollMs ?? 30_000
  let lastFederatedPoll = Number.NEGATIVE_INFINITY

  const notify = (what: 'entries' | 'bundles' | 'revocations') => {
    for (const l of listeners) {
      try {
        l(what)
      } catch {
        // a listener's failure is its own
      }
    }
  }

  function newKey() {
    return generateKeyPairSync('ec', { namedCurve: 'P-256' })
  }

  async function problem(res: Response, what: string): Promise<TesseraError> {
    let body: { code?: string; detail?: string } = {}
    try {
      body = (await res.json()) as typeof body
    } catch {
      // not a problem document
    }
    const code =
      body.code && body.code in errorCatalog ? (body.code as TesseraErrorCode) : 'TSR_CLIENT_HTTP'
    return new TesseraError(code, `${what}: ${body.detail ?? `${res.status} ${res.statusText}`}`, {
      details: { status: res.status },
    })
  }

  async function proof(method: string, pathAndQuery: string): Promise<string> {
    const current = svid
    if (!current) throw new TesseraError('TSR_AGENT_UNAUTHENTICATED', 'the agent is not attested')
    return new SignJWT({ htm: method, htu: pathAndQuery, jti: randomUUID() })
      .setProtectedHeader({
        alg: 'ES256',
        typ: 'tessera-agent+jwt',
        x5c: current.certChain.map((c) => c.toString('base64')),
      })
      .setIssuedAt(Math.floor(clock.now().getTime() / 1000))
      .sign(current.key)
  }

  async function send(
    method: string,
    pathAndQuery: string,
    body: unknown,
    init: { auth: boolean; signal?: AbortSignal },
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (init.auth) headers.authorization = `Bearer ${await proof(method, pathAndQuery)}`
    let res: Response
    try {
      res = await doFetch(base + pathAndQuery, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(init.signal ? { signal: init.signal } : {}),
      })
    } catch (err) {
      throw new TesseraError(
        'TSR_CLIENT_HTTP',
        `cannot reach ${base} (${(err as Error).message})`,
        {
          cause: err,
        },
      )
    }
    if (!res.ok) throw await problem(res, `${method} ${pathAndQuery.split('?')[0]}`)
    return res
  }

  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await send(method, path, body, { auth: true })
    return (await res.json()) as T
  }

  function adopt(s: SvidJson, key: KeyObject): AgentSvid {
    const parsed = svidFromJson(s)
    return { ...parsed, key }
  }

  async function attest(again: boolean): Promise<void> {
    const { publicKey, privateKey } = newKey()
    const publicKeyDer = publicKey.export({ type: 'spki', format: 'der' })
    const evidence = await options.attestor.evidence()
    const request = {
      attestationType: options.attestor.type,
      evidence,
      publicKey: publicKeyDer.toString('base64'),
    }
    let res = (await (await send('POST', '/v1/agent/attest', request, { auth: false })).json()) as
      { challenge: unknown } | { svid: SvidJson; bundle: BundleJson }
    if ('challenge' in res) {
      if (!options.attestor.answer) {
        throw new TesseraError(
          'TSR_ATTESTATION_FAILED',
          'the server sent a challenge this attestor cannot answer',
        )
      }
      const challengeResponse = await options.attestor.answer(res.challenge, publicKeyDer)
      res = (await (
        await send('POST', '/v1/agent/attest', { ...request, challengeResponse }, { auth: false })
      ).json()) as typeof res
      if ('challenge' in res) {
        throw new TesseraError('TSR_ATTESTATION_FAILED', 'the server asked for a second challenge')
      }
    }
    svid = adopt(res.svid, privateKey)
    setBundle(bundleFromJson(res.bundle))
    emit({
      type: again ? 'reattested' : 'attested',
      spiffeId: svid.spiffeId,
      notAfter: svid.notAfter,
    })
  }

  function setBundle(b: TrustBundle) {
    const old = bundles.get(b.trustDomain)
    if (old && old.sequence === b.sequence) return
    bundles.set(b.trustDomain, b)
    notify('bundles')
  }

  async function renew(): Promise<void> {
    const { publicKey, privateKey } = newKey()
    const res = await call<{ svid: SvidJson }>('POST', '/v1/agent/renew', {
      publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    })
    svid = adopt(res.svid, privateKey)
    emit({ type: 'renewed', spiffeId: svid.spiffeId, notAfter: svid.notAfter })
  }

  /** Renews at half life; if the SVID is no longer usable, attests again where allowed. */
  async function ensureIdentity(): Promise<void> {
    if (!svid) return attest(false)
    const now = clock.now().getTime()
    const half = svid.notBefore.getTime() + (svid.notAfter.getTime() - svid.notBefore.getTime()) / 2
    if (now < half) return
    renewing ??= (async () => {
      try {
        if (now < svid!.notAfter.getTime()) {
          try {
            await renew()
            return
          } catch (err) {
            if (!(err instanceof TesseraError) || err.code === 'TSR_CLIENT_HTTP') throw err
            if (err.code === 'TSR_AGENT_BANNED') throw err
          }
        }
        // Expired, or the server no longer accepts this SVID.
        if (!options.attestor.canReattest) {
          throw new TesseraError(
            'TSR_AGENT_UNAUTHENTICATED',
            `the agent SVID can no longer be renewed and ${options.attestor.type} cannot attest again; give the agent new evidence`,
          )
        }
        await attest(true)
      } finally {
        renewing = undefined
      }
    })()
    return renewing
  }

  function apply(line: Record<string, unknown>): void {
    switch (line.type) {
      case 'sync': {
        const ids = new Set(line.ids as string[])
        let changed = false
        for (const id of [...entries.keys()]) {
          if (!ids.has(id)) {
            entries.delete(id)
            changed = true
          }
        }
        for (const e of line.upserts as EntryJson[]) {
          entries.set(e.id, entryFromJson(e))
          changed = true
        }
        revision = Math.max(revision, line.revision as number)
        if (changed) notify('entries')
        isConnected = true
        emit({ type: 'connected', revision })
        firstSync?.resolve()
        firstSync = undefined
        return
      }
      case 'delta': {
        const d = line.delta as
          | { op: 'upsert'; revision: number; entry: EntryJson }
          | { op: 'delete'; revision: number; id: string }
        if (d.op === 'upsert') entries.set(d.entry.id, entryFromJson(d.entry))
        else entries.delete(d.id)
        revision = Math.max(revision, d.revision)
        notify('entries')
        return
      }
      case 'heartbeat':
        revision = Math.max(revision, line.revision as number)
        return
      case 'bundle':
        void call<BundleJson>('GET', '/v1/agent/bundle')
          .then((b) => setBundle(bundleFromJson(b)))
          .catch(() => {})
        return
      case 'end':
        throw new TesseraError(
          (line.code as string) in errorCatalog
            ? (line.code as TesseraErrorCode)
            : 'TSR_CLIENT_HTTP',
          'the server ended the entry stream',
        )
      default:
      // unknown line types are for newer clients
    }
  }

  async function streamOnce(signal: AbortSignal): Promise<void> {
    await ensureIdentity()
    const stale = new AbortController()
    const both = AbortSignal.any([signal, stale.signal])
    let watchdog = setTimeout(() => stale.abort(), staleAfterMs)
    const path = `/v1/agent/entries/stream?since=${revision}`
    try {
      const res = await send('GET', path, undefined, { auth: true, signal: both })
      if (!res.body) throw new TesseraError('TSR_CLIENT_HTTP', 'the stream has no body')
      const decoder = new TextDecoder()
      let buffered = ''
      for await (const chunk of res.body) {
        clearTimeout(watchdog)
        watchdog = setTimeout(() => stale.abort(), staleAfterMs)
        buffered += decoder.decode(chunk as Uint8Array, { stream: true })
        let nl: number
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const text = buffered.slice(0, nl)
          buffered = buffered.slice(nl + 1)
          if (text.trim()) apply(JSON.parse(text) as Record<string, unknown>)
        }
        // Renew in the background at half life; the open stream stays authorised until expiry.
        void ensureIdentity().catch(() => {})
      }
      throw new TesseraError('TSR_CLIENT_HTTP', 'the server closed the entry stream')
    } finally {
      clearTimeout(watchdog)
    }
  }

  async function run(signal: AbortSignal): Promise<void> {
    let delay = initialBackoff
    while (!signal.aborted) {
      try {
        await streamOnce(signal)
      } catch (err) {
        if (signal.aborted) break
        const wasConnected = isConnected
        isConnected = false
        emit({ type: 'disconnected', error: (err as Error).message })
        if (err instanceof TesseraError) {
          if (err.code === 'TSR_AGENT_UNAUTHENTICATED' && svid) {
            // The server no longer takes this SVID: renew or attest again on the next round.
            svid = { ...svid, notBefore: new Date(0) }
            if (clock.now().getTime() >= svid.notAfter.getTime() && !options.attestor.canReattest) {
              firstSync?.reject(err)
            }
          }
          if (
            firstSync &&
            (err.code === 'TSR_ATTESTATION_FAILED' || err.code === 'TSR_AGENT_BANNED')
          ) {
            firstSync.reject(err)
            firstSync = undefined
          }
        }
        if (wasConnected) delay = initialBackoff
        const jittered = delay * (0.8 + 0.4 * random())
        await abortable(signal, jittered)
        delay = Math.min(maxBackoff, delay * 2)
      }
    }
  }

  /** Pulls deny-list entries newer than the cursor; drops the ones that have lapsed. */
  async function pollRevocations(signal: AbortSignal): Promise<void> {
    const res = await doFetch(`${base}/v1/revocations?after=${revocationCursor}`, {
      headers: { accept: 'application/json' },
      signal,
    })
    if (!res.ok) throw await problem(res, 'deny-list')
    const page = (await res.json()) as {
      items: {
        id: number
        targetType: Revocation['targetType']
        value: string
        reason: string | null
        createdAt: string
        expiresAt: string | null
      }[]
      latest: number
    }
    let changed = false
    for (const r of page.items) {
      revoked.set(r.id, {
        targetType: r.targetType,
        value: r.value,
        createdAt: new Date(r.createdAt),
        ...(r.reason ? { reason: r.reason } : {}),
        ...(r.expiresAt ? { expiresAt: new Date(r.expiresAt) } : {}),
      })
      changed = true
    }
    revocationCursor = Math.max(revocationCursor, page.latest)
    const now = clock.now().getTime()
    for (const [id, r] of revoked) {
      if (r.expiresAt && r.expiresAt.getTime() <= now) {
        revoked.delete(id)
        changed = true
      }
    }
    if (changed) notify('revocations')
  }

  /** Federated bundles: added, updated, and dropped when the relationship ends. */
  async function pollFederated(): Promise<void> {
    if (!svid) return
    const own = /^spiffe:\/\/([^/]+)/.exec(svid.spiffeId)?.[1]
    const res = await call<{ items: BundleJson[] }>('GET', '/v1/agent/federated-bundles')
    const seen = new Set<string>()
    let changed = false
    for (const item of res.items) {
      const b = bundleFromJson(item)
      if (b.trustDomain === own) continue
      seen.add(b.trustDomain)
      const old = bundles.get(b.trustDomain)
      if (!old || old.sequence !== b.sequence) {
        bundles.set(b.trustDomain, b)
        changed = true
      }
    }
    for (const td of [...bundles.keys()]) {
      if (td !== own && !seen.has(td)) {
        bundles.delete(td)
        changed = true
      }
    }
    if (changed) notify('bundles')
  }

  async function runRevocations(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await pollRevocations(signal)
      } catch (err) {
        if (signal.aborted) break
        emit({ type: 'disconnected', error: `deny-list: ${(err as Error).message}` })
      }
      if (svid && clock.now().getTime() - lastFederatedPoll >= federatedPollMs) {
        lastFederatedPoll = clock.now().getTime()
        try {
          await pollFederated()
        } catch (err) {
          if (signal.aborted) break
          emit({ type: 'disconnected', error: `federated bundles: ${(err as Error).message}` })
        }
      }
      await abortable(signal, revocationPollMs)
    }
  }

  return {
    entries: () => entries,
    bundles: () => bundles,
    revocations: (): readonly Revocation[] => [...revoked.values()],
    onChange(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async signX509Svids(requests) {
      if (requests.length === 0) return []
      const res = await call<{ svids: SvidJson[] }>('POST', '/v1/agent/x509-svids', {
        requests: requests.map((r) => ({
          entryId: r.entryId,
          publicKey: (r.publicKey instanceof Uint8Array
            ? Buffer.from(r.publicKey)
            : r.publicKey.export({ type: 'spki', format: 'der' })
          ).toString('base64'),
        })),
      })
      return res.svids.map(svidFromJson)
    },
    async mintJwtSvid(request): Promise<JwtSvidResult> {
      const res = await call<
        Omit<JwtSvidResult, 'issuedAt' | 'expiresAt'> & { issuedAt: string; expiresAt: string }
      >('POST', '/v1/agent/jwt-svids', {
        entryId: request.entryId,
        audience: [...request.audience],
      })
      return { ...res, issuedAt: new Date(res.issuedAt), expiresAt: new Date(res.expiresAt) }
    },
    connected: () => isConnected,
    secret: (name, spiffeId) =>
      call<DeliveredSecret>(
        'GET',
        `/v1/agent/secrets/${encodeURIComponent(name)}?spiffeId=${encodeURIComponent(spiffeId)}`,
      ),
    spiffeId: () => svid?.spiffeId,
    revision: () => revision,
    start() {
      if (loop) return Promise.resolve()
      lifecycle = new AbortController()
      const ready = new Promise<void>((resolve, reject) => {
        firstSync = { resolve, reject }
      })
      loop = run(lifecycle.signal)
      revocationLoop = runRevocations(lifecycle.signal)
      return ready
    },
    async stop() {
      lifecycle?.abort()
      await loop
      await revocationLoop
      loop = undefined
      revocationLoop = undefined
      isConnected = false
    },
  }
}
