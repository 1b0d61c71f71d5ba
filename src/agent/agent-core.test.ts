import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { describe, it } from 'node:test'
import { createFixedClock } from '../runtime/clock.js'
import type { Selector } from '../spiffe/types.js'
import type { WatchUpdate, X509SvidState } from '../workload-api/backend.js'
import { createAgentCore, type AgentCoreDeps } from './agent-core.js'
import { createManualScheduler } from './scheduler.js'
import { createFakeControlPort, type FakeControlPort } from './testing/fake-control-port.js'

const sel = (v: string): Selector => ({ type: 'unix', value: v })

async function setup(opts: Partial<AgentCoreDeps> & { ttl?: number } = {}) {
  const clock = createFixedClock('2026-01-01T00:00:00Z')
  const scheduler = createManualScheduler(clock)
  const port = await createFakeControlPort({ clock, defaultX509Ttl: opts.ttl ?? 3600 })
  const mk = (p: FakeControlPort = port) =>
    createAgentCore({
      port: p,
      attestors: [],
      clock,
      scheduler,
      random: () => 0.5,
      retryMs: 1000,
      ...opts,
    })
  return { clock, scheduler, port, core: mk(), mk }
}

/** Collects stream updates; `next()` waits for the next one. */
function collector() {
  const updates: WatchUpdate<X509SvidState>[] = []
  const waiters: (() => void)[] = []
  return {
    updates,
    on: (u: WatchUpdate<X509SvidState>) => {
      updates.push(u)
      waiters.splice(0).forEach((w) => w())
    },
    async next(count: number, timeoutMs = 5000): Promise<WatchUpdate<X509SvidState>> {
      const t0 = Date.now()
      while (updates.length < count) {
        if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for update ${count}`)
        await new Promise<void>((r) => {
          waiters.push(r)
          setTimeout(r, 50)
        })
      }
      return updates[count - 1]!
    },
  }
}

function serialOf(u: WatchUpdate<X509SvidState>, i = 0): string {
  assert.ok(u.ok, u.ok ? '' : u.error.message)
  return new X509Certificate(u.value.svids[i]!.certChain[0]!).serialNumber.toLowerCase()
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10))
}

describe('agent core', () => {
  it('matches entries by selector subset and batches concurrent signing', async () => {
    const { port, core } = await setup()
    for (let i = 0; i < 40; i++) {
      port.upsertEntry({
        id: `e${String(i).padStart(2, '0')}`,
        spiffeId: `spiffe://example.org/w/${i}`,
        selectors: [sel(`uid:${1000 + i}`), sel('gid:1')],
      })
    }
    const cs = Array.from({ length: 40 }, () => collector())
    const cancels = cs.map((c, i) =>
      core.watchX509Svids([sel(`uid:${1000 + i}`), sel('gid:1'), sel('path:/x')], c.on),
    )
    const firsts = await Promise.all(cs.map((c) => c.next(1)))
    firsts.forEach((u, i) => {
      assert.ok(u.ok)
      assert.equal(u.value.svids[0]!.spiffeId, `spiffe://example.org/w/${i}`)
    })
    assert.equal(
      port.batches.reduce((a, b) => a + b, 0),
      40,
    )
    assert.ok(port.batches.length <= 4, `40 requests in ${port.batches.length} batches`)
    // A workload lacking one of the entry's selectors gets nothing.
    const denied = collector()
    core.watchX509Svids([sel('uid:1000')], denied.on)
    const d = await denied.next(1)
    assert.ok(!d.ok)
    assert.equal(d.error.code, 'PERMISSION_DENIED')
    cancels.forEach((c) => c())
    core.close()
  })

  it('rotates at half the lifetime with jitter and pushes the new SVID; never reuses a key', async () => {
    const { port, scheduler, mk } = await setup({ random: () => 0 }) // jitter -10% of half-life
    const core = mk()
    port.upsertEntry({ id: 'a', spiffeId: 'spiffe://example.org/a', selectors: [sel('uid:1')] })
    const c = collector()
    const cancel = core.watchX509Svids([sel('uid:1')], c.on)
    const first = serialOf(await c.next(1))
    // Lifetime 3610 s (10 s backdated); half = 1805 s; -10% jitter → rotation at 1624.5 s after NB.
    scheduler.advance((1624.5 - 10 - 5) * 1000)
    await settle()
    assert.equal(c.updates.length, 1, 'no rotation before the jittered half-life')
    scheduler.advance(10_000)
    const second = serialOf(await c.next(2))
    assert.notEqual(second, first)
    const hashes = port.issued.map((i) => i.keyHash)
    assert.equal(new Set(hashes).size, hashes.length)
    assert.equal(core.stats().rotations, 1)
    cancel()
    core.close()
  })

  it('keeps serving the cached SVID while the control plane is down, and rotates once it is back', async () => {
    const { port, scheduler, core } = await setup()
    port.upsertEntry({ id: 'a', spiffeId: 'spiffe://example.org/a', selectors: [sel('uid:1')] })
    const c = collector()
    const cancel = core.watchX509Svids([sel('uid:1')], c.on)
    const first = serialOf(await c.next(1))
    port.setConnected(false)
    scheduler.advance(1900_000) // past rotation
    await settle()
    scheduler.advance(5_000) // a few retries
    await settle()
    assert.equal(c.updates.length, 1, 'no error pushed while the cached SVID is valid')
    // A new stream is still served from the cache.
    const c2 = collector()
    const cancel2 = core.watchX509Svids([sel('uid:1')], c2.on)
    assert.equal(serialOf(await c2.next(1)), first)
    port.setConnected(true)
    scheduler.advance(60_000)
    const rotated = serialOf(await c.next(2))
    assert.notEqual(rotated, first)
    cancel()
    cancel2()
    core.close()
  })

  it('drops an expired SVID it could not rotate', async () => {
    const { port, scheduler, core } = await setup({ ttl: 60, maxRetryMs: 5000 })
    port.upsertEntry({ id: 'a', spiffeId: 'spiffe://example.org/a', selectors: [sel('uid:1')] })
    const c = collector()
    core.watchX509Svids([sel('uid:1')], c.on)
    await c.next(1)
    port.setConnected(false)
    for (let i = 0; i < 20; i++) {
      scheduler.advance(5_000)
      await settle()
    }
    const last = c.updates.at(-1)!
    assert.ok(!last.ok)
    assert.equal(last.error.code, 'UNAVAILABLE')
    core.close()
  })

  it('applies revocations: a revoked serial is re-minted, a revoked SPIFFE ID is refused', async () => {
    const { port, core } = await setup()
    port.upsertEntry({ id: 'a', spiffeId: 'spiffe://example.org/a', selectors: [sel('uid:1')] })
    const c = collector()
    core.watchX509Svids([sel('uid:1')], c.on)
    const first = serialOf(await c.next(1))
    port.revoke({ targetType: 'serial', value: first })
    const second = serialOf(await c.next(2))
    assert.notEqual(second, first)
    port.revoke({ targetType: 'spiffe_id', value: 'spiffe://example.org/a' })
    const third = await c.next(3)
    assert.ok(!third.ok)
    assert.equal(third.error.code, 'PERMISSION_DENIED')
    await assert.rejects(core.fetchJwtSvids([sel('uid:1')], ['aud'], undefined), {
      code: 'PERMISSION_DENIED',
    })
    core.close()
  })

  it('pushes full state on entry change, bundle change and entry deletion', async () => {
    const { port, core } = await setup()
    port.upsertEntry({ id: 'a', spiffeId: 'spiffe://example.org/a', selectors: [sel('uid:1')] })
    const c = collector()
    core.watchX509Svids([sel('uid:1')], c.on)
    const s1 = serialOf(await c.next(1))
    port.upsertEntry({
      id: 'a',
      spiffeId: 'spiffe://example.org/a',
      selectors: [sel('uid:1')],
      dnsNames: ['a.local'],
    })
    const s2 = serialOf(await c.next(2))
    assert.notEqual(s2, s1, 'a changed entry is re-minted')
    await port.ca.rotate()
    port.publishBundle()
    const u3 = await c.next(3)
    assert.ok(u3.ok)
    assert.equal(u3.value.svids[0]!.bundle.length, Buffer.concat(port.ca.rootDer()).length)
    assert.equal(port.ca.rootDer().length, 2)
    port.deleteEntry('a')
    const u4 = await c.next(4)
    assert.ok(!u4.ok)
    assert.equal(u4.error.code, 'PERMISSION_DENIED')
    core.close()
  })

  it('withdraws an entry from open streams at its expiry, without waiting for a change', async () => {
    const { port, core, clock, scheduler } = await setup()
    const expiresAt = new Date(clock.now().getTime() + 10 * 60_000)
    port.upsertEntry({
      id: 'short',
      spiffeId: 'spiffe://example.org/short',
      selectors: [sel('uid:7')],
      expiresAt,
    })
    port.upsertEntry({
      id: 'long',
      spiffeId: 'spiffe://example.org/long',
      selectors: [sel('uid:7')],
    })
    const c = collector()
    core.watchX509Svids([sel('uid:7')], c.on)
    const u1 = await c.next(1)
    assert.ok(u1.ok)
    assert.deepEqual(u1.value.svids.map((s) => s.spiffeId).sort(), [
      'spiffe://example.org/long',
      'spiffe://example.org/short',
    ])
    scheduler.advance(9 * 60_000)
    await settle()
    assert.equal(c.updates.length, 1, 'nothing before the expiry')
    scheduler.advance(60_000)
    const u2 = await c.next(2)
    assert.ok(u2.ok)
    assert.deepEqual(
      u2.value.svids.map((s) => s.spiffeId),
      ['spiffe://example.org/long'],
    )
    core.close()
  })

  it('bounds the LRU but never evicts an SVID an open stream uses', async () => {
    const { port, core } = await setup({ maxX509Svids: 3 })
    for (let i = 0; i < 6; i++) {
      port.upsertEntry({
        id: `e${i}`,
        spiffeId: `spiffe://example.org/${i}`,
        selectors: [sel(`uid:${i}`)],
      })
    }
    const pinned = collector()
    const cancelPinned = core.watchX509Svids([sel('uid:0')], pinned.on)
    const s0 = serialOf(await pinned.next(1))
    for (let i = 1; i < 6; i++) {
      const c = collector()
      const cancel = core.watchX509Svids([sel(`uid:${i}`)], c.on)
      await c.next(1)
      cancel()
    }
    assert.ok(core.stats().x509Cached <= 3)
    const again = collector()
    core.watchX509Svids([sel('uid:0')], again.on)
    assert.equal(serialOf(await again.next(1)), s0, 'the pinned SVID stayed cached')
    cancelPinned()
    core.close()
  })

  it('a crash mid-rotation issues nothing twice and a restarted agent serves again', async () => {
    const { port, scheduler, mk } = await setup()
    port.upsertEntry({ id: 'a', spiffeId: 'spiffe://example.org/a', selectors: [sel('uid:1')] })
    const coreA = mk()
    const c = collector()
    coreA.watchX509Svids([sel('uid:1')], c.on)
    await c.next(1)
    let release!: () => void
    port.hold = new Promise<void>((r) => (release = r))
    scheduler.advance(1900_000) // rotation starts; the server holds the signing request
    await settle()
    assert.equal(port.batches.length, 2)
    coreA.close() // the agent dies mid-rotation
    const coreB = mk() // restarted: nothing persisted, the cache is rebuilt on demand
    port.hold = undefined
    const cB = collector()
    coreB.watchX509Svids([sel('uid:1')], cB.on)
    const served = await cB.next(1)
    assert.ok(served.ok)
    release() // the old request completes server-side; the dead agent stores nothing
    await settle()
    const hashes = port.issued.map((i) => i.keyHash)
    assert.equal(hashes.length, 3)
    assert.equal(new Set(hashes).size, 3, 'every signed key is distinct')
    assert.equal(coreB.stats().x509Cached, 1)
    coreB.close()
  })

  it('validates JWT-SVIDs: signature, audience, algorithm, revocation', async () => {
    const { port, core } = await setup()
    port.upsertEntry({ id: 'a', spiffeId: 'spiffe://example.org/a', selectors: [sel('uid:1')] })
    const [svid] = await core.fetchJwtSvids([sel('uid:1')], ['svc'], undefined)
    const ok = await core.validateJwtSvid([], svid!.token, 'svc')
    assert.equal(ok.spiffeId, 'spiffe://example.org/a')
    assert.deepEqual(ok.claims.aud, ['svc'])
    await assert.rejects(core.validateJwtSvid([], svid!.token, 'other'), {
      code: 'INVALID_ARGUMENT',
    })
    const [h, p] = svid!.token.split('.')
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`
    await assert.rejects(core.validateJwtSvid([], none, 'svc'), { code: 'INVALID_ARGUMENT' })
    const hs = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${p}.AAAA`
    await assert.rejects(core.validateJwtSvid([], hs, 'svc'), { code: 'INVALID_ARGUMENT' })
    const tampered = `${h}.${Buffer.from('{"sub":"spiffe://example.org/b","aud":["svc"],"exp":9999999999}').toString('base64url')}.${svid!.token.split('.')[2]}`
    await assert.rejects(core.validateJwtSvid([], tampered, 'svc'), { code: 'INVALID_ARGUMENT' })
    const jti = JSON.parse(Buffer.from(p!, 'base64url').toString()) as { jti: string }
    port.revoke({ targetType: 'jti', value: jti.jti })
    await assert.rejects(core.validateJwtSvid([], svid!.token, 'svc'), { code: 'INVALID_ARGUMENT' })
    // The revoked token is not served from the cache any more.
    const [fresh] = await core.fetchJwtSvids([sel('uid:1')], ['svc'], undefined)
    assert.notEqual(fresh!.token, svid!.token)
    core.close()
  })
})
