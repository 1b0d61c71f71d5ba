import { randomUUID } from 'node:crypto'
import { sql, type Kysely, type Selectable } from 'kysely'
import { TesseraError } from '../errors.js'
import type { EventSink } from '../audit/event-sink.js'
import { isUuid } from '../inventory/ids.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import type { Database, RegistrationEntryTable } from '../store/schema.js'
import type { Store } from '../store/store.js'
import type { EntryDelta, RegistrationEntry } from '../spiffe/types.js'
import type {
  ChangeContext,
  Entries,
  EntryChanges,
  EntryFilter,
  EntryInput,
  EntryPatch,
} from './entry-types.js'
import {
  checkDnsNames,
  checkEntrySpiffeId,
  checkFederatesWith,
  checkHint,
  checkOwner,
  checkSelector,
  checkTtl,
  entryLimits,
  normaliseSelectors,
} from './entry-validate.js'

export interface EntriesDeps {
  store: Pick<Store, 'db'>
  clock?: Clock
  /** When known (the server's CA), entry SPIFFE IDs must be in it. */
  trustDomain?: string
  /**
   * Called after each committed change (the entry mirror, the inventory), with the entry as it
   * was before a delete. Errors are ignored.
   */
  onChange?: (delta: EntryDelta, deleted?: RegistrationEntry) => void
  /** Where `entry.created` / `entry.updated` / `entry.deleted` are recorded (durable on return). */
  events?: EventSink
  /**
   * Governance policy (src/policy/governance): checked before a create or an update is written;
   * a violation is refused with TSR_POLICY_VIOLATION naming the rule and the fix.
   */
  governance?: {
    checkEntry(
      entry: { spiffeId: string; owner: string; x509SvidTtl?: number; jwtSvidTtl?: number },
      ctx?: { actor?: string },
    ): Promise<void>
  }
}

type Row = Selectable<RegistrationEntryTable>

/**
 * Every writer takes this transaction-level lock before drawing a revision, so revisions commit in
 * the order they are drawn. A reader polling `revision > last` therefore never skips a revision that
 * commits late (a plain sequence would allow that under concurrent writers).
 */
const writeLock = sql`select pg_advisory_xact_lock(hashtext('tessera.registration_entry'))`

export function createEntries(deps: EntriesDeps): Entries {
  const clock = deps.clock ?? systemClock
  const db = deps.store.db

  function validate(input: EntryInput): Omit<RegistrationEntry, 'id' | 'revision'> {
    if (typeof input !== 'object' || input === null) {
      throw new TesseraError('TSR_VALIDATION', 'an entry must be an object')
    }
    const owner = checkOwner(input.owner)
    const spiffeId = checkEntrySpiffeId(input.spiffeId, 'spiffeId', deps.trustDomain)
    const parentId = checkEntrySpiffeId(input.parentId, 'parentId', deps.trustDomain)
    if (parentId === spiffeId) {
      throw new TesseraError('TSR_VALIDATION', 'parentId: an entry cannot be its own parent', {
        details: { field: 'parentId' },
      })
    }
    const entry: Omit<RegistrationEntry, 'id' | 'revision'> = {
      spiffeId,
      parentId,
      selectors: normaliseSelectors(input.selectors),
      dnsNames: checkDnsNames(input.dnsNames ?? []),
      federatesWith: checkFederatesWith(input.federatesWith ?? [], deps.trustDomain),
      admin: checkBool(input.admin ?? false, 'admin'),
      downstream: checkBool(input.downstream ?? false, 'downstream'),
      owner,
    }
    if (input.x509SvidTtl !== undefined) {
      entry.x509SvidTtl = checkTtl(input.x509SvidTtl, 'x509SvidTtl', entryLimits.maxX509TtlSeconds)
    }
    if (input.jwtSvidTtl !== undefined) {
      entry.jwtSvidTtl = checkTtl(input.jwtSvidTtl, 'jwtSvidTtl', entryLimits.maxJwtTtlSeconds)
    }
    if (input.hint !== undefined) entry.hint = checkHint(input.hint)
    if (input.expiresAt !== undefined) {
      if (!(input.expiresAt instanceof Date) || Number.isNaN(input.expiresAt.getTime())) {
        throw new TesseraError('TSR_VALIDATION', 'expiresAt: must be an instant', {
          details: { field: 'expiresAt' },
        })
      }
      entry.expiresAt = input.expiresAt
    }
    return entry
  }

  async function assertUnique(
    trx: Kysely<Database>,
    entry: Omit<RegistrationEntry, 'id' | 'revision'>,
    exceptId?: string,
  ): Promise<void> {
    // Same SPIFFE ID, parent and selector set twice would make two identical identities.
    let q = trx
      .selectFrom('registration_entry')
      .select('id')
      .where('valid_to', 'is', null)
      .where('deleted', '=', false)
      .where('spiffe_id', '=', entry.spiffeId)
      .where('parent_id', '=', entry.parentId)
      .where(sql<boolean>`selectors = ${JSON.stringify(entry.selectors)}::jsonb`)
    if (exceptId !== undefined) q = q.where('id', '!=', exceptId)
    const dup = await q.executeTakeFirst()
    if (dup) {
      throw new TesseraError(
        'TSR_CONFLICT',
        `an entry with this spiffeId, parentId and selectors exists already (${dup.id})`,
        { details: { existingId: dup.id } },
      )
    }
  }

  async function insertVersion(
    trx: Kysely<Database>,
    id: string,
    entry: Omit<RegistrationEntry, 'id' | 'revision'>,
    now: Date,
    ctx: ChangeContext | undefined,
    deleted = false,
  ): Promise<Row> {
    return trx
      .insertInto('registration_entry')
      .values({
        id,
        spiffe_id: entry.spiffeId,
        parent_id: entry.parentId,
        selectors: JSON.stringify(entry.selectors),
        x509_svid_ttl: entry.x509SvidTtl ?? null,
        jwt_svid_ttl: entry.jwtSvidTtl ?? null,
        dns_names: entry.dnsNames,
        federates_with: entry.federatesWith,
        hint: entry.hint ?? null,
        admin: entry.admin,
        downstream: entry.downstream,
        owner_ref: entry.owner,
        expires_at: entry.expiresAt ?? null,
        created_by: ctx?.actor ?? null,
        valid_from: now,
        deleted,
      })
      .returningAll()
      .executeTakeFirstOrThrow()
  }

  async function closeCurrent(trx: Kysely<Database>, id: string, now: Date): Promise<Row> {
    const current = await trx
      .selectFrom('registration_entry')
      .selectAll()
      .where('id', '=', id)
      .where('valid_to', 'is', null)
      .where('deleted', '=', false)
      .forUpdate()
      .executeTakeFirst()
    if (!current) throw notFound(id)
    await trx
      .updateTable('registration_entry')
      .set({ valid_to: now })
      .where('version_id', '=', current.version_id)
      .execute()
    return current
  }

  const audit = async (
    type: 'entry.created' | 'entry.updated' | 'entry.deleted',
    entry: RegistrationEntry,
    revision: number,
    ctx: ChangeContext | undefined,
  ) => {
    if (!deps.events) return
    await deps.events.append({
      type,
      ...(ctx?.actor ? { actor: ctx.actor } : {}),
      subject: entry.spiffeId,
      resource: `entry:${entry.id}`,
      action: type.slice('entry.'.length),
      data: {
        id: entry.id,
        revision,
        parentId: entry.parentId,
        selectors: entry.selectors,
        owner: entry.owner,
      },
    })
  }

  const notify = (delta: EntryDelta, deleted?: RegistrationEntry) => {
    try {
      deps.onChange?.(delta, deleted)
    } catch {
      // a listener's failure is its own
    }
  }

  return {
    async create(input, ctx) {
      const entry = validate(input)
      if (entry.expiresAt && entry.expiresAt.getTime() <= clock.now().getTime()) {
        throw new TesseraError('TSR_VALIDATION', 'expiresAt: must be in the future', {
          details: { field: 'expiresAt' },
        })
      }
      await deps.governance?.checkEntry(entry, ctx?.actor !== undefined ? { actor: ctx.actor } : {})
      const row = await db.transaction().execute(async (trx) => {
        await writeLock.execute(trx)
        await assertUnique(trx, entry)
        return insertVersion(trx, randomUUID(), entry, clock.now(), ctx)
      })
      const created = toEntry(row)
      notify({ op: 'upsert', revision: created.revision, entry: created })
      await audit('entry.created', created, created.revision, ctx)
      return created
    },

    async update(id, patch, ctx) {
      checkId(id)
      if (typeof patch !== 'object' || patch === null) {
        throw new TesseraError('TSR_VALIDATION', 'a change must be an object')
      }
      if (deps.governance) {
        // Checked before the write transaction: the check reads the store itself.
        const before = await db
          .selectFrom('registration_entry')
          .selectAll()
          .where('id', '=', id)
          .where('valid_to', 'is', null)
          .where('deleted', '=', false)
          .executeTakeFirst()
        if (!before) throw notFound(id)
        const next = validate(applyPatch(toEntry(before), patch))
        await deps.governance.checkEntry(next, ctx?.actor !== undefined ? { actor: ctx.actor } : {})
      }
      const row = await db.transaction().execute(async (trx) => {
        await writeLock.execute(trx)
        const now = clock.now()
        const current = toEntry(await closeCurrent(trx, id, now))
        const merged = validate(applyPatch(current, patch))
        await assertUnique(trx, merged, id)
        return insertVersion(trx, id, merged, now, ctx)
      })
      const updated = toEntry(row)
      notify({ op: 'upsert', revision: updated.revision, entry: updated })
      await audit('entry.updated', updated, updated.revision, ctx)
      return updated
    },

    async delete(id, ctx) {
      checkId(id)
      const [row, current] = await db.transaction().execute(async (trx) => {
        await writeLock.execute(trx)
        const now = clock.now()
        const current = toEntry(await closeCurrent(trx, id, now))
        // The tombstone keeps the last content, so history shows what was deleted.
        return [await insertVersion(trx, id, current, now, ctx, true), current] as const
      })
      notify({ op: 'delete', revision: row.revision, id }, current)
      await audit('entry.deleted', current, row.revision, ctx)
      return { id, revision: row.revision }
    },

    async get(id) {
      if (!isUuid(id)) return undefined
      const row = await db
        .selectFrom('registration_entry')
        .selectAll()
        .where('id', '=', id)
        .where('valid_to', 'is', null)
        .where('deleted', '=', false)
        .executeTakeFirst()
      return row && toEntry(row)
    },

    async list(filter: EntryFilter = {}) {
      const limit = filter.limit ?? 100
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new TesseraError('TSR_VALIDATION', 'limit: must be from 1 to 1000')
      }
      let q = db
        .selectFrom('registration_entry')
        .selectAll()
        .where('valid_to', 'is', null)
        .where('deleted', '=', false)
      if (filter.spiffeId !== undefined) q = q.where('spiffe_id', '=', filter.spiffeId)
      if (filter.parentId !== undefined) q = q.where('parent_id', '=', filter.parentId)
      if (filter.owner !== undefined) q = q.where('owner_ref', '=', filter.owner)
      if (filter.selector !== undefined) {
        const s = checkSelector(filter.selector)
        q = q.where(sql<boolean>`selectors @> ${JSON.stringify([s])}::jsonb`)
      }
      if (filter.cursor !== undefined) {
        const c = decodeEntryCursor(filter.cursor)
        q = q.where((eb) =>
          eb.or([
            eb('spiffe_id', '>', c.spiffeId),
            eb.and([eb('spiffe_id', '=', c.spiffeId), eb('id', '>', c.id)]),
          ]),
        )
      }
      const rows = await q
        .orderBy('spiffe_id')
        .orderBy('id')
        .limit(limit + 1)
        .execute()
      const items = rows.slice(0, limit).map(toEntry)
      const last = items.at(-1)
      return {
        items,
        nextCursor:
          rows.length > limit && last
            ? Buffer.from(JSON.stringify([last.spiffeId, last.id])).toString('base64url')
            : null,
      }
    },

    async changes(since, limit = 1000): Promise<EntryChanges> {
      if (!Number.isSafeInteger(since) || since < 0) {
        throw new TesseraError('TSR_VALIDATION', 'since: must be a revision (a whole number ≥ 0)')
      }
      const rows = await db
        .selectFrom('registration_entry')
        .selectAll()
        .where('revision', '>', since)
        .orderBy('revision')
        .limit(limit + 1)
        .execute()
      const page = rows.slice(0, limit)
      return {
        deltas: page.map(toDelta),
        revision: page.at(-1)?.revision ?? since,
        more: rows.length > limit,
      }
    },

    async latestRevision() {
      const row = await db
        .selectFrom('registration_entry')
        .select((eb) => eb.fn.max('revision').as('max'))
        .executeTakeFirst()
      return Number(row?.max ?? 0)
    },
  }
}

function applyPatch(current: RegistrationEntry, patch: EntryPatch): EntryInput {
  const has = (k: keyof EntryPatch) => Object.prototype.hasOwnProperty.call(patch, k)
  const next: EntryInput = {
    spiffeId: patch.spiffeId ?? current.spiffeId,
    parentId: patch.parentId ?? current.parentId,
    selectors: patch.selectors ?? current.selectors,
    owner: has('owner') ? (patch.owner as string) : current.owner,
    dnsNames: patch.dnsNames ?? current.dnsNames,
    federatesWith: patch.federatesWith ?? current.federatesWith,
    admin: patch.admin ?? current.admin,
    downstream: patch.downstream ?? current.downstream,
  }
  const optional = <K extends 'x509SvidTtl' | 'jwtSvidTtl' | 'hint' | 'expiresAt'>(k: K) => {
    const value = has(k) ? patch[k] : current[k]
    if (value !== null && value !== undefined) (next as unknown as Record<K, unknown>)[k] = value
  }
  optional('x509SvidTtl')
  optional('jwtSvidTtl')
  optional('hint')
  optional('expiresAt')
  return next
}

function checkBool(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') {
    throw new TesseraError('TSR_VALIDATION', `${field}: must be true or false`, {
      details: { field },
    })
  }
  return value
}

function checkId(id: string): void {
  if (!isUuid(id)) throw notFound(id)
}

function notFound(id: string): TesseraError {
  return new TesseraError('TSR_NOT_FOUND', `no registration entry ${JSON.stringify(id)}`)
}

function decodeEntryCursor(cursor: string): { spiffeId: string; id: string } {
  const bad = new TesseraError('TSR_VALIDATION', 'invalid cursor', { details: { field: 'cursor' } })
  if (!/^[A-Za-z0-9_-]{1,4096}$/.test(cursor)) throw bad
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      typeof value[1] === 'string' &&
      isUuid(value[1])
    ) {
      return { spiffeId: value[0], id: value[1] }
    }
  } catch {
    // falls through
  }
  throw bad
}

export function toEntry(row: Row): RegistrationEntry {
  const selectors = (typeof row.selectors === 'string'
    ? JSON.parse(row.selectors)
    : row.selectors) as unknown as RegistrationEntry['selectors']
  const entry: RegistrationEntry = {
    id: row.id,
    revision: Number(row.revision),
    spiffeId: row.spiffe_id,
    parentId: row.parent_id,
    selectors,
    dnsNames: row.dns_names,
    federatesWith: row.federates_with,
    admin: row.admin,
    downstream: row.downstream,
    owner: row.owner_ref,
  }
  if (row.x509_svid_ttl !== null) entry.x509SvidTtl = row.x509_svid_ttl
  if (row.jwt_svid_ttl !== null) entry.jwtSvidTtl = row.jwt_svid_ttl
  if (row.hint !== null) entry.hint = row.hint
  if (row.expires_at !== null) entry.expiresAt = row.expires_at
  return entry
}

export function toDelta(row: Row): EntryDelta {
  // A closed version is still the state that revision produced; replaying in order is exact.
  return row.deleted
    ? { op: 'delete', revision: Number(row.revision), id: row.id }
    : { op: 'upsert', revision: Number(row.revision), entry: toEntry(row) }
}
