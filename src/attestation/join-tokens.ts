import { createHash, randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import { TesseraError } from '../errors.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import type { Database } from '../store/schema.js'
import type { Store } from '../store/store.js'

/**
 * Join tokens: single-use secrets an operator hands to one agent. A token is `tjt_` + 32 random
 * bytes (base64url); only its SHA-256 is stored (256 bits of entropy leave nothing to brute-force).
 */

export const joinTokenLimits = {
  defaultTtlSeconds: 600,
  minTtlSeconds: 10,
  maxTtlSeconds: 30 * 86_400,
} as const

const tokenPattern = /^tjt_[A-Za-z0-9_-]{43}$/

export interface CreatedJoinToken {
  /** The secret; shown this once. */
  token: string
  expiresAt: string
}

export function hashJoinToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

export async function createJoinToken(
  store: Pick<Store, 'db'>,
  input: { ttlSeconds?: number; createdBy?: string } = {},
  clock: Clock = systemClock,
): Promise<CreatedJoinToken> {
  const ttl = input.ttlSeconds ?? joinTokenLimits.defaultTtlSeconds
  if (
    !Number.isInteger(ttl) ||
    ttl < joinTokenLimits.minTtlSeconds ||
    ttl > joinTokenLimits.maxTtlSeconds
  ) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `ttlSeconds: must be a whole number from ${joinTokenLimits.minTtlSeconds} to ${joinTokenLimits.maxTtlSeconds}`,
      { details: { field: 'ttlSeconds' } },
    )
  }
  const token = `tjt_${randomBytes(32).toString('base64url')}`
  const now = clock.now()
  const expiresAt = new Date(now.getTime() + ttl * 1000)
  await store.db
    .insertInto('join_token')
    .values({
      token_hash: hashJoinToken(token),
      expires_at: expiresAt,
      created_at: now,
      created_by: input.createdBy ?? null,
    })
    .execute()
  return { token, expiresAt: expiresAt.toISOString() }
}

export type JoinTokenFailure = 'malformed' | 'unknown' | 'used' | 'expired'

/**
 * Consumes a token atomically: one UPDATE that only matches an unused, unexpired token, so two
 * agents racing with the same token cannot both win. Returns the failure reason otherwise.
 */
export async function consumeJoinToken(
  db: Kysely<Database>,
  token: string,
  agentId: string,
  now: Date,
): Promise<{ ok: true } | { ok: false; reason: JoinTokenFailure }> {
  if (typeof token !== 'string' || !tokenPattern.test(token)) {
    return { ok: false, reason: 'malformed' }
  }
  const hash = hashJoinToken(token)
  const used = await db
    .updateTable('join_token')
    .set({ used_at: now, used_by_agent: agentId })
    .where('token_hash', '=', hash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .returning('token_hash')
    .executeTakeFirst()
  if (used) return { ok: true }
  const row = await db
    .selectFrom('join_token')
    .select(['used_at', 'expires_at'])
    .where('token_hash', '=', hash)
    .executeTakeFirst()
  if (!row) return { ok: false, reason: 'unknown' }
  if (row.used_at !== null) return { ok: false, reason: 'used' }
  return { ok: false, reason: 'expired' }
}
