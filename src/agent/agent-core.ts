import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose'
import type { JwtSvidResult, X509SvidResult } from '../ca/ca-types.js'
import { TesseraError } from '../errors.js'
import type { Clock } from '../runtime/clock.js'
import type { RegistrationEntry, Selector, TrustBundle } from '../spiffe/types.js'
import { allowedJwtAlgs } from '../spiffe/jwt-svid.js'
import {
  WorkloadApiError,
  type WatchUpdate,
  type WorkloadApiBackend,
  type WorkloadPeer,
  type X509SvidItem,
  type X509SvidState,
} from '../workload-api/backend.js'
import type { AgentControlPort } from './agent-ports.js'
import { attestWith, type WorkloadAttestor } from './attestor.js'
import type { Scheduler } from './scheduler.js'
import { createEntryIndex, selectorKey, trustDomainOf } from './selectors.js'
import { generateEncodedKeyPair, type EncodedKeyPair } from './workload-keys.js'

export interface AgentCoreDeps {
  port: AgentControlPort
  attestors: readonly WorkloadAttestor[]
  clock: Clock
  scheduler: Scheduler
  /** Uniform in [0, 1); drives the rotation jitter and retry jitter. */
  random?: () => number
  /** A fresh ECDSA P-256 key pair per mint, already encoded; tests may count calls. */
  generateKeyPair?: () => Promise<EncodedKeyPair>
  /** Bound of the X.509 SVID LRU (soft: SVIDs an open stream uses are never evicted). */
  maxX509Svids?: number
  /** Bound of the JWT-SVID cache (hard). */
  maxJwtSvids?: number
  /** Signing requests arriving within this window go to the server in one batch. */
  batchWindowMs?: number
  maxBatchSize?: number
  /** First retry delay after a failed mint; doubles up to `maxRetryMs`. */
  retryMs?: number
  maxRetryMs?: number
  log?: (event: string, fields: Record<string, unknown>) => void
}

export interface AgentCoreStats {
  entries: number
  x509Cached: number
  jwtCached: number
  watchers: number
  mintedX509: number
  batches: number
  rotations: number
}

export interface AgentCore extends WorkloadApiBackend {
  stats(): AgentCoreStats
  close(): void
}

interface CachedSvid {
  entryId: string
  entryRevision: number
  spiffeId: string
  /** What a response carries, encoded once per SVID rather than once per response. */
  item: X509SvidItem
  serial: string
  notBefore: Date
  notAfter: Date
  rotateAt: Date
  cancelTimer: () => void
}

interface Watcher {
  kind: 'x509' | 'x509bundles' | 'jwtbundles'
  selectors: readonly Selector[]
  keys: Set<string>
  entryIds: Set<string>
  emit: (u: WatchUpdate<unknown>) => void
  running: boolean
  again: boolean
  closed: boolean
}

const allowedJwtAlgSet: ReadonlySet<string> = new Set(allowedJwtAlgs)

/**
 * The node agent's core: matches attested workloads to registration entries, mints X.509 SVIDs
 * lazily (key pair generated here, public keys signed by the control plane in batches), keeps them
 * in a bounded LRU, rotates them at half their lifetime ±10% jitter while a stream uses them, pushes
 * the full state to every open stream on any change, applies revocations, and keeps serving cached
 * SVIDs while the control plane is unreachable. It persists nothing: every private key lives in this
 * process only, and a restarted agent re-mints on demand (see docs/agent.md).
 */
export function createAgentCore(deps: AgentCoreDeps): AgentCore {
  const { port, clock, scheduler } = deps
  const random = deps.random ?? Math.random
  const newKeyPair = deps.generateKeyPair ?? generateEncodedKeyPair
  const maxX509 = deps.maxX509Svids ?? 16_384
  const maxJwt = deps.maxJwtSvids ?? 1000
  const batchWindowMs = deps.batchWindowMs ?? 3
  const maxBatch = deps.maxBatchSize ?? 500
  const retryBase = deps.retryMs ?? 1000
  const retryMax = deps.maxRetryMs ?? 30_000
  const log = deps.log ?? (() => {})

  const index = createEntryIndex()
  const known = new Map<string, number>() // entry id → revision indexed
  const svids = new Map<string, CachedSvid>() // LRU: Map order, most recent last
  const inflight = new Map<string, Promise<CachedSvid>>()
  const jwtCache = new Map<string, { entryRevision: number; result: JwtSvidResult }>()
  const jwtInflight = new Map<string, Promise<JwtSvidResult>>()
  const watchers = new Set<Watcher>()
  const watchersBySelector = new Map<string, Set<Watcher>>()
  const watchersByEntry = new Map<string, Set<Watcher>>()
  const retryTimers = new Map<string, { cancel: () => void; attempt: number }>()
  let revokedIds = new Set<string>()
  let revokedSerials = new Set<string>()
  let revokedJtis = new Set<string>()
  let pending: {
    entry: RegistrationEntry
    spki: Buffer
    resolve: (r: X509SvidResult) => void
    reject: (e: unknown) => void
  }[] = []
  let flushTimer: NodeJS.Timeout | undefined
  let closed = false
  const counters = { mintedX509: 0, batches: 0, rotations: 0 }

  // ---- entries, bundles, revocations from the port ----

  /** Per entry with an expiry: the timer that withdraws its SVIDs from workloads at that instant. */
  const expiryTimers = new Map<string, () => void>()

  function watchExpiry(e: RegistrationEntry): void {
    expiryTimers.get(e.id)?.()
    expiryTimers.delete(e.id)
    if (e.expiresAt === undefined) return
    expiryTimers.set(
      e.id,
      scheduler.at(e.expiresAt, () => {
        expiryTimers.delete(e.id)
        if (closed) return
        log('entry_expired', { entryId: e.id, spiffeId: e.spiffeId })
        dropSvid(e.id)
        refreshForEntries(new Set([e.id]))
      }),
    )
  }

  function syncEntries(): Set<string> {
    const changed = new Set<string>()
    const current = port.entries()
    for (const [id, e] of current) {
      if (known.get(id) !== e.revision) {
        known.set(id, e.revision)
        index.upsert(e)
        watchExpiry(e)
        changed.add(id)
      }
    }
    for (const id of [...known.keys()]) {
      if (!current.has(id)) {
        known.delete(id)
        index.delete(id)
        expiryTimers.get(id)?.()
        expiryTimers.delete(id)
        changed.add(id)
        dropSvid(id)
      }
    }
    return changed
  }

  function syncRevocations(): void {
    const now = clock.now().getTime()
    const ids = new Set<string>()
    const serials = new Set<string>()
    const jtis = new Set<string>()
    for (const r of port.revocations()) {
      if (r.expiresAt !== undefined && r.expiresAt.getTime() <= now) continue
      if (r.targetType === 'spiffe_id') ids.add(r.value)
      else if (r.targetType === 'serial') serials.add(r.value.toLowerCase())
      else if (r.targetType === 'jti') jtis.add(r.value)
    }
    revokedIds = ids
    revokedSerials = serials
    revokedJtis = jtis
    for (const s of [...svids.values()]) {
      if (revokedIds.has(s.spiffeId) || revokedSerials.has(s.serial.toLowerCase())) {
        log('svid_revoked', { entryId: s.entryId, serial: s.serial })
        dropSvid(s.entryId)
      }
    }
    for (const [k, v] of jwtCache) {
      if (revokedIds.has(v.result.spiffeId) || revokedJtis.has(v.result.jti)) jwtCache.delete(k)
    }
  }

  syncEntries()
  syncRevocations()
  const unsubscribe = port.onChange((what) => {
    if (closed) return
    if (what === 'entries') {
      const changed = syncEntries()
      if (changed.size > 0) refreshForEntries(changed)
    } else if (what === 'revocations') {
      syncRevocations()
      refreshAll()
    } else {
      refreshAll()
    }
  })

  function usable(entry: RegistrationEntry): boolean {
    if (revokedIds.has(entry.spiffeId)) return false
    if (entry.expiresAt !== undefined && entry.expiresAt.getTime() <= clock.now().getTime()) {
      return false
    }
    return true
  }

  function matchEntries(selectors: readonly Selector[]): RegistrationEntry[] {
    return index.match(selectors).filter(usable)
  }

  // ---- X.509 SVID cache ----

  function dropSvid(entryId: string): void {
    const s = svids.get(entryId)
    if (s === undefined) return
    s.cancelTimer()
    svids.delete(entryId)
  }

  function touch(s: CachedSvid): void {
    svids.delete(s.entryId)
    svids.set(s.entryId, s)
  }

  function evictIfNeeded(): void {
    if (svids.size <= maxX509) return
    for (const s of svids.values()) {
      if (svids.size <= maxX509) break
      if ((watchersByEntry.get(s.entryId)?.size ?? 0) > 0) continue
      dropSvid(s.entryId)
    }
  }

  function validCached(entry: RegistrationEntry): CachedSvid | undefined {
    const s = svids.get(entry.id)
    if (s === undefined) return undefined
    if (s.notAfter.getTime() <= clock.now().getTime()) {
      dropSvid(entry.id)
      return undefined
    }
    return s
  }

  function rotationInstant(notBefore: Date, notAfter: Date): Date {
    const life = notAfter.getTime() - notBefore.getTime()
    const half = life / 2
    const jitter = half * 0.1 * (2 * random() - 1)
    return new Date(notBefore.getTime() + half + jitter)
  }

  function store(entry: RegistrationEntry, res: X509SvidResult, privateKey: Buffer): CachedSvid {
    dropSvid(entry.id)
    const rotateAt = rotationInstant(res.notBefore, res.notAfter)
    const s: CachedSvid = {
      entryId: entry.id,
      entryRevision: entry.revision,
      spiffeId: res.spiffeId,
      item: {
        spiffeId: res.spiffeId,
        certChain: res.certChain,
        certChainDer: res.certChain.length === 1 ? res.certChain[0]! : Buffer.concat(res.certChain),
        privateKey,
        bundle: Buffer.alloc(0), // set per response from the current bundle
        ...(entry.hint === undefined ? {} : { hint: entry.hint }),
      },
      serial: res.serial,
      notBefore: res.notBefore,
      notAfter: res.notAfter,
      rotateAt,
      cancelTimer: () => {},
    }
    s.cancelTimer = scheduler.at(rotateAt, () => rotate(entry.id))
    svids.set(entry.id, s)
    evictIfNeeded()
    return s
  }

  /** One mint per entry at a time; every attempt uses a key pair never sent before. */
  function mint(entry: RegistrationEntry): Promise<CachedSvid> {
    const running = inflight.get(entry.id)
    if (running !== undefined) return running
    const p = (async () => {
      const { spki, pkcs8 } = await newKeyPair()
      const res = await new Promise<X509SvidResult>((resolve, reject) => {
        pending.push({ entry, spki, resolve, reject })
        if (pending.length >= maxBatch) flush()
        else flushTimer ??= setTimeout(flush, batchWindowMs)
      })
      counters.mintedX509++
      const current = index.get(entry.id)
      if (closed || current === undefined) {
        throw new WorkloadApiError('PERMISSION_DENIED', 'no identity issued')
      }
      return store(entry, res, pkcs8)
    })()
    inflight.set(entry.id, p)
    const clear = (): void => {
      if (inflight.get(entry.id) === p) inflight.delete(entry.id)
    }
    p.then(clear, clear)
    return p
  }

  function flush(): void {
    if (flushTimer !== undefined) clearTimeout(flushTimer)
    flushTimer = undefined
    while (pending.length > 0) {
      const batch = pending.splice(0, maxBatch)
      counters.batches++
      port
        .signX509Svids(batch.map((b) => ({ entryId: b.entry.id, publicKey: b.spki })))
        .then((results) => {
          if (results.length !== batch.length) {
            throw new TesseraError(
              'TSR_AGENT_SIGNING',
              `server returned ${results.length} SVIDs for ${batch.length} requests`,
            )
          }
          batch.forEach((b, i) => {
            try {
              b.resolve(checkResult(b.entry, b.spki, results[i]!))
            } catch (err) {
              b.reject(err)
            }
          })
        })
        .catch((err: unknown) => {
          for (const b of batch) b.reject(err)
        })
    }
  }

  function checkResult(
    entry: RegistrationEntry,
    spki: Buffer,
    res: X509SvidResult,
  ): X509SvidResult {
    if (res.spiffeId !== entry.spiffeId || res.certChain.length === 0) {
      throw new TesseraError(
        'TSR_AGENT_SIGNING',
        `server signed ${res.spiffeId}, not ${entry.spiffeId}`,
      )
    }
    // The leaf must carry the key we sent: its DER holds our SubjectPublicKeyInfo verbatim. (A byte
    // search instead of parsing the certificate: this runs for every SVID of a start storm.)
    if (!res.certChain[0]!.includes(spki)) {
      throw new TesseraError('TSR_AGENT_SIGNING', 'server returned a certificate for another key')
    }
    return res
  }

  /** Rotation (or retry) of one entry's SVID. Unused SVIDs are dropped instead: minting is lazy. */
  function rotate(entryId: string, attempt = 0): void {
    if (closed) return
    const entry = index.get(entryId)
    const users = watchersByEntry.get(entryId)?.size ?? 0
    if (entry === undefined || !usable(entry) || users === 0) {
      dropSvid(entryId)
      return
    }
    counters.rotations++
    mint(entry).then(
      () => {
        retryTimers.get(entryId)?.cancel()
        retryTimers.delete(entryId)
        refreshForEntries(new Set([entryId]))
      },
      (err: unknown) => {
        log('rotation_failed', { entryId, attempt, error: String(err) })
        const cur = svids.get(entryId)
        if (cur !== undefined && cur.notAfter.getTime() <= clock.now().getTime()) {
          dropSvid(entryId)
          refreshForEntries(new Set([entryId]))
        }
        scheduleRetry(entryId, attempt + 1)
      },
    )
  }

  function scheduleRetry(entryId: string, attempt: number): void {
    if (closed || retryTimers.has(entryId)) return
    const delay =
      Math.min(retryMax, retryBase * 2 ** Math.min(attempt - 1, 10)) * (0.8 + 0.4 * random())
    const cancel = scheduler.at(new Date(clock.now().getTime() + delay), () => {
      retryTimers.delete(entryId)
      rotate(entryId, attempt)
    })
    retryTimers.set(entryId, { cancel, attempt })
  }

  /** SVIDs for these entries: cached ones when current, else minted (in one batch). */
  async function svidsFor(entries: RegistrationEntry[]): Promise<CachedSvid[]> {
    const out: (CachedSvid | undefined)[] = []
    const waits: Promise<void>[] = []
    entries.forEach((entry, i) => {
      const cached = validCached(entry)
      if (cached !== undefined) {
        touch(cached)
        out[i] = cached
        // A changed entry gets a new SVID; the old one is served until it arrives.
        if (cached.entryRevision === entry.revision) return
      }
      waits.push(
        mint(entry).then(
          (s) => {
            out[i] = s
          },
          (err: unknown) => {
            log('mint_failed', { entryId: entry.id, error: String(err) })
            scheduleRetry(entry.id, 1)
          },
        ),
      )
    })
    await Promise.all(waits)
    return out.filter((s): s is CachedSvid => s !== undefined)
  }

  // ---- bundles ----

  function tdKey(td: string): string {
    return `spiffe://${td}`
  }

  function bundleTds(entries: readonly RegistrationEntry[]): {
    own: Set<string>
    fed: Set<string>
  } {
    const own = new Set<string>()
    const fed = new Set<string>()
    for (const e of entries) {
      const td = trustDomainOf(e.spiffeId)
      if (td !== undefined) own.add(td)
      for (const f of e.federatesWith) fed.add(f.replace(/^spiffe:\/\//, '').toLowerCase())
    }
    for (const td of own) fed.delete(td)
    return { own, fed }
  }

  // Encoded once per bundle object (the port replaces the object when a bundle changes).
  const x509BundleCache = new WeakMap<TrustBundle, Buffer>()
  const jwksCache = new WeakMap<TrustBundle, Buffer>()

  function x509BundleBytes(b: TrustBundle): Buffer {
    let out = x509BundleCache.get(b)
    if (out === undefined) x509BundleCache.set(b, (out = Buffer.concat(b.x509Authorities)))
    return out
  }

  function jwksBytes(b: TrustBundle): Buffer {
    let out = jwksCache.get(b)
    if (out === undefined) {
      out = Buffer.from(
        JSON.stringify({
          keys: b.jwtAuthorities.map((a) => ({ ...a.publicKey, kid: a.kid, use: 'jwt-svid' })),
        }),
      )
      jwksCache.set(b, out)
    }
    return out
  }

  function ownBundle(td: string): TrustBundle {
    const b = port.bundles().get(td)
    if (b === undefined) {
      throw new WorkloadApiError('UNAVAILABLE', `no trust bundle for ${td} yet`)
    }
    return b
  }

  function bundlesFor(
    entries: readonly RegistrationEntry[],
    encode: (b: TrustBundle) => Buffer,
  ): Map<string, Buffer> {
    const { own, fed } = bundleTds(entries)
    const out = new Map<string, Buffer>()
    for (const td of own) out.set(tdKey(td), encode(ownBundle(td)))
    for (const td of fed) {
      const b = port.bundles().get(td)
      if (b !== undefined) out.set(tdKey(td), encode(b))
    }
    return out
  }

  // ---- watchers ----

  function setWatcherEntries(w: Watcher, ids: Set<string>): void {
    for (const id of w.entryIds) {
      if (!ids.has(id)) {
        const set = watchersByEntry.get(id)
        set?.delete(w)
        if (set?.size === 0) watchersByEntry.delete(id)
      }
    }
    for (const id of ids) {
      let set = watchersByEntry.get(id)
      if (set === undefined) watchersByEntry.set(id, (set = new Set()))
      set.add(w)
    }
    w.entryIds = ids
  }

  async function compute(w: Watcher): Promise<WatchUpdate<unknown>> {
    const entries = matchEntries(w.selectors)
    setWatcherEntries(w, new Set(entries.map((e) => e.id)))
    if (entries.length === 0) {
      return { ok: false, error: new WorkloadApiError('PERMISSION_DENIED', 'no identity issued') }
    }
    if (w.kind === 'x509bundles') return { ok: true, value: bundlesFor(entries, x509BundleBytes) }
    if (w.kind === 'jwtbundles') return { ok: true, value: bundlesFor(entries, jwksBytes) }
    const got = await svidsFor(entries)
    if (got.length === 0) {
      return {
        ok: false,
        error: new WorkloadApiError('UNAVAILABLE', 'could not get an SVID from the server yet'),
      }
    }
    const byId = new Map(entries.map((e) => [e.id, e]))
    const items = got.map((s): X509SvidItem => {
      const bundle = x509BundleBytes(ownBundle(trustDomainOf(s.spiffeId) ?? ''))
      const hint = byId.get(s.entryId)?.hint
      // The cached item is shared by every response while the bundle and hint are unchanged.
      if (s.item.bundle !== bundle || s.item.hint !== hint) {
        const { hint: _old, ...rest } = s.item
        s.item = { ...rest, bundle, ...(hint === undefined ? {} : { hint }) }
      }
      return s.item
    })
    // One SVID per hint: the first (oldest entry id) wins, as SPIRE.
    const seenHints = new Set<string>()
    const svidItems = items.filter((it) => {
      if (it.hint === undefined || it.hint === '') return true
      if (seenHints.has(it.hint)) return false
      seenHints.add(it.hint)
      return true
    })
    const fed = bundlesFor(entries, x509BundleBytes)
    for (const it of svidItems) fed.delete(tdKey(trustDomainOf(it.spiffeId) ?? ''))
    const state: X509SvidState = { svids: svidItems, federatedBundles: fed }
    return { ok: true, value: state }
  }

  function refresh(w: Watcher): void {
    if (w.closed || closed) return
    if (w.running) {
      w.again = true
      return
    }
    w.running = true
    compute(w)
      .catch((err: unknown): WatchUpdate<unknown> => ({
        ok: false,
        error:
          err instanceof WorkloadApiError
            ? err
            : new WorkloadApiError('UNAVAILABLE', 'agent not ready', { cause: err }),
      }))
      .then((u) => {
        w.running = false
        if (w.closed) return
        if (w.again) {
          w.again = false
          refresh(w)
          return
        }
        w.emit(u)
      })
  }

  function refreshAll(): void {
    for (const w of watchers) refresh(w)
  }

  function refreshForEntries(ids: Set<string>): void {
    const hit = new Set<Watcher>()
    for (const id of ids) {
      for (const w of watchersByEntry.get(id) ?? []) hit.add(w)
      const e = index.get(id)
      if (e === undefined) continue
      // Watchers that now match the entry: all its selectors are among theirs.
      const first = e.selectors[0]
      if (first === undefined) continue
      for (const w of watchersBySelector.get(selectorKey(first)) ?? []) {
        if (e.selectors.every((s) => w.keys.has(selectorKey(s)))) hit.add(w)
      }
    }
    for (const w of hit) refresh(w)
  }

  function watch(
    kind: Watcher['kind'],
    selectors: readonly Selector[],
    onUpdate: (u: WatchUpdate<never>) => void,
  ): () => void {
    const w: Watcher = {
      kind,
      selectors,
      keys: new Set(selectors.map(selectorKey)),
      entryIds: new Set(),
      emit: onUpdate as (u: WatchUpdate<unknown>) => void,
      running: false,
      again: false,
      closed: false,
    }
    watchers.add(w)
    for (const k of w.keys) {
      let set = watchersBySelector.get(k)
      if (set === undefined) watchersBySelector.set(k, (set = new Set()))
      set.add(w)
    }
    refresh(w)
    return () => {
      if (w.closed) return
      w.closed = true
      watchers.delete(w)
      for (const k of w.keys) {
        const set = watchersBySelector.get(k)
        set?.delete(w)
        if (set?.size === 0) watchersBySelector.delete(k)
      }
      setWatcherEntries(w, new Set())
    }
  }

  // ---- JWT ----

  async function jwtFor(
    entry: RegistrationEntry,
    audience: readonly string[],
  ): Promise<JwtSvidResult> {
    const aud = [...new Set(audience)].sort()
    const key = `${entry.id}\n${aud.join('\n')}`
    const now = clock.now().getTime()
    const hit = jwtCache.get(key)
    if (hit !== undefined) {
      const { issuedAt, expiresAt, jti, spiffeId } = hit.result
      const half = issuedAt.getTime() + (expiresAt.getTime() - issuedAt.getTime()) / 2
      if (
        now < half &&
        hit.entryRevision === entry.revision &&
        !revokedJtis.has(jti) &&
        !revokedIds.has(spiffeId)
      ) {
        jwtCache.delete(key)
        jwtCache.set(key, hit)
        return hit.result
      }
      jwtCache.delete(key)
    }
    const running = jwtInflight.get(key)
    if (running !== undefined) return running
    const p = port.mintJwtSvid({ entryId: entry.id, audience: aud }).then((result) => {
      if (result.spiffeId !== entry.spiffeId) {
        throw new TesseraError(
          'TSR_AGENT_SIGNING',
          `server minted ${result.spiffeId}, not ${entry.spiffeId}`,
        )
      }
      jwtCache.set(key, { entryRevision: entry.revision, result })
      while (jwtCache.size > maxJwt) jwtCache.delete(jwtCache.keys().next().value!)
      return result
    })
    jwtInflight.set(key, p)
    const clear = (): void => {
      jwtInflight.delete(key)
    }
    p.then(clear, clear)
    return p
  }

  async function validateJwt(
    token: string,
    audience: string,
  ): Promise<{ spiffeId: string; claims: Record<string, unknown> }> {
    const bad = (msg: string, cause?: unknown): WorkloadApiError =>
      new WorkloadApiError('INVALID_ARGUMENT', msg, { cause })
    let header: ReturnType<typeof decodeProtectedHeader>
    let payload: ReturnType<typeof decodeJwt>
    try {
      header = decodeProtectedHeader(token)
      payload = decodeJwt(token)
    } catch (err) {
      throw bad('malformed JWT-SVID', err)
    }
    if (typeof header.alg !== 'string' || !allowedJwtAlgSet.has(header.alg)) {
      throw bad(`JWT-SVID algorithm ${String(header.alg)} is not allowed`)
    }
    const sub = payload.sub
    const td = sub === undefined ? undefined : trustDomainOf(sub)
    if (sub === undefined || td === undefined || !/^spiffe:\/\/[^/]+\/.+/.test(sub)) {
      throw bad('JWT-SVID subject is not a SPIFFE ID')
    }
    const bundle = port.bundles().get(td)
    if (bundle === undefined) throw bad(`no JWT bundle for trust domain ${td}`)
    const candidates = bundle.jwtAuthorities.filter(
      (a) => header.kid === undefined || a.kid === header.kid,
    )
    if (candidates.length === 0) throw bad('JWT-SVID signed by an unknown key')
    let lastErr: unknown
    for (const a of candidates) {
      try {
        const key = await importJWK(a.publicKey as JWK, header.alg)
        const { payload: claims } = await jwtVerify(token, key, {
          audience,
          algorithms: [header.alg],
          currentDate: clock.now(),
          clockTolerance: 5,
          requiredClaims: ['exp', 'aud', 'sub'],
        })
        if (typeof claims.jti === 'string' && revokedJtis.has(claims.jti)) {
          throw bad('JWT-SVID is revoked')
        }
        if (revokedIds.has(sub)) throw bad('JWT-SVID subject is revoked')
        const out: Record<string, unknown> = { ...claims }
        if (typeof out.aud === 'string') out.aud = [out.aud]
        return { spiffeId: sub, claims: out }
      } catch (err) {
        if (err instanceof WorkloadApiError) throw err
        lastErr = err
      }
    }
    throw bad('JWT-SVID validation failed', lastErr)
  }

  return {
    attest: (peer: WorkloadPeer) => attestWith(deps.attestors, peer),
    watchX509Svids: (selectors, onUpdate) => watch('x509', selectors, onUpdate),
    watchX509Bundles: (selectors, onUpdate) => watch('x509bundles', selectors, onUpdate),
    watchJwtBundles: (selectors, onUpdate) => watch('jwtbundles', selectors, onUpdate),
    async fetchJwtSvids(selectors, audience, spiffeId) {
      if (spiffeId !== undefined && trustDomainOf(spiffeId) === undefined) {
        throw new WorkloadApiError('INVALID_ARGUMENT', `invalid SPIFFE ID ${spiffeId}`)
      }
      let entries = matchEntries(selectors)
      if (spiffeId !== undefined) entries = entries.filter((e) => e.spiffeId === spiffeId)
      if (entries.length === 0)
        throw new WorkloadApiError('PERMISSION_DENIED', 'no identity issued')
      const results = await Promise.all(
        entries.map((e) =>
          jwtFor(e, audience).then(
            (r) => ({ spiffeId: r.spiffeId, token: r.token, ...(e.hint ? { hint: e.hint } : {}) }),
            (err: unknown) => {
              log('jwt_mint_failed', { entryId: e.id, error: String(err) })
              return undefined
            },
          ),
        ),
      )
      const ok = results.filter((r) => r !== undefined)
      if (ok.length === 0) throw new WorkloadApiError('UNAVAILABLE', 'could not mint a JWT-SVID')
      return ok
    },
    validateJwtSvid: (_selectors, token, audience) => validateJwt(token, audience),
    stats: () => ({
      entries: index.size(),
      x509Cached: svids.size,
      jwtCached: jwtCache.size,
      watchers: watchers.size,
      ...counters,
    }),
    close() {
      closed = true
      unsubscribe()
      if (flushTimer !== undefined) clearTimeout(flushTimer)
      for (const b of pending) b.reject(new Error('agent closed'))
      pending = []
      for (const s of svids.values()) s.cancelTimer()
      for (const t of retryTimers.values()) t.cancel()
      retryTimers.clear()
      for (const cancel of expiryTimers.values()) cancel()
      expiryTimers.clear()
      for (const w of watchers) w.closed = true
      watchers.clear()
    },
  }
}
