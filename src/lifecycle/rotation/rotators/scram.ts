import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto'

/**
 * PostgreSQL's SCRAM-SHA-256 password verifier (RFC 5802/7677, as `pg_authid.rolpassword` holds
 * it): `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64 parts. Sending the
 * verifier instead of the password in `ALTER ROLE … PASSWORD` keeps the password out of the
 * server's statement log; reading it back proves the role holds exactly our password.
 */
export function scramVerifier(password: string, salt: Buffer, iterations = 4096): string {
  const { storedKey, serverKey } = keys(password, salt, iterations)
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}

/** Whether `verifier` (from pg_authid) was made from `password`. */
export function scramMatches(verifier: string | null | undefined, password: string): boolean {
  const m =
    /^SCRAM-SHA-256\$(\d{1,7}):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(
      verifier ?? '',
    )
  if (!m) return false
  const iterations = Number(m[1])
  if (iterations < 1) return false
  const { storedKey, serverKey } = keys(password, Buffer.from(m[2]!, 'base64'), iterations)
  const s = Buffer.from(m[3]!, 'base64')
  const k = Buffer.from(m[4]!, 'base64')
  return (
    s.length === storedKey.length &&
    k.length === serverKey.length &&
    timingSafeEqual(s, storedKey) &&
    timingSafeEqual(k, serverKey)
  )
}

function keys(password: string, salt: Buffer, iterations: number) {
  // PostgreSQL applies SASLprep; our generated passwords are ASCII, for which it is the identity.
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return { storedKey, serverKey }
}
