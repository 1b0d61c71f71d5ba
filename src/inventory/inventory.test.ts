import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { testBackends } from '../../test/support/stores.js'
import { isTesseraError } from '../errors.js'
import { createFixedClock } from '../runtime/clock.js'
import { factTables, type Store } from '../store/index.js'
import {
  createInventory,
  entityId,
  locationRef,
  type Inventory,
  type Observation,
} from './index.js'

const t0 = '2026-03-01T10:00:00.000Z'

/** A small estate: two teams' worth of identities with credentials, grants, usage and edges. */
function estate(source = 'aws:prod'): Observation[] {
  return [
    {
      type: 'owner',
      source: 'scim',
      ref: 'alice@example.com',
      ownerType: 'person',
      name: 'Alice',
      email: 'alice@example.com',
      team: 'payments',
    },
    { type: 'owner', source: 'scim', ref: 'payments', ownerType: 'team', name: 'Payments' },
    {
      type: 'resource',
      source,
      ref: 'arn:aws:s3:::ledger',
      resourceType: 's3_bucket',
      name: 'ledger',
      environment: 'prod',
    },
    {
      type: 'identity',
      source,
      ref: 'arn:aws:iam::1:user/deploy-bot',
      kind: 'iam_user',
      name: 'deploy-bot',
      owner: 'alice@example.com',
      createdBy: 'alice@example.com',
    },
    {
      type: 'identity',
      source,
      ref: 'arn:aws:iam::1:role/ledger-writer',
      kind: 'iam_role',
      name: 'ledger-writer',
      owner: 'payments',
    },
    {
      type: 'identity',
      source,
      ref: 'arn:aws:iam::1:user/old_100%',
      kind: 'iam_user',
      name: 'old_100%',
      state: 'disabled',
      lastUsedAt: '2025-01-01T00:00:00Z',
    },
    {
      type: 'identity',
      source: 'k8s:prod',
      ref: 'spiffe://acme/ns/pay/sa/api',
      kind: 'workload',
      name: 'pay-api',
      owner: 'payments',
    },
    {
      type: 'identity',
      source: 'k8s:prod',
      ref: 'spiffe://acme/ns/pay/sa/worker',
      kind: 'service_account',
      name: 'Pay-Worker',
    },
    {
      type: 'credential',
      source,
      ref: 'aws-key:AKIA1',
      identity: 'arn:aws:iam::1:user/deploy-bot',
      credentialType: 'access_key',
      fingerprint: 'fp1',
      preview: 'AKIA…AAA1',
      createdAt: '2024-01-01T00:00:00Z',
      expiresAt: '2026-04-01T00:00:00Z',
    },
    {
      type: 'credential',
      source,
      ref: 'aws-key:AKIA2',
      identity: 'arn:aws:iam::1:user/deploy-bot',
      credentialType: 'access_key',
      fingerprint: 'fp2',
    },
    {
      type: 'location',
      source: 'scanner',
      credential: 'aws-key:AKIA1',
      locationType: 'git',
      repository: 'acme/infra',
      file: 'deploy.sh',
      line: 12,
      commit: 'abc123',
    },
    {
      type: 'grant',
      source,
      identity: 'arn:aws:iam::1:user/deploy-bot',
      resource: 'arn:aws:s3:::ledger',
      actions: ['s3:PutObject', 's3:GetObject', 's3:GetObject'],
      via: 'policy/DeployAccess',
    },
    {
      type: 'grant',
      source,
      identity: 'arn:aws:iam::1:user/deploy-bot',
      resource: 'arn:aws:dynamodb:::unknown',
      actions: ['dynamodb:Query'],
    },
    {
      type: 'edge',
      source,
      edgeType: 'can_assume',
      from: { type: 'identity', ref: 'arn:aws:iam::1:user/deploy-bot' },
      to: { type: 'identity', ref: 'arn:aws:iam::1:role/ledger-writer' },
    },
    {
      type: 'edge',
      source: 'k8s:prod',
      edgeType: 'depends_on',
      from: { type: 'identity', ref: 'spiffe://acme/ns/pay/sa/api' },
      to: { type: 'identity', ref: 'arn:aws:iam::1:user/deploy-bot' },
    },
    {
      type: 'usage',
      source: 'cloudtrail',
      identity: 'arn:aws:iam::1:user/deploy-bot',
      resource: 'arn:aws:s3:::ledger',
      action: 's3:PutObject',
      hour: '2026-02-28T09:15:00Z',
      count: 3,
    },
    {
      type: 'usage',
      source: 'cloudtrail',
      identity: 'arn:aws:iam::1:user/deploy-bot',
      resource: 'arn:aws:s3:::ledger',
      action: 's3:PutObject',
      hour: '2026-02-28T11:00:00Z',
      count: 4,
    },
  ]
}

/** Every version row of every fact table, for "nothing changed" comparisons. */
async function versions(store: Store) {
  const out: Record<string, unknown[]> = {}
  for (const t of factTables) {
    const r = await sql<Record<string, unknown>>`
      select version_id, id, content_hash, valid_from, valid_to from ${sql.table(t)} order by version_id
    `.execute(store.db)
    out[t] = r.rows.map((row) => ({
      ...row,
      valid_from: String(row.valid_from),
      valid_to: String(row.valid_to),
    }))
  }
  const u =
    await sql`select identity_id, resource_ref, action, hour, source, count from usage order by id`.execute(
      store.db,
    )
  out.usage = u.rows
  return out
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

for (const backend of testBackends()) {
  describe(`${backend.name}: inventory`, () => {
    const stores: Store[] = []
    async function fresh(start = t0) {
      const store = await backend.open()
      stores.push(store)
      const clock = createFixedClock(start)
      let n = 0
      const inventory = createInventory({ store, clock, newId: () => `run-${++n}` })
      return { store, clock, inventory }
    }
    after(async () => {
      await Promise.all(stores.map((s) => s.close()))
    })

    describe('ingest and list', () => {
      let inventory: Inventory
      before(async () => {
        ;({ inventory } = await fresh())
        const r = await inventory.ingest(estate())
        assert.deepEqual(r, { received: 17, inserted: 17, changed: 0, unchanged: 0 })
      })

      it('lists every current identity ordered by name', async () => {
        const page = await inventory.listIdentities()
        assert.deepEqual(
          page.items.map((i) => i.name),
          ['Pay-Worker', 'deploy-bot', 'ledger-writer', 'old_100%', 'pay-api'],
        )
        assert.equal(page.nextCursor, undefined)
        const bot = page.items.find((i) => i.name === 'deploy-bot')!
        assert.equal(bot.id, entityId('identity', 'arn:aws:iam::1:user/deploy-bot'))
        assert.equal(bot.lastUsedAt, '2026-02-28T11:00:00.000Z', 'usage raised last_used_at')
        assert.equal(bot.validFrom, t0)
        assert.equal(bot.validTo, null)
      })

      it('filters by kind, source, owner and state', async () => {
        const names = async (f: Parameters<Inventory['listIdentities']>[0]) =>
          (await inventory.listIdentities(f)).items.map((i) => i.name)
        assert.deepEqual(await names({ kind: 'iam_user' }), ['deploy-bot', 'old_100%'])
        assert.deepEqual(await names({ source: 'k8s:prod' }), ['Pay-Worker', 'pay-api'])
        assert.deepEqual(await names({ owner: 'payments' }), ['ledger-writer', 'pay-api'])
        assert.deepEqual(await names({ state: 'disabled' }), ['old_100%'])
        assert.deepEqual(await names({ kind: 'iam_user', state: 'active' }), ['deploy-bot'])
      })

      it('filters by unusedSince and expiresBefore', async () => {
        const names = async (f: Parameters<Inventory['listIdentities']>[0]) =>
          (await inventory.listIdentities(f)).items.map((i) => i.name)
        assert.deepEqual(await names({ unusedSince: new Date('2026-01-01T00:00:00Z') }), [
          'Pay-Worker',
          'ledger-writer',
          'old_100%',
          'pay-api',
        ])
        assert.deepEqual(await names({ unusedSince: new Date('2024-01-01T00:00:00Z') }), [
          'Pay-Worker',
          'ledger-writer',
          'pay-api',
        ])
        assert.deepEqual(await names({ expiresBefore: new Date('2026-05-01T00:00:00Z') }), [
          'deploy-bot',
        ])
        assert.deepEqual(await names({ expiresBefore: new Date('2026-03-01T00:00:00Z') }), [])
      })

      it('searches names case-insensitively with % and _ taken literally', async () => {
        const names = async (q: string) =>
          (await inventory.listIdentities({ q })).items.map((i) => i.name)
        assert.deepEqual(await names('PAY'), ['Pay-Worker', 'pay-api'])
        assert.deepEqual(await names('%'), ['old_100%'])
        assert.deepEqual(await names('d_1'), ['old_100%'])
        assert.deepEqual(await names('y_b'), [])
      })

      it('pages with an opaque cursor until the end', async () => {
        const seen: string[] = []
        let cursor: string | undefined
        let pages = 0
        do {
          const page = await inventory.listIdentities({ limit: 2, ...(cursor ? { cursor } : {}) })
          seen.push(...page.items.map((i) => i.name))
          cursor = page.nextCursor
          pages++
        } while (cursor)
        assert.equal(pages, 3)
        assert.deepEqual(seen, ['Pay-Worker', 'deploy-bot', 'ledger-writer', 'old_100%', 'pay-api'])
        const exact = await inventory.listIdentities({ limit: 5 })
        assert.equal(exact.nextCursor, undefined, 'no cursor when the page holds the rest')
      })

      it('refuses a bad cursor or limit with TSR_VALIDATION', async () => {
        for (const filter of [
          { cursor: 'not a cursor' },
          { cursor: Buffer.from('["a","b"]').toString('base64url') },
          { limit: 0 },
          { limit: 1001 },
        ]) {
          await assert.rejects(inventory.listIdentities(filter), (e) =>
            isTesseraError(e, 'TSR_VALIDATION'),
          )
        }
      })

      it('shows one identity with owner, credentials, locations, grants, usage and edges', async () => {
        const d = await inventory.getIdentity('arn:aws:iam::1:user/deploy-bot')
        assert.ok(d)
        assert.equal(d.name, 'deploy-bot')
        assert.equal(d.ownerDetail?.name, 'Alice')
        assert.equal(d.ownerDetail?.team, 'payments')
        assert.deepEqual(
          d.credentials.map((c) => c.ref),
          ['aws-key:AKIA1', 'aws-key:AKIA2'],
        )
        const key = d.credentials[0]!
        assert.equal(key.expiresAt, '2026-04-01T00:00:00.000Z')
        assert.equal(key.locations.length, 1)
        assert.deepEqual(
          { ...key.locations[0], id: undefined },
          {
            id: undefined,
            locationType: 'git',
            repository: 'acme/infra',
            file: 'deploy.sh',
            line: 12,
            commit: 'abc123',
            host: null,
            path: null,
            source: 'scanner',
          },
        )
        assert.deepEqual(
          d.grants.map((g) => [g.resource, g.resourceName, g.actions, g.via]),
          [
            ['arn:aws:dynamodb:::unknown', null, ['dynamodb:Query'], null],
            [
              'arn:aws:s3:::ledger',
              'ledger',
              ['s3:GetObject', 's3:PutObject'],
              'policy/DeployAccess',
            ],
          ],
        )
        assert.deepEqual(d.usage, [
          {
            resource: 'arn:aws:s3:::ledger',
            action: 's3:PutObject',
            count: 7,
            firstHour: '2026-02-28T09:00:00.000Z',
            lastHour: '2026-02-28T11:00:00.000Z',
          },
        ])
        assert.deepEqual(
          d.edges.map((e) => [e.edgeType, e.from.ref, e.to.ref]),
          [
            ['can_assume', 'arn:aws:iam::1:user/deploy-bot', 'arn:aws:iam::1:role/ledger-writer'],
            ['depends_on', 'spiffe://acme/ns/pay/sa/api', 'arn:aws:iam::1:user/deploy-bot'],
          ],
        )
        const byId = await inventory.getIdentity(d.id)
        assert.equal(byId?.ref, d.ref)
        assert.equal(await inventory.getIdentity('arn:aws:iam::1:user/nobody'), undefined)
        assert.equal(await inventory.getIdentity(d.id, new Date('2026-02-01T00:00:00Z')), undefined)
      })

      it('counts current facts', async () => {
        assert.deepEqual(await inventory.stats(), {
          identity: 5,
          credential: 2,
          credential_location: 1,
          owner: 2,
          resource: 1,
          grant: 2,
          edge: 2,
          usage: 2,
        })
      })
    })

    it('re-ingesting the same batch changes nothing', async () => {
      const { store, clock, inventory } = await fresh()
      await inventory.ingest(estate())
      const before = await versions(store)
      clock.advance(3_600_000)
      const r = await inventory.ingest(estate())
      assert.deepEqual(r, { received: 17, inserted: 0, changed: 0, unchanged: 17 })
      assert.deepEqual(await versions(store), before)
      // Seen again: last_seen_at moves, the version does not.
      const bot = await inventory.getIdentity('arn:aws:iam::1:user/deploy-bot')
      assert.equal(bot?.lastSeenAt, '2026-03-01T11:00:00.000Z')
      assert.equal(bot?.validFrom, t0)
    })

    it('keeps the last of duplicate observations within one batch', async () => {
      const { inventory } = await fresh()
      const base = { type: 'identity', source: 's', ref: 'r1', kind: 'bot' } as const
      const r = await inventory.ingest([
        { ...base, name: 'first' },
        { ...base, name: 'second' },
      ])
      assert.deepEqual(r, { received: 2, inserted: 1, changed: 0, unchanged: 1 })
      assert.equal((await inventory.getIdentity('r1'))?.name, 'second')
    })

    it('a changed attribute makes a new version and the past stays answerable', async () => {
      const { store, clock, inventory } = await fresh()
      await inventory.ingest(estate())
      clock.set('2026-03-02T10:00:00Z')
      const changed: Observation = {
        type: 'identity',
        source: 'aws:prod',
        ref: 'arn:aws:iam::1:user/deploy-bot',
        kind: 'iam_user',
        name: 'deploy-bot',
        owner: 'payments',
        createdBy: 'alice@example.com',
        // lastUsedAt alone never makes a version
        lastUsedAt: '2026-03-02T09:00:00Z',
      }
      assert.deepEqual(await inventory.ingest([changed]), {
        received: 1,
        inserted: 0,
        changed: 1,
        unchanged: 0,
      })
      const now = await inventory.getIdentity('arn:aws:iam::1:user/deploy-bot')
      assert.equal(now?.owner, 'payments')
      assert.equal(now?.validFrom, '2026-03-02T10:00:00.000Z')
      assert.equal(now?.lastUsedAt, '2026-03-02T09:00:00.000Z')
      const then = await inventory.getIdentity(
        'arn:aws:iam::1:user/deploy-bot',
        new Date('2026-03-01T12:00:00Z'),
      )
      assert.equal(then?.owner, 'alice@example.com')
      assert.equal(then?.validTo, '2026-03-02T10:00:00.000Z')
      assert.deepEqual(
        (
          await inventory.listIdentities({
            owner: 'alice@example.com',
            at: new Date('2026-03-01T12:00:00Z'),
          })
        ).items.map((i) => i.name),
        ['deploy-bot'],
      )
      assert.deepEqual((await inventory.listIdentities({ owner: 'alice@example.com' })).items, [])
      const rows = await sql<{ n: number }>`
        select count(*)::int as n from identity where id = ${now!.id}::uuid
      `.execute(store.db)
      assert.equal(rows.rows[0]?.n, 2)
      // Same content again with only lastUsedAt moved: unchanged.
      assert.deepEqual(
        await inventory.ingest([{ ...changed, lastUsedAt: '2026-03-02T10:00:00Z' }]),
        { received: 1, inserted: 0, changed: 0, unchanged: 1 },
      )
      assert.equal((await inventory.getIdentity(now!.id))?.lastUsedAt, '2026-03-02T10:00:00.000Z')
    })

    it('a successful full run closes what it did not see, and keeps the rows', async () => {
      const { store, clock, inventory } = await fresh()
      const first = await inventory.startRun('aws:prod', 'full')
      assert.equal(first.status, 'running')
      await inventory.ingest(estate(), { runs: { 'aws:prod': first.id } })
      clock.set('2026-03-01T11:00:00Z')
      assert.equal((await inventory.finishRun(first.id)).closed, 0)

      clock.set('2026-03-02T10:00:00Z')
      const second = await inventory.startRun('aws:prod', 'full')
      const seen = estate().filter(
        (o) =>
          !(o.type === 'identity' && o.ref === 'arn:aws:iam::1:user/old_100%') &&
          !(o.type === 'grant' && o.resource === 'arn:aws:dynamodb:::unknown'),
      )
      await inventory.ingest(seen, { runs: { 'aws:prod': second.id } })
      clock.set('2026-03-02T11:00:00Z')
      const done = await inventory.finishRun(second.id, 'succeeded')
      assert.equal(done.status, 'succeeded')
      assert.equal(done.finishedAt, '2026-03-02T11:00:00.000Z')
      assert.equal(done.closed, 2)

      assert.equal(await inventory.getIdentity('arn:aws:iam::1:user/old_100%'), undefined)
      const past = await inventory.getIdentity(
        'arn:aws:iam::1:user/old_100%',
        new Date('2026-03-02T10:30:00Z'),
      )
      assert.equal(past?.validTo, '2026-03-02T11:00:00.000Z')
      const rows = await sql<{
        n: number
      }>`select count(*)::int as n from identity where ref = 'arn:aws:iam::1:user/old_100%'`.execute(
        store.db,
      )
      assert.equal(rows.rows[0]?.n, 1, 'closed, not deleted')
      const bot = await inventory.getIdentity('arn:aws:iam::1:user/deploy-bot')
      assert.deepEqual(
        bot?.grants.map((g) => g.resource),
        ['arn:aws:s3:::ledger'],
      )
      // Other sources' facts are untouched.
      assert.ok(await inventory.getIdentity('spiffe://acme/ns/pay/sa/api'))
      await assert.rejects(inventory.finishRun(second.id), (e) => isTesseraError(e, 'TSR_CONFLICT'))
      await assert.rejects(inventory.finishRun('no-such-run'), (e) =>
        isTesseraError(e, 'TSR_NOT_FOUND'),
      )
    })

    it('failed and delta runs close nothing', async () => {
      const { clock, inventory } = await fresh()
      await inventory.ingest(estate())
      const before = await inventory.stats()
      clock.advance(60_000)
      const failed = await inventory.startRun('aws:prod', 'full')
      await inventory.ingest(estate().slice(0, 3), { runs: { 'aws:prod': failed.id } })
      const f = await inventory.finishRun(failed.id, 'failed')
      assert.equal(f.status, 'failed')
      assert.equal(f.closed, 0)
      const delta = await inventory.startRun('aws:prod', 'delta')
      await inventory.ingest(estate().slice(0, 3), { runs: { 'aws:prod': delta.id } })
      assert.equal((await inventory.finishRun(delta.id)).closed, 0)
      assert.deepEqual(await inventory.stats(), before)
    })

    it('refuses a run of another source or an unknown run', async () => {
      const { inventory } = await fresh()
      const run = await inventory.startRun('aws:prod', 'full')
      await assert.rejects(inventory.ingest(estate(), { runs: { 'k8s:prod': run.id } }), (e) =>
        isTesseraError(e, 'TSR_VALIDATION'),
      )
      await assert.rejects(inventory.ingest(estate(), { runs: { 'aws:prod': 'nope' } }), (e) =>
        isTesseraError(e, 'TSR_VALIDATION'),
      )
    })

    it('upserts usage per hour idempotently and raises last_used_at', async () => {
      const { inventory } = await fresh()
      const use = (count: number, hour = '2026-02-28T09:59:59Z'): Observation => ({
        type: 'usage',
        source: 'cloudtrail',
        identity: 'ci-bot',
        resource: 'repo:acme/app',
        action: 'push',
        hour,
        count,
      })
      assert.deepEqual(await inventory.ingest([use(5)]), {
        received: 1,
        inserted: 1,
        changed: 0,
        unchanged: 0,
      })
      assert.deepEqual(await inventory.ingest([use(5)]), {
        received: 1,
        inserted: 0,
        changed: 0,
        unchanged: 1,
      })
      assert.deepEqual(await inventory.ingest([use(8)]), {
        received: 1,
        inserted: 0,
        changed: 1,
        unchanged: 0,
      })
      // The identity arrives after its usage and still gets its last use.
      await inventory.ingest([
        { type: 'identity', source: 'gh', ref: 'ci-bot', kind: 'ci_pipeline', name: 'ci-bot' },
      ])
      let d = await inventory.getIdentity('ci-bot')
      assert.deepEqual(d?.usage, [
        {
          resource: 'repo:acme/app',
          action: 'push',
          count: 8,
          firstHour: '2026-02-28T09:00:00.000Z',
          lastHour: '2026-02-28T09:00:00.000Z',
        },
      ])
      assert.equal(d?.lastUsedAt, '2026-02-28T09:00:00.000Z')
      await inventory.ingest([use(1, '2026-02-28T12:30:00Z'), use(2, '2026-02-27T12:30:00Z')])
      d = await inventory.getIdentity('ci-bot')
      assert.equal(d?.usage[0]?.count, 11)
      assert.equal(d?.lastUsedAt, '2026-02-28T12:00:00.000Z')
      const asOf = await inventory.getIdentity('ci-bot', new Date('2026-03-01T10:00:00Z'))
      assert.equal(asOf?.usage[0]?.count, 11)
      assert.equal((await inventory.stats()).usage, 3)
    })

    it('refuses impossible values with TSR_OBSERVATION_INVALID', async () => {
      const { inventory } = await fresh()
      const bad: Observation[] = [
        { type: 'identity', source: 's', ref: 'r', kind: 'bot', name: 'n', createdAt: 'yesterday' },
        { type: 'identity', source: 's', ref: 'r', kind: 'robot' as never, name: 'n' },
        {
          type: 'usage',
          source: 's',
          identity: 'r',
          resource: 'x',
          action: 'a',
          hour: '2026-01-01T00:00:00Z',
          count: -1,
        },
        { type: 'location', source: 's', credential: 'c', locationType: 'git', line: 1.5 },
        { type: 'identity', source: 's', ref: 'r', kind: 'bot', name: 'nul\u0000byte' },
      ]
      for (const obs of bad) {
        await assert.rejects(
          inventory.ingest([obs]),
          (e) => isTesseraError(e, 'TSR_OBSERVATION_INVALID'),
          JSON.stringify(obs),
        )
      }
      assert.equal((await inventory.stats()).identity, 0)
    })

    it('exports what an empty store imports back to the same facts', async () => {
      const { store, clock, inventory } = await fresh()
      await inventory.ingest(estate())
      clock.set('2026-03-02T10:00:00Z')
      await inventory.ingest([
        {
          type: 'resource',
          source: 'aws:prod',
          ref: 'arn:aws:s3:::ledger',
          resourceType: 's3_bucket',
          name: 'ledger-v2',
          attributes: { region: 'eu-west-1', tags: { b: 1, a: [1, 2] } },
        },
      ])
      const exported = await collect(inventory.exportObservations())
      assert.equal(exported.length, 17)
      assert.ok(exported.every((o) => o.type !== 'identity' || typeof o.observedAt === 'string'))

      const other = await fresh('2027-01-01T00:00:00Z')
      const r = await other.inventory.ingest(exported)
      assert.equal(r.inserted, 17)
      const snapshot = async (s: Store) => {
        const out: Record<string, unknown[]> = {}
        for (const t of factTables) {
          const rows = await sql<Record<string, unknown>>`
            select id, ref, content_hash, valid_from from ${sql.table(t)} where valid_to is null order by id
          `.execute(s.db)
          out[t] = rows.rows.map((row) => ({ ...row, valid_from: String(row.valid_from) }))
        }
        out.usage = (
          await sql`select identity_id, resource_ref, action, hour, count, source from usage order by identity_id, hour`.execute(
            s.db,
          )
        ).rows
        return out
      }
      assert.deepEqual(await snapshot(other.store), await snapshot(store))
      assert.deepEqual(await collect(other.inventory.exportObservations()), exported)
      // As of before the change, the old resource name comes back.
      const past = await collect(
        inventory.exportObservations({ at: new Date('2026-03-01T12:00:00Z') }),
      )
      const res = past.find((o) => o.type === 'resource')
      assert.equal(res?.type === 'resource' ? res.name : undefined, 'ledger')
    })

    it('concurrent ingests of overlapping batches leave one current version per fact', async () => {
      const { store, inventory } = await fresh()
      const a = estate()
      const b = estate().map((o) =>
        o.type === 'identity' && o.ref.endsWith('deploy-bot') ? { ...o, name: 'deploy-bot-2' } : o,
      )
      const results = await Promise.all([
        inventory.ingest(a),
        inventory.ingest(b),
        inventory.ingest(a),
      ])
      assert.equal(
        results.reduce((n, r) => n + r.inserted, 0),
        17,
      )
      for (const t of factTables) {
        const dup = await sql<{ n: number }>`
          select count(*)::int as n from (
            select id from ${sql.table(t)} where valid_to is null group by id having count(*) > 1) d
        `.execute(store.db)
        assert.equal(dup.rows[0]?.n, 0, t)
      }
      assert.equal((await inventory.stats()).identity, 5)
    })
  })
}

describe('entityId', () => {
  it('derives the same RFC 9562 version 8 uuid from the same key, and differs per type', () => {
    const a = entityId('identity', 'x')
    assert.equal(a, entityId('identity', 'x'))
    assert.notEqual(a, entityId('credential', 'x'))
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  it('keys a location by all of its parts', () => {
    const loc = {
      credential: 'c',
      locationType: 'git',
      repository: 'r',
      file: 'f',
      line: 1,
    } as const
    assert.notEqual(locationRef(loc), locationRef({ ...loc, line: 2 }))
    assert.equal(locationRef(loc), locationRef({ ...loc }))
  })
})
