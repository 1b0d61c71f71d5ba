import type { RegistrationEntry, Selector } from '../spiffe/types.js'

/** `type:value`, the canonical string form of a selector. */
export function selectorKey(s: Selector): string {
  return `${s.type}:${s.value}`
}

/**
 * Index of registration entries by selector, so matching a workload costs about the number of
 * entries it could match, not the number of entries. An entry matches when every one of
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
  const entries = new Map<string, { entry: RegistrationEntry; keys: string[]; anchor: string }>()
  // Each entry is filed under ONE of its selectors (its anchor): the one with the fewest entries
  // filed under it when the entry arrives. Any workload that matches the entry holds all its
  // selectors, so it holds the anchor too; and a selector shared by many entries (`unix:uid:1000`
  // for a whole node) is not scanned in full by every workload that has it.
  const byAnchor = new Map<string, Set<string>>()

  function remove(id: string): void {
    const cur = entries.get(id)
    if (cur === undefined) return
    const set = byAnchor.get(cur.anchor)
    set?.delete(id)
    if (set !== undefined && set.size === 0) byAnchor.delete(cur.anchor)
    entries.delete(id)
  }

  return {
    upsert(entry) {
      remove(entry.id)
      const keys = [...new Set(entry.selectors.map(selectorKey))]
      // An entry without selectors would match every workload: never serve it.
      if (keys.length === 0) return
      let anchor = keys[0]!
      for (const k of keys) {
        if ((byAnchor.get(k)?.size ?? 0) < (byAnchor.get(anchor)?.size ?? 0)) anchor = k
      }
      entries.set(entry.id, { entry, keys, anchor })
      let set = byAnchor.get(anchor)
      if (set === undefined) byAnchor.set(anchor, (set = new Set()))
      set.add(entry.id)
    },
    delete: remove,
    get: (id) => entries.get(id)?.entry,
    size: () => entries.size,
    match(selectors) {
      const have = new Set(selectors.map(selectorKey))
      const out: RegistrationEntry[] = []
      for (const k of have) {
        for (const id of byAnchor.get(k) ?? []) {
          const e = entries.get(id)
          if (e !== undefined && e.keys.every((x) => have.has(x))) out.push(e.entry)
        }
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
