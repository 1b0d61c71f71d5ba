import type { Clock } from '../../runtime/clock.js'

/**
 * The `Rotator` seam (DESIGN §3, docs/rotation.md): how one kind of system changes a credential.
 * The rotation engine (engine.ts) drives a rotator through `create → verify → activate → (grace) →
 * revoke` and records each step in the store, so every method must be idempotent: after a crash the
 * engine calls the interrupted method again with the same arguments.
 *
 * A credential version is its secret `value` (what consumers read; sealed at rest, never logged) and
 * its `meta`, the non-secret facts a rotator needs later (a login role name, an access key id).
 */
export interface CredentialVersion {
  value: string
  meta: Record<string, unknown>
}

export interface RotationContext {
  secretName: string
  rotationId: string
  /** The version consumers hold now; undefined when the secret was put under management blind. */
  current: CredentialVersion | undefined
  /** True when this step already ran for this rotation and is being resumed after a failure. */
  resumed: boolean
}

export interface Rotator {
  readonly kind: RotatorKind
  /**
   * Makes a new credential beside the current one; the current one keeps working. Run again after
   * a crash, it must not leave a second new credential behind (replace or delete the orphan).
   */
  create(ctx: RotationContext): Promise<CredentialVersion>
  /** Proves the new credential works against the real system; throws when it does not. */
  verify(ctx: RotationContext, next: CredentialVersion): Promise<void>
  /**
   * The new credential becomes the primary one. The old one must keep working until `graceUntil`
   * (a rotator may stage its expiry there, e.g. PostgreSQL `VALID UNTIL`).
   */
  activate(ctx: RotationContext, next: CredentialVersion, graceUntil: Date): Promise<void>
  /**
   * Removes `drop` and leaves `keep` working. Called after the grace period with the old version as
   * `drop`, and to roll back a rotation that failed before activation with the new one as `drop`.
   */
  revoke(
    ctx: RotationContext,
    keep: CredentialVersion | undefined,
    drop: CredentialVersion,
  ): Promise<void>
  /** Releases connections the rotator holds. */
  close?(): Promise<void>
}

export const rotatorKinds = ['pg', 'redis', 'http', 'aws-iam'] as const
export type RotatorKind = (typeof rotatorKinds)[number]

export interface RotatorDeps {
  clock: Clock
  random: (n: number) => Buffer
  fetch?: typeof fetch
  /** Waits between retries; tests pass a fast one. */
  sleep?: (ms: number) => Promise<void>
}

/**
 * A rotator kind: validates its own configuration slice (every problem at once, TSR_VALIDATION),
 * names the fields that are secret (sealed with the value, never shown), and builds the rotator.
 */
export interface RotatorModule<C> {
  kind: RotatorKind
  parseConfig(config: unknown): C
  secretFields: readonly string[]
  create(config: C, deps: RotatorDeps): Rotator
}

export const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
