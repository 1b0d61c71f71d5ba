import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import { entityId } from '../../src/inventory/ids.js'
import type { Store } from '../../src/store/index.js'

/**
 * Writes versioned facts and audit rows exactly as given (valid_from / valid_to included), so a
 * test can lay out a timeline to the millisecond. The hash chain is not this helper's business:
 * the event rows carry placeholder hashes.
 */
export interface FactVersion {
  ref: string
  source?: string
  from: string
  to?: string
  attributes?: Record<string, unknown>
}

const base = (f: FactVersion) => ({
  ref: f.ref,
  source: f.source ?? 'test',
  valid_from: f.from,
  valid_to: f.to ?? null,
  last_seen_at: f.from,
  content_hash: createHash('sha256').update(JSON.stringify(f)).digest('hex'),
  attributes: JSON.stringify(f.attributes ?? {}),
})

export async function addIdentity(
  store: Store,
  f: FactVersion & { kind?: string; name?: string; state?: string; owner?: string },
): Promise<string> {
  const id = entityId('identity', f.ref)
  await store.db
    .insertInto('identity')
    .values({
      id,
      ...base(f),
      kind: (f.kind ?? 'workload') as never,
      name: f.name ?? f.ref,
      state: f.state ?? 'active',
      owner_ref: f.owner ?? null,
    } as never)
    .execute()
  return id
}

export async function addCredential(
  store: Store,
  f: FactVersion & {
    identity: string
    type?: string
    expiresAt?: string
    createdAt?: string
    state?: string
    fingerprint?: string
  },
): Promise<string> {
  const id = entityId('credential', f.ref)
  await store.db
    .insertInto('credential')
    .values({
      id,
      ...base(f),
      identity_id: entityId('identity', f.identity),
      identity_ref: f.identity,
      credential_type: f.type ?? 'access_key',
      expires_at: f.expiresAt ?? null,
      created_at: f.createdAt ?? null,
      state: f.state ?? 'active',
      fingerprint: f.fingerprint ?? null,
    } as never)
    .execute()
  return id
}

export async function addGrant(
  store: Store,
  f: Omit<FactVersion, 'ref'> & {
    identity: string
    resource: string
    actions: string[]
    via?: string
  },
): Promise<void> {
  const ref = JSON.stringify([f.identity, f.resource, f.via ?? null])
  await store.db
    .insertInto('grant')
    .values({
      id: entityId('grant', ref),
      ...base({ ...f, ref }),
      identity_id: entityId('identity', f.identity),
      identity_ref: f.identity,
      resource_id: entityId('resource', f.resource),
      resource_ref: f.resource,
      actions: f.actions,
      via: f.via ?? null,
    } as never)
    .execute()
}

let seq = 0
export async function addEvent(
  store: Store,
  e: {
    at: string
    type: string
    subject?: string
    resource?: string
    action?: string
    decision?: string
    data?: Record<string, unknown>
  },
): Promise<void> {
  seq++
  await sql`
    insert into event (seq, at, event_type, subject, resource, action, decision, data, prev_hash, hash)
    values (${seq}, ${e.at}::timestamptz, ${e.type}, ${e.subject ?? null}, ${e.resource ?? null},
      ${e.action ?? null}, ${e.decision ?? null}, ${JSON.stringify(e.data ?? {})}::jsonb, 'x', 'x')
  `.execute(store.db)
}

export async function addUsage(
  store: Store,
  u: {
    identity: string
    resource: string
    action: string
    hour: string
    count: number
    source?: string
  },
): Promise<void> {
  await store.db
    .insertInto('usage')
    .values({
      identity_id: entityId('identity', u.identity),
      identity_ref: u.identity,
      resource_ref: u.resource,
      action: u.action,
      hour: u.hour,
      count: u.count,
      source: u.source ?? 'test',
    })
    .execute()
}
