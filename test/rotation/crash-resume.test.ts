import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { GetAccessKeyLastUsedCommand, IAMClient } from '@aws-sdk/client-iam'
import pg from 'pg'
import { createMemoryEventSink, type EventSink } from '../../src/audit/event-sink.js'
import { buildRotator } from '../../src/lifecycle/rotation/rotator-registry.js'
import type { Rotator } from '../../src/lifecycle/rotation/rotator.js'
import { scramMatches } from '../../src/lifecycle/rotation/rotators/scram.js'
import {
  createSecretsService,
  type ManageInput,
} from '../../src/lifecycle/rotation/secrets-service.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { startFakeIam, type FakeIam } from './fake-iam.js'
import {
  crashingEvents,
  crashingRotator,
  pgAdminUrl,
  pgFixture,
  redisAdminUrl,
  redisFixture,
  testSealer,
  type CrashPoint,
} from './support.js'

const consumer = 'spiffe://example.org/app'
const graceMs = 60_000

/** A real system holding one credential, and how to check which values work in it. */
interface Target {
  input: Omit<ManageInput, 'name' | 'consumers' | 'periodSeconds' | 'graceSeconds'>
  /** Whether `value` authenticates against the system now. */
  works(value: string): Promise<boolean>
  /** How many credentials the system holds for the managed principal. */
  count(): Promise<number>
  /** A clean first rotation is needed to know the value (blind management). */
  blind: boolean
  cleanup(): Promise<void>
}

let iam: FakeIam

const targets: Record<'pg' | 'redis' | 'aws-iam', () => Promise<Target>> = {
  async pg() {
    const fx = await pgFixture()
    return {
      input: { rotator: 'pg', config: { adminUrl: pgAdminUrl, role: fx.role } },
      blind: true,
      async works(value) {
        const { username, password } = JSON.parse(value) as { username: string; password: string }
        const s = await fx.roleState(username)
        if (!s?.rolcanlogin || !scramMatches(s.rolpassword, password)) return false
        const url = new URL(pgAdminUrl)
        url.username = username
        url.password = password
        const c = new pg.Client({ connectionString: url.toString() })
        try {
          await c.connect()
          await c.query(`insert into ${fx.table} values (1)`)
          return true
        } catch {
          return false
        } finally {
          await c.end().catch(() => {})
        }
      },
      async count() {
        let n = 0
        for (const l of fx.logins) if ((await fx.roleState(l))?.rolcanlogin) n++
        return n
      },
      cleanup: () => fx.cleanup(),
    }
  },
  async redis() {
    const fx = await redisFixture()
    return {
      input: {
        rotator: 'redis',
        config: { adminUrl: redisAdminUrl, username: fx.username },
        value: fx.initial,
      },
      blind: false,
      works: (v) => fx.works(v),
      count: () => fx.passwordCount(),
      cleanup: () => fx.cleanup(),
    }
  },
  async 'aws-iam'() {
    const user = `app-${Math.random().toString(36).slice(2, 8)}`
    const key = iam.addKey(user)
    return {
      input: {
        rotator: 'aws-iam',
        config: {
          userName: user,
          endpoint: iam.url,
          accessKeyId: iam.admin.accessKeyId,
          secretAccessKey: iam.admin.secretAccessKey,
          verifyDelayMs: 0,
        },
        value: JSON.stringify({
          accessKeyId: key.accessKeyId,
          secretAccessKey: key.secretAccessKey,
        }),
      },
      blind: false,
      async works(value) {
        const creds = JSON.parse(value) as { accessKeyId: string; secretAccessKey: string }
        const c = new IAMClient({
          region: 'us-east-1',
          endpoint: iam.url,
          credentials: creds,
          maxAttempts: 1,
        })
        try {
          const out = await c.send(
            new GetAccessKeyLastUsedCommand({ AccessKeyId: creds.accessKeyId }),
          )
          return out.UserName === user
        } catch {
          return false
        } finally {
          c.destroy()
        }
      },
      count: async () => iam.keysOf(user).filter((k) => k.status === 'Active').length,
      cleanup: async () => {},
    }
  },
}

type Crash = { rotator: CrashPoint } | { event: string }
const crashes: Crash[] = [
  ...(['create', 'verify', 'activate', 'revoke'] as const).flatMap((method) =>
    (['before', 'after'] as const).map((when) => ({ rotator: { method, when } })),
  ),
  ...['created', 'verified', 'activated', 'grace', 'revoked', 'done'].map((event) => ({ event })),
]
const label = (c: Crash) =>
  'rotator' in c ? `${c.rotator.when} ${c.rotator.method}` : `after the ${c.event} event`

for (const backend of testBackends()) {
  describe(`${backend.name}: a crash at every rotation step resumes on a fresh engine`, () => {
    let store: Store
    before(async () => {
      store = await backend.open()
      iam = await startFakeIam()
    })
    after(async () => {
      await iam?.close()
      await store?.close()
    })

    let n = 0
    for (const kind of ['pg', 'redis', 'aws-iam'] as const) {
      for (const crash of crashes) {
        it(`${kind}: crash ${label(crash)}`, async () => {
          const target = await targets[kind]()
          const name = `${kind}-${++n}`
          const clock = createFixedClock('2026-11-23T12:00:00Z')
          const sealer = testSealer()
          const service = (events: EventSink, wrap?: (r: Rotator) => Rotator) =>
            createSecretsService({
              store,
              sealer,
              clock,
              events,
              retryBackoffMs: 0,
              rotatorDeps: { sleep: async () => {} },
              rotatorFor: (secret, config) => {
                const r = buildRotator(secret.rotator, config, {
                  clock,
                  random: (k) => Buffer.from(crypto.getRandomValues(new Uint8Array(k))),
                  sleep: async () => {},
                })
                return wrap ? wrap(r) : r
              },
            })
          try {
            const clean = service(createMemoryEventSink())
            await clean.manage({
              ...target.input,
              name,
              consumers: [consumer],
              periodSeconds: 86_400,
              graceSeconds: graceMs / 1000,
            })
            if (target.blind) {
              await clean.rotate(name)
              clock.advance(graceMs + 1000)
              await clean.tick()
            }
            const before = await clean.deliver(name, [consumer])
            assert.ok(await target.works(before.value), 'the starting value works')

            // The crashing engine.
            const events = 'event' in crash ? crashingEvents(crash.event) : createMemoryEventSink()
            const crashing = service(
              events,
              'rotator' in crash ? (r) => crashingRotator(r, crash.rotator) : undefined,
            )
            let crashed = false
            await crashing.rotate(name).catch((err: Error) => {
              assert.match(err.message, /injected crash/)
              crashed = true
            })
            if (!crashed) {
              clock.advance(graceMs + 1000)
              const t = await crashing.tick()
              assert.equal(t.resumed, 1)
              crashed = (await crashing.show(name)).rotations[0]?.state !== 'done'
            }
            assert.ok(crashed, 'the injected crash happened')
            // Never zero: whatever the crash, the value the store delivers works.
            const during = await crashing.deliver(name, [consumer])
            assert.ok(await target.works(during.value), 'the delivered value works after the crash')

            // A fresh engine on the same store finishes the rotation.
            const fresh = service(createMemoryEventSink())
            for (let i = 0; i < 4; i++) {
              clock.advance(graceMs + 1000)
              await fresh.tick()
            }
            const shown = await fresh.show(name)
            assert.equal(shown.rotations[0]?.state, 'done', JSON.stringify(shown.rotations[0]))
            assert.equal(shown.version, before.version + 1)
            assert.equal(shown.previousFingerprint, undefined)
            const afterValue = await fresh.deliver(name, [consumer])
            assert.notEqual(afterValue.value, before.value)
            assert.ok(await target.works(afterValue.value), 'the new value works')
            assert.equal(await target.works(before.value), false, 'the old value is revoked')
            // Never two past the grace: exactly one credential is left.
            assert.equal(await target.count(), 1)
          } finally {
            await target.cleanup()
          }
        })
      }
    }
  })
}
