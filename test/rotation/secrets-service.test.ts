import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { createMemoryEventSink } from '../../src/audit/event-sink.js'
import { createEnvelopeSealer } from '../../src/ca/envelope.js'
import { createInventory } from '../../src/inventory/index.js'
import {
  mayRotateAt,
  nextInWindow,
  parseDuration,
  parseWindow,
} from '../../src/lifecycle/rotation/policy.js'
import type { Rotator } from '../../src/lifecycle/rotation/rotator.js'
import {
  createSecretsService,
  rotationFailedRule,
} from '../../src/lifecycle/rotation/secrets-service.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { memoryFindings, testSealer } from './support.js'

/** An in-memory "system" whose credentials are a set of values, behind the Rotator seam. */
function fakeSystem(opts: { failVerify?: boolean } = {}) {
  const valid = new Set<string>(['v0-secret-value'])
  let n = 0
  const rotator: Rotator = {
    kind: 'http',
    async create() {
      const value = `v${++n}-secret-value`
      valid.add(value)
      return { value, meta: { n } }
    },
    async verify(_c, next) {
      if (opts.failVerify || !valid.has(next.value)) throw new Error('the new value is refused')
    },
    async activate() {},
    async revoke(_c, _keep, drop) {
      valid.delete(drop.value)
    },
  }
  return { valid, rotator }
}

describe('rotation policy parsing (fuzzed)', () => {
  it('parses durations and windows, and refuses anything else with TSR_VALIDATION', () => {
    assert.equal(parseDuration('90s', 'x'), 90)
    assert.equal(parseDuration('30d', 'x'), 2_592_000)
    assert.deepEqual(parseWindow('22:00-02:00'), { start: 1320, end: 120 })
    fc.assert(
      fc.property(fc.string(), (s) => {
        for (const parse of [() => parseDuration(s, 'x'), () => parseWindow(s)]) {
          try {
            parse()
          } catch (err) {
            assert.equal((err as { code?: string }).code, 'TSR_VALIDATION')
          }
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('a due time is moved to the next opening of the window, and is inside it', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('2020-01-01'), max: new Date('2030-01-01'), noInvalidDate: true }),
        fc.integer({ min: 0, max: 1439 }),
        fc.integer({ min: 1, max: 1439 }),
        (at, start, len) => {
          const end = (start + len) % 1440
          const hhmm = (m: number) =>
            `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`
          const w = `${hhmm(start)}-${hhmm(end)}`
          const next = nextInWindow(at, w)
          assert.ok(next >= at && next.getTime() - at.getTime() <= 86_400_000)
          assert.ok(mayRotateAt(next, w))
        },
      ),
      { numRuns: 500 },
    )
  })
})

for (const backend of testBackends()) {
  describe(`${backend.name}: the secrets service`, () => {
    let store: Store
    before(async () => {
      store = await backend.open()
    })
    after(async () => store?.close())

    it('seals values and configuration: no plaintext in the store, sealed fields hidden, another KEK cannot open', async () => {
      const clock = createFixedClock('2026-11-23T12:00:00Z')
      const sys = fakeSystem()
      const service = createSecretsService({
        store,
        sealer: testSealer(),
        clock,
        events: createMemoryEventSink(),
        inventory: createInventory({ store, clock }),
        rotatorFor: () => sys.rotator,
      })
      const view = await service.manage({
        name: 'sealed-1',
        rotator: 'redis',
        config: { adminUrl: 'redis://admin:admin-pass-123@127.0.0.1:6379', username: 'app' },
        consumers: ['spiffe://example.org/app'],
        periodSeconds: 3600,
        graceSeconds: 60,
        value: 'v0-secret-value',
      })
      assert.equal(view.config.adminUrl, '[sealed]')
      assert.equal(JSON.stringify(view).includes('v0-secret-value'), false)
      await service.rotate('sealed-1')
      const rows = await store.db.selectFrom('managed_secret').selectAll().execute()
      const rotations = await store.db.selectFrom('secret_rotation').selectAll().execute()
      const steps = await store.db.selectFrom('secret_rotation_step').selectAll().execute()
      const dump = JSON.stringify([rows, rotations, steps], (_k, v: unknown) =>
        v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v,
      )
      for (const secret of ['v0-secret-value', 'v1-secret-value', 'admin-pass-123']) {
        assert.equal(dump.includes(secret), false, `${secret} in the store`)
      }
      const other = createSecretsService({
        store,
        sealer: createEnvelopeSealer(Buffer.alloc(32, 7), 'kek:other'),
        clock,
        events: createMemoryEventSink(),
      })
      await assert.rejects(other.deliver('sealed-1', ['spiffe://example.org/app']), /kek/)
      // The inventory holds it as a managed credential.
      const cred = await store.db
        .selectFrom('credential')
        .selectAll()
        .where('ref', '=', 'managed-secret:sealed-1')
        .where('valid_to', 'is', null)
        .executeTakeFirstOrThrow()
      assert.equal(cred.state, 'managed')
      assert.equal(cred.attributes.version, 1)
    })

    it('delivers only to consumers, and refuses bad input with stable codes', async () => {
      const clock = createFixedClock('2026-11-23T12:00:00Z')
      const service = createSecretsService({
        store,
        sealer: testSealer(),
        clock,
        events: createMemoryEventSink(),
        rotatorFor: () => fakeSystem().rotator,
      })
      const input = {
        name: 'deliver-1',
        rotator: 'redis',
        config: { adminUrl: 'redis://127.0.0.1:6379', username: 'app' },
        consumers: ['spiffe://example.org/app'],
        periodSeconds: 3600,
        graceSeconds: 60,
        value: 'v0-secret-value',
      }
      await service.manage(input)
      const got = await service.deliver('deliver-1', [
        'spiffe://example.org/other',
        'spiffe://example.org/app',
      ])
      assert.equal(got.value, 'v0-secret-value')
      assert.equal(got.spiffeId, 'spiffe://example.org/app')
      const code = (e: unknown) => (e as { code?: string }).code
      await assert.rejects(
        service.deliver('deliver-1', ['spiffe://example.org/x']),
        (e) => code(e) === 'TSR_SECRET_DENIED',
      )
      await assert.rejects(
        service.deliver('nope', ['spiffe://example.org/app']),
        (e) => code(e) === 'TSR_SECRET_DENIED',
      )
      await assert.rejects(service.manage(input), (e) => code(e) === 'TSR_CONFLICT')
      for (const bad of [
        { name: 'bad name' },
        { consumers: ['not-a-spiffe-id'] },
        { periodSeconds: 10 },
        { graceSeconds: 3600 },
        { window: '25:00-01:00' },
        { rotator: 'ftp' },
        { config: { username: 'app' } },
      ]) {
        await assert.rejects(
          service.manage({ ...input, name: 'deliver-2', ...bad }),
          (e) => code(e) === 'TSR_VALIDATION',
          JSON.stringify(bad),
        )
      }
    })

    it('a rotation that keeps failing before activation is rolled back, the value stays, a finding opens then resolves', async () => {
      const clock = createFixedClock('2026-11-23T12:00:00Z')
      const events = createMemoryEventSink()
      const findings = memoryFindings()
      const broken = fakeSystem({ failVerify: true })
      let system = broken
      const service = createSecretsService({
        store,
        sealer: testSealer(),
        clock,
        events,
        findings,
        retryBackoffMs: 1000,
        // The other tests' secrets on this store are due too: they rotate against systems of their own.
        rotatorFor: (secret) =>
          secret.name === 'failing-1' ? system.rotator : fakeSystem().rotator,
      })
      await service.manage({
        name: 'failing-1',
        rotator: 'redis',
        config: { adminUrl: 'redis://127.0.0.1:6379', username: 'app' },
        consumers: ['spiffe://example.org/app'],
        periodSeconds: 3600,
        window: undefined,
        graceSeconds: 60,
        value: 'v0-secret-value',
      })
      clock.advance(3_601_000)
      for (let i = 0; i < 4; i++) {
        await service.tick()
        clock.advance(10_000)
      }
      const shown = await service.show('failing-1')
      assert.equal(shown.rotations[0]?.state, 'failed')
      assert.match(shown.rotations[0]?.error ?? '', /refused/)
      assert.equal(shown.version, 0)
      assert.deepEqual([...broken.valid], ['v0-secret-value'], 'the new credential was revoked')
      assert.equal(
        (await service.deliver('failing-1', ['spiffe://example.org/app'])).value,
        'v0-secret-value',
      )
      const open = findings.open.get(rotationFailedRule) ?? []
      assert.ok(open.some((f) => f.evidence.secret === 'failing-1'))
      assert.ok(
        events.events.some((e) => e.action === 'failed' && e.resource === 'secret:failing-1'),
      )
      // Fixed: the next rotation succeeds and the finding resolves.
      system = fakeSystem()
      await service.rotate('failing-1')
      await service.tick()
      assert.equal(
        (findings.open.get(rotationFailedRule) ?? []).some(
          (f) => f.evidence.secret === 'failing-1',
        ),
        false,
      )
    })
  })
}
