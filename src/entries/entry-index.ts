import type { RegistrationEntry, Selector } from '../spiffe/types.js'
import type { Entries } from './entry-types.js'
import { formatSelector } from './entry-validate.js'
import { parseSpiffeId, serverSpiffeId } from './spiffe-id.js'

/**
 * One replica's in-memory mirror of the current registration entries, kept current from the store:
 * a full load once at start, then `changes(since)` on the revision index every `pollIntervalMs`
 * (one indexed range scan that returns nothing when nothing changed). Changes made by any replica
 * reach every replica's agents within one poll, and no agent stream ever reloads everything.
 */
export interface EntryIndex {
  start(): Promise<void>
  stop(): void
  /** The store revision this mirror reflects. */
  readonly revision: number
  get(id: string): RegistrationEntry | undefined
  readonly size: number
  /** Polls now (after a local write, or when an agent asks for an entry not seen yet). */
  refresh(): Promise<void>
  /** The entries an agent may serve (see docs/entries.md, "Which entries an agent gets"). */
  authorizedFor(agent: AgentIdentity, now: Date): Map<string, RegistrationEntry>
  /** Called with the ids that changed, after each poll that saw changes. */
  subscribe(listener: (changedIds: readonly string[], revision: number) => void): () => void
  readonly stats: { polls: number; changesApplied: number; lastPollMs: number }
}

export interface AgentIdentity {
  spiffeId: string
  selectors: readonly Selector[]
}

export interface EntryIndexDeps {
  entries: Pick<Entries, 'changes' | 'list' | 'latestRevision'>
  pollIntervalMs?: number
  /** Where poll failures go (the store being down); polling continues. */
  onError?: (err: unknown) => void
  now?: () => number
}

export function createEntryIndex(deps: EntryIndexDeps): EntryIndex {
  const pollIntervalMs = deps.pollIntervalMs ?? 250
  const now = deps.now ?? (() => performance.now())
  const byId = new Map<string, RegistrationEntry>()
  const byParent = new Map<string, Set<string>>()
  const listeners = new Set<(ids: readonly string[], revision: number) => void>()
  const stats = { polls: 0, changesApplied: 0, lastPollMs: 0 }
  let revision = 0
  let timer: NodeJS.Timeout | undefined
  let chain: Promise<void> = Promise.resolve()
  let started: Promise<void> | undefined

  function unlink(entry: RegistrationEntry) {
    const set = byParent.get(entry.parentId)
    set?.delete(entry.id)
    if (set?.size === 0) byParent.delete(entry.parentId)
  }

  function upsert(entry: RegistrationEntry) {
    const old = byId.get(entry.id)
    if (old) unlink(old)
    byId.set(entry.id, entry)
    let set = byParent.get(entry.parentId)
    if (!set) byParent.set(entry.parentId, (set = new Set()))
    set.add(entry.id)
  }

  function remove(id: string) {
    const old = byId.get(id)
    if (!old) return
    unlink(old)
    byId.delete(id)
  }

  async function load() {
    const start = await deps.entries.latestRevision()
    let cursor: string | undefined
    do {
      const page = await deps.entries.list({ limit: 1000, ...(cursor ? { cursor } : {}) })
      for (const e of page.items) upsert(e)
      cursor = page.nextCursor ?? undefined
    } while (cursor)
    revision = start
    // Changes made during the load come again from `start`: applying them twice is harmless.
    await poll()
  }

  async function pollOnce(): Promise<void> {
    const t0 = now()
    const changed = new Set<string>()
    for (;;) {
      const c = await deps.entries.changes(revision, 1000)
      for (const d of c.deltas) {
        if (d.op === 'upsert') {
          upsert(d.entry)
          changed.add(d.entry.id)
        } else {
          remove(d.id)
          changed.add(d.id)
        }
      }
      revision = c.revision
      stats.changesApplied += c.deltas.length
      if (!c.more) break
    }
    stats.polls++
    stats.lastPollMs = now() - t0
    if (changed.size > 0) {
      const ids = [...changed]
      for (const l of listeners) {
        try {
          l(ids, revision)
        } catch (err) {
          deps.onError?.(err)
        }
      }
    }
  }

  // One poll at a time, in order: a caller arriving during a poll gets the next one, which
  // includes its change.
  function poll(): Promise<void> {
    const next = chain.then(pollOnce)
    chain = next.catch(() => {})
    return next
  }

  function schedule() {
    timer = setTimeout(() => {
      poll()
        .catch((err) => deps.onError?.(err))
        .finally(() => {
          if (timer !== undefined) schedule()
        })
    }, pollIntervalMs)
    timer.unref()
  }

  return {
    start() {
      started ??= load().then(() => schedule())
      return started
    },
    stop() {
      if (timer) clearTimeout(timer)
      timer = undefined
    },
    get revision() {
      return revision
    },
    get size() {
      return byId.size
    },
    get: (id) => byId.get(id),
    refresh: () => poll(),
    authorizedFor(agent, at) {
      const out = new Map<string, RegistrationEntry>()
      const have = new Set(agent.selectors.map(formatSelector))
      // Node aliases: entries parented to the server whose selectors the agent's node has.
      const roots = [agent.spiffeId]
      let trustDomain: string | undefined
      try {
        trustDomain = parseSpiffeId(agent.spiffeId).trustDomain
      } catch {
        return out
      }
      for (const id of byParent.get(serverSpiffeId(trustDomain)) ?? []) {
        const alias = byId.get(id)!
        if (alias.selectors.every((s) => have.has(formatSelector(s)))) roots.push(alias.spiffeId)
      }
      // Breadth-first over parent → children; a visited set makes cycles harmless.
      const seen = new Set(roots)
      const queue = [...roots]
      const t = at.getTime()
      while (queue.length > 0) {
        const parent = queue.shift()!
        for (const id of byParent.get(parent) ?? []) {
          const e = byId.get(id)!
          if (e.expiresAt && e.expiresAt.getTime() <= t) continue
          out.set(e.id, e)
          if (!seen.has(e.spiffeId)) {
            seen.add(e.spiffeId)
            queue.push(e.spiffeId)
          }
        }
      }
      return out
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    stats,
  }
}
