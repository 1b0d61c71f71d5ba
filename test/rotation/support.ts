import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createClient } from 'redis'
import { createMemoryEventSink, type EventSink } from '../../src/audit/event-sink.js'
import { createEnvelopeSealer } from '../../src/ca/envelope.js'
import { kekIdOf } from '../../src/ca/key-manager.js'
import type { Rotator } from '../../src/lifecycle/rotation/rotator.js'
import type {
  FindingInput,
  FindingReporter,
  FindingReportResult,
} from '../../src/posture/finding-types.js'

export const pgAdminUrl =
  process.env.TESSERA_ROTATION_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/tessera_rotation'
export const redisAdminUrl = process.env.TESSERA_ROTATION_REDIS_URL ?? 'redis://127.0.0.1:6379'

export const testKek = randomBytes(32)
export const testSealer = () => createEnvelopeSealer(testKek, kekIdOf(testKek))

const suffix = () => randomBytes(4).toString('hex')

/** A NOLOGIN group role with SELECT/INSERT on a table of its own, in the local PostgreSQL. */
export async function pgFixture() {
  const role = `tsr_rot_${suffix()}`
  const table = `${role}_t`
  const admin = new pg.Client({ connectionString: pgAdminUrl })
  await admin.connect()
  await admin.query(`create role ${role} nologin`)
  await admin.query(`create table ${table} (n integer)`)
  await admin.query(`grant select, insert on ${table} to ${role}`)
  return {
    role,
    table,
    logins: [`${role}_a`, `${role}_b`] as const,
    admin,
    /** Login rights and the password verifier the real server holds for a role. */
    async roleState(name: string) {
      const r = await admin.query<{ rolcanlogin: boolean; rolpassword: string | null }>(
        'select rolcanlogin, rolpassword from pg_authid where rolname = $1',
        [name],
      )
      return r.rows[0]
    },
    async cleanup() {
      await admin.query(`drop table if exists ${table}`)
      for (const r of [`${role}_a`, `${role}_b`, role]) {
        await admin.query(
          `select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`,
          [r],
        )
        await admin.query(`drop role if exists ${r}`)
      }
      await admin.end()
    },
  }
}

/** An ACL user `tsr_rot_<hex>` with password `initial` and rights on its own keys, in local Redis. */
export async function redisFixture() {
  const username = `tsr_rot_${suffix()}`
  const initial = randomBytes(18).toString('base64url')
  const admin = createClient({ url: redisAdminUrl })
  admin.on('error', () => {})
  await admin.connect()
  await admin.sendCommand([
    'ACL',
    'SETUSER',
    username,
    'on',
    `>${initial}`,
    `~${username}:*`,
    '+@read',
    '+@write',
    '+ping',
  ])
  return {
    username,
    initial,
    /** Whether `password` authenticates as the user now (a fresh connection). */
    async works(password: string): Promise<boolean> {
      const c = createClient({
        url: redisAdminUrl,
        username,
        password,
        socket: { reconnectStrategy: false },
      })
      c.on('error', () => {})
      try {
        await c.connect()
        await c.set(`${username}:probe`, '1')
        return true
      } catch {
        return false
      } finally {
        await c.close().catch(() => {})
      }
    },
    /** How many passwords the ACL user holds. */
    async passwordCount(): Promise<number> {
      const info: unknown = await admin.sendCommand(['ACL', 'GETUSER', username])
      // RESP2 answers a flat list, RESP3 a map.
      if (Array.isArray(info)) {
        const i = info.findIndex((v) => String(v) === 'passwords')
        return (info[i + 1] as unknown[]).length
      }
      if (info instanceof Map) return (info.get('passwords') as unknown[]).length
      return ((info as Record<string, unknown[]>).passwords ?? []).length
    },
    async cleanup() {
      await admin.sendCommand(['ACL', 'DELUSER', username])
      await admin.close()
    },
  }
}

export type CrashPoint = {
  method: 'create' | 'verify' | 'activate' | 'revoke'
  when: 'before' | 'after'
}

/**
 * Wraps a real rotator so that one call "crashes": it throws before touching the system, or after
 * the system changed but before the engine could record it. Only the first matching call crashes.
 */
export function crashingRotator(inner: Rotator, at: CrashPoint): Rotator {
  let crashed = false
  const wrap =
    <A extends unknown[]>(method: CrashPoint['method'], fn: (...a: A) => Promise<unknown>) =>
    async (...args: A) => {
      const crash = !crashed && method === at.method
      if (crash && at.when === 'before') {
        crashed = true
        throw new Error(`injected crash before ${method}`)
      }
      const out = await fn(...args)
      if (crash) {
        crashed = true
        throw new Error(`injected crash after ${method}`)
      }
      return out
    }
  return {
    kind: inner.kind,
    create: wrap('create', (ctx) => inner.create(ctx)) as Rotator['create'],
    verify: wrap('verify', (ctx, n) => inner.verify(ctx, n)) as Rotator['verify'],
    activate: wrap('activate', (ctx, n, g) => inner.activate(ctx, n, g)) as Rotator['activate'],
    revoke: wrap('revoke', (ctx, k, d) => inner.revoke(ctx, k, d)) as Rotator['revoke'],
    close: () => inner.close?.() ?? Promise.resolve(),
  }
}

/** An event sink that crashes once, on the first `rotation.step` event for `action`. */
export function crashingEvents(action: string) {
  const inner = createMemoryEventSink()
  let crashed = false
  const sink: EventSink & { events: typeof inner.events } = {
    events: inner.events,
    async append(e) {
      await inner.append(e)
      if (!crashed && e.type === 'rotation.step' && e.action === action) {
        crashed = true
        throw new Error(`injected crash after the ${action} event`)
      }
    },
    appendMany: (b) => inner.appendMany(b),
  }
  return sink
}

/** A FindingReporter fake: keeps what each rule reported last. */
export function memoryFindings(): FindingReporter & { open: Map<string, FindingInput[]> } {
  const open = new Map<string, FindingInput[]>()
  return {
    open,
    async report(rule, findings): Promise<FindingReportResult> {
      const before = open.get(rule)?.length ?? 0
      open.set(rule, [...findings])
      return {
        opened: findings.length,
        updated: 0,
        resolved: Math.max(0, before - findings.length),
      }
    },
  }
}
