import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { sql } from 'kysely'
import { TesseraError } from '../../errors.js'
import { systemClock, type Clock } from '../../runtime/clock.js'
import { tokenScopes, type ApiTokenRow, type TokenScope } from '../../store/schema.js'
import type { Store } from '../../store/store.js'

/**
 * API tokens for callers of the control plane. A token is `tsr_<id>_<secret>`: the id finds the
 * row, the secret (32 random bytes, base64url) proves possession. Only a SHA-256 of the whole token
 * is stored; a fast hash is enough because the secret has 256 bits of entropy, so there is nothing to
 * brute-force.
 */

export interface ApiTokenView {
  id: string
  name: string
  scopes: TokenScope[]
  createdAt: string
  expiresAt: string | null
  lastUsedAt: string | null
  revokedAt: string | null
}

export interface CreatedApiToken {
  id: string
  name: string
  scopes: TokenScope[]
  expiresAt: string | null
  /** The bearer token. It exists only here: the store keeps its hash. */
  token: string
}

export interface VerifiedApiToken {
  id: string
  name: string
  scopes: TokenScope[]
}

export type TokenVerification =
  | { ok: true; token: VerifiedApiToken }
  | { ok: false; reason: 'malformed' | 'unknown' | 'revoked' | 'expired' }

const tokenPrefix = 'tsr_'
const idPattern = /^[0-9a-f]{16}$/
const secretPattern = /^[A-Za-z0-9_-]{43,128}$/
const namePattern = /^[\w.@:-]{1,100}$/
/** `last_used_at` is refreshed at most this often, so reads do not turn into a write each. */
const lastUsedResolutionMs = 60_000

// authz (asking for decisions) is the narrowest: every other scope implies it.
// scim stands below everything: it satisfies no other scope, not even authz.
const scopeRank: Record<TokenScope, number> = { read: 1, write: 2, admin: 3, authz: 0, scim: -1 }

/**
 * admin implies write implies read. `scim` (an IdP pushing people and teams) stands apart: only a
 * scim or admin token reaches the SCIM endpoint, and a scim token reaches nothing else.
 */
export function scopeAllows(granted: readonly TokenScope[], needed: TokenScope): boolean {
  if (needed === 'scim') return granted.includes('scim') || granted.includes('admin')
  return granted.some((s) => scopeRank[s] >= scopeRank[needed])
}

export async function createApiToken(
  store: Store,
  input: { name: string; scopes: readonly TokenScope[]; ttlSeconds?: number },
  clock: Clock = systemClock,
): Promise<CreatedApiToken> {
  if (!namePattern.test(input.name)) {
    throw new TesseraError(
      'TSR_VALIDATION',
      'token name must be 1-100 characters of letters, digits, and _ . @ : -',
    )
  }
  const scopes = normaliseScopes(input.scopes)
  const ttl = input.ttlSeconds
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 60 || ttl > 10 * 365 * 86_400)) {
    throw new TesseraError('TSR_VALIDATION', 'ttlSeconds must be an integer from 60 to 315360000')
  }
  const id = randomBytes(8).toString('hex')
  const token = `${tokenPrefix}${id}_${randomBytes(32).toString('base64url')}`
  const now = clock.now()
  const expiresAt = ttl === undefined ? null : new Date(now.getTime() + ttl * 1000)
  await store.db
    .insertInto('api_token')
    .values({
      id,
      name: input.name,
      token_hash: hashToken(token),
      scopes,
      created_at: now,
      expires_at: expiresAt,
    })
    .execute()
  return { id, name: input.name, scopes, expiresAt: expiresAt?.toISOString() ?? null, token }
}

/** Checks a presented token; never throws for a bad token, only for a store failure. */
export async function verifyApiToken(
  store: Store,
  presented: string,
  clock: Clock = systemClock,
): Promise<TokenVerification> {
  const parsed = parseToken(presented)
  if (!parsed) return { ok: false, reason: 'malformed' }
  const row = await store.db
    .selectFrom('api_token')
    .selectAll()
    .where('id', '=', parsed.id)
    .executeTakeFirst()
  // Compare even when the row is missing so the timing says nothing about which ids exist.
  const expected = Buffer.from(row?.token_hash ?? '0'.repeat(64), 'hex')
  const actual = Buffer.from(hashToken(presented), 'hex')
  const matches = timingSafeEqual(expected, actual)
  if (!row || !matches) return { ok: false, reason: 'unknown' }
  const now = clock.now()
  if (row.revoked_at !== null) return { ok: false, reason: 'revoked' }
  if (row.expires_at !== null && row.expires_at.getTime() <= now.getTime()) {
    return { ok: false, reason: 'expired' }
  }
  if (
    row.last_used_at === null ||
    now.getTime() - row.last_used_at.getTime() >= lastUsedResolutionMs
  ) {
    await store.db
      .updateTable('api_token')
      .set({ last_used_at: now })
      .where('id', '=', row.id)
      .execute()
  }
  return { ok: true, token: { id: row.id, name: row.name, scopes: row.scopes } }
}

export async function listApiTokens(store: Store): Promise<ApiTokenView[]> {
  const rows = await store.db
    .selectFrom('api_token')
    .select(['id', 'name', 'scopes', 'created_at', 'expires_at', 'last_used_at', 'revoked_at'])
    .orderBy('created_at')
    .orderBy('id')
    .execute()
  return rows.map(toView)
}

/** Revokes a token; revoking an already revoked token is a no-op. Unknown id → TSR_NOT_FOUND. */
export async function revokeApiToken(
  store: Store,
  id: string,
  clock: Clock = systemClock,
): Promise<ApiTokenView> {
  const row = idPattern.test(id)
    ? await store.db
        .updateTable('api_token')
        .set((eb) => ({ revoked_at: eb.fn.coalesce('revoked_at', eb.val(clock.now())) }))
        .where('id', '=', id)
        .returning([
          'id',
          'name',
          'scopes',
          'created_at',
          'expires_at',
          'last_used_at',
          'revoked_at',
        ])
        .executeTakeFirst()
    : undefined
  if (!row) throw new TesseraError('TSR_NOT_FOUND', `no api token with id ${JSON.stringify(id)}`)
  return toView(row)
}

/**
 * Creates the `admin` token on first start: when no active token with the admin scope exists.
 * Returns it (the only time it is visible) or undefined when one exists already. An advisory lock
 * keeps two replicas starting together on one PostgreSQL from both minting one.
 */
export async function ensureAdminToken(
  store: Store,
  clock: Clock = systemClock,
): Promise<CreatedApiToken | undefined> {
  return store.db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext('tessera.ensure-admin-token'))`.execute(trx)
    const now = clock.now()
    const active = await trx
      .selectFrom('api_token')
      .select('id')
      .where(sql<boolean>`'admin' = any(scopes)`)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .limit(1)
      .executeTakeFirst()
    if (active) return undefined
    // Same transaction as the check, so the lock covers the insert.
    return createApiToken({ ...store, db: trx }, { name: 'admin', scopes: ['admin'] }, clock)
  })
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

function parseToken(presented: string): { id: string } | undefined {
  if (!presented.startsWith(tokenPrefix)) return undefined
  const rest = presented.slice(tokenPrefix.length)
  const sep = rest.indexOf('_')
  if (sep < 0) return undefined
  const id = rest.slice(0, sep)
  const secret = rest.slice(sep + 1)
  if (!idPattern.test(id) || !secretPattern.test(secret)) return undefined
  return { id }
}

function normaliseScopes(scopes: readonly TokenScope[]): TokenScope[] {
  if (scopes.length === 0)
    throw new TesseraError('TSR_VALIDATION', 'a token needs at least one scope')
  for (const s of scopes) {
    if (!tokenScopes.includes(s)) {
      throw new TesseraError(
        'TSR_VALIDATION',
        `unknown scope ${JSON.stringify(s)}; expected one of ${tokenScopes.join(', ')}`,
      )
    }
  }
  return tokenScopes.filter((s) => scopes.includes(s))
}

function toView(
  row: Pick<
    ApiTokenRow,
    'id' | 'name' | 'scopes' | 'created_at' | 'expires_at' | 'last_used_at' | 'revoked_at'
  >,
): ApiTokenView {
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes,
    createdAt: row.created_at.toISOString(),
    expiresAt: row.expires_at?.toISOString() ?? null,
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
    revokedAt: row.revoked_at?.toISOString() ?? null,
  }
}
