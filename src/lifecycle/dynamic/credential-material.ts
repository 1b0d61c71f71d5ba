import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'

/** Every dynamic username starts with this; the prefix is reserved in each backend. */
export const dynamicUserPrefix = 'tsr_'

/** PostgreSQL's identifier limit (NAMEDATALEN - 1). */
export const maxUsernameLength = 63

/**
 * `tsr_<10 hex of sha256(SPIFFE ID)>_<12 random base32>`: the same workload always has the same
 * middle part, so a database log line (`%u`) names the workload; the random tail keeps leases apart.
 */
export function dynamicUsername(
  spiffeId: string,
  random: (n: number) => Buffer = randomBytes,
  installation?: string,
) {
  return `${userPrefixOf(installation)}${workloadTag(spiffeId)}_${base32(random(8)).slice(0, 12)}`
}

/**
 * The prefix of one installation's users: `tsr_`, or `tsr_<installation>_` when the backend is
 * shared (the orphan sweep then only ever looks at its own installation's users).
 */
export function userPrefixOf(installation?: string): string {
  if (installation === undefined) return dynamicUserPrefix
  if (!/^[a-z0-9]{1,8}$/.test(installation)) {
    throw new Error('an installation tag is 1 to 8 of [a-z0-9]')
  }
  return `${dynamicUserPrefix}${installation}_`
}

/** The workload part of a dynamic username. */
export function workloadTag(spiffeId: string): string {
  return createHash('sha256').update(spiffeId, 'utf8').digest('hex').slice(0, 10)
}

/** 32 random bytes, base64url: 43 characters of [A-Za-z0-9_-], safe in any quoting. */
export function dynamicPassword(random: (n: number) => Buffer = randomBytes): string {
  return random(32).toString('base64url')
}

const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
function base32(bytes: Buffer): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const b of bytes) {
    value = (value << 8) | b
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31]
  return out
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802, RFC 7677), computed here
 * so the clear password never travels in a `CREATE ROLE` statement (which `log_statement = ddl`
 * would log). PostgreSQL accepts a verifier in this form in place of the password.
 */
export function scramSha256Verifier(
  password: string,
  options: { iterations?: number; salt?: Buffer } = {},
): string {
  const iterations = options.iterations ?? 4096
  const salt = options.salt ?? randomBytes(16)
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}

/** Redis's `#<hash>` ACL password form: SHA-256 of the password in hex (the clear one is never sent). */
export function redisPasswordHash(password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('hex')
}
