/**
 * The seam behind just-in-time credentials: one backend per system that can mint a short-lived
 * login for one workload (docs/dynamic-credentials.md). Built-ins: `postgres` (a LOGIN role granted
 * a template role) and `redis` (an ACL user with the template's rules). Every operation is
 * idempotent, because the reaper retries it after a crash at any point.
 */
export interface DynamicBackend {
  readonly type: DynamicBackendType
  /** The configured name (`POST /v1/dynamic/{name}`). */
  readonly name: string
  /** Template names this backend can grant. */
  readonly templates: readonly string[]
  /** Creates `username` with `password`, the template's rights, valid until `expiresAt`. */
  create(request: DynamicCreateRequest): Promise<void>
  /**
   * Removes `username` and ends its live sessions. Succeeds when the user does not exist (already
   * revoked, or never created because of a crash before creation).
   */
  revoke(username: string): Promise<{ sessionsTerminated: number }>
  /** Every user this backend holds whose name starts with `prefix` and that Tessera made. */
  listManaged(prefix: string): Promise<string[]>
  /** Live sessions per username (the use Tessera can observe), for the given users. */
  sessions(usernames: readonly string[]): Promise<Map<string, number>>
  /** Where a workload connects (no secrets): host, port, database. */
  readonly connection: Readonly<Record<string, string | number>>
  close(): Promise<void>
}

export const dynamicBackendTypes = ['postgres', 'redis'] as const
export type DynamicBackendType = (typeof dynamicBackendTypes)[number]

export interface DynamicCreateRequest {
  username: string
  password: string
  template: string
  spiffeId: string
  leaseId: string
  expiresAt: Date
}
