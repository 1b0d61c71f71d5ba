import { sql } from 'kysely'
import { entityId } from '../../inventory/ids.js'
import { lockInventory } from '../../inventory/ingest.js'
import type { Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/store.js'

/**
 * Sets an identity's state as a new version (the graph never changes a version in place): the
 * open version is closed at `now` and a copy with the new state opens. The copy keeps the content
 * hash, so the next discovery run that sees the identity unchanged does not undo the response; an
 * operator re-enables it. Returns the previous state, or undefined when there is no open version.
 */
export async function setIdentityState(
  store: Pick<Store, 'transaction'>,
  clock: Clock,
  ref: string,
  state: 'disabled' | 'quarantined' | 'active',
  reason: string,
): Promise<{ previous: string; changed: boolean } | undefined> {
  const id = entityId('identity', ref)
  const now = clock.now().toISOString()
  return store.transaction(async ({ db }) => {
    await lockInventory(db)
    const current = await db
      .selectFrom('identity')
      .select(['version_id', 'state', 'valid_from'])
      .where('id', '=', id)
      .where('valid_to', 'is', null)
      .executeTakeFirst()
    if (!current) return undefined
    if (current.state === state) return { previous: current.state, changed: false }
    // A version cannot close before it opened.
    const at =
      new Date(current.valid_from) > new Date(now)
        ? new Date(current.valid_from).toISOString()
        : now
    await sql`update identity set valid_to = ${at}::timestamptz where version_id = ${current.version_id}`.execute(
      db,
    )
    await sql`
      insert into identity (id, ref, source, valid_from, valid_to, last_seen_at, run_id, content_hash,
        attributes, kind, name, owner_ref, created_by, state, created_at, last_used_at)
      select id, ref, source, ${at}::timestamptz, null, last_seen_at, run_id, content_hash,
        attributes || jsonb_build_object('stateReason', ${reason}::text), kind, name, owner_ref,
        created_by, ${state}, created_at, last_used_at
      from identity where version_id = ${current.version_id}
    `.execute(db)
    return { previous: current.state, changed: true }
  })
}
