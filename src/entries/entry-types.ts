import type { EntryDelta, RegistrationEntry, Selector } from '../spiffe/types.js'

/** What a caller gives to create an entry. `owner` is required: every identity has someone to ask. */
export interface EntryInput {
  spiffeId: string
  parentId: string
  selectors: Selector[]
  owner: string
  x509SvidTtl?: number
  jwtSvidTtl?: number
  dnsNames?: string[]
  federatesWith?: string[]
  hint?: string
  admin?: boolean
  downstream?: boolean
  expiresAt?: Date
}

/** A partial change; `null` clears an optional field. */
export interface EntryPatch {
  spiffeId?: string
  parentId?: string
  selectors?: Selector[]
  owner?: string
  x509SvidTtl?: number | null
  jwtSvidTtl?: number | null
  dnsNames?: string[]
  federatesWith?: string[]
  hint?: string | null
  admin?: boolean
  downstream?: boolean
  expiresAt?: Date | null
}

export interface EntryFilter {
  spiffeId?: string
  parentId?: string
  /** `type:value`, matched exactly against one of the entry's selectors. */
  selector?: Selector
  owner?: string
  limit?: number
  cursor?: string
}

export interface EntryPage {
  items: RegistrationEntry[]
  nextCursor: string | null
}

export interface EntryChanges {
  deltas: EntryDelta[]
  /** Pass this back as `since`: the last revision covered (the `since` given when nothing changed). */
  revision: number
  /** True when `limit` cut the list: call again from `revision`. */
  more: boolean
}

/** Who made a change, recorded on the version row. */
export interface ChangeContext {
  actor?: string
}

/** Registration entries, versioned in `registration_entry`: every change is a new revision. */
export interface Entries {
  create(input: EntryInput, ctx?: ChangeContext): Promise<RegistrationEntry>
  update(id: string, patch: EntryPatch, ctx?: ChangeContext): Promise<RegistrationEntry>
  /** Writes a deleted version; returns the delete's revision. */
  delete(id: string, ctx?: ChangeContext): Promise<{ id: string; revision: number }>
  get(id: string): Promise<RegistrationEntry | undefined>
  list(filter?: EntryFilter): Promise<EntryPage>
  /** Every change after `since`, in revision order. */
  changes(since: number, limit?: number): Promise<EntryChanges>
  /** The highest revision written (0 when none). */
  latestRevision(): Promise<number>
}
