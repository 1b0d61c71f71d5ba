import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import type { Store } from '../store/store.js'
import { keyBytes, parseKey } from './fingerprint.js'

/** The `setting` row holding the installation's fingerprint key (hex). */
export const scannerKeySetting = 'scanner.fingerprint_key'

/**
 * The installation's fingerprint key from the store, created on first use. It is not made by a
 * migration: the embedded store's migrated template is shared by every store on a machine, and
 * each installation must have its own key. Concurrent first uses agree on one key.
 */
export async function loadStoreKey(
  store: Store,
  random: (n: number) => Buffer = randomBytes,
): Promise<Buffer> {
  const fresh = random(keyBytes).toString('hex')
  await store.db
    .insertInto('setting')
    .values({ key: scannerKeySetting, value: sql`${JSON.stringify(fresh)}::jsonb` })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute()
  const row = await store.db
    .selectFrom('setting')
    .select('value')
    .where('key', '=', scannerKeySetting)
    .executeTakeFirstOrThrow()
  return parseKey(String(row.value), `setting ${scannerKeySetting}`)
}
