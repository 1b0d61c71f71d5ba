import type { RegistrationEntry, Selector } from '../spiffe/types.js'

/** `type:value`, the canonical string form of a selector. */
export function selectorKey(s: Selector): string {
  return `${s.type}:${s.value}`
}

/**
 * Index of registration entries by selector, so matching a workload costs the size of its selector
 * set times the entries sharing them, not the number of entries. An entry matches when every one of
 * its selectors is among the workload's (subset rule, as SPIRE).
 */
export interface EntryIndex {
  upsert(entry: RegistrationEntry): void
  delete(id: string): void
  get(id: string): RegistrationEntry | undefined
  size(): number
  /** Entries whose selectors are all in `selectors`, ordered by entry id (stable default identity). */
  match(selectors: readonly Selector[]): RegistrationEntry[]
}

export function createEntryIndex(): EntryIndex {
  const entries = new Map<string, { entry: RegistrationEntry; keys: string[] }>()
  const bySelector = new Map<string, Set<string>>()

  function remove(id: string): void {
    const cur = entries.get(id)
    if (cur === undefined) return
    for (const k of cur.keys) {
      const set = bySelector.get(k)
      set?.delete(id)
      if (set !== undefined && set.size === 0) bySelector.delete(k)
    }
    entries.delete(id)
  }

  return {
    upsert(entry) {
      remove(entry.id)
      const keys = [...new Set(entry.selectors.map(selectorKey))]
      // An entry without selectors would match every workload: never serve it.
      if (keys.length === 0) return
      entries.set(entry.id, { entry, keys })
      for (const k of keys) {
        let set = bySelector.get(k)
        if (set === undefined) bySelector.set(k, (set = new Set()))
        set.add(entry.id)
      }
    },
    delete: remove,
    get: (id) => entries.get(id)?.entry,
    size: () => entries.size,
    match(selectors) {
      const counts = new Map<string, number>()
      for (const k of new Set(selectors.map(selectorKey))) {
        for (const id of bySelector.get(k) ?? []) counts.set(id, (counts.get(id) ?? 0) + 1)
      }
      const out: RegistrationEntry[] = []
      for (const [id, n] of counts) {
        const e = entries.get(id)
        if (e !== undefined && e.keys.length === n) out.push(e.entry)
      }
      return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    },
  }
}

/** Trust domain of a SPIFFE ID (`spiffe://td/path` → `td`), or undefined if it is not one. */
export function trustDomainOf(spiffeId: string): string | undefined {
  const m = /^spiffe:\/\/([^/?#]+)(\/[^?#]*)?$/i.exec(spiffeId)
  return m?.[1]?.toLowerCase()
}
