import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { sql } from 'kysely'
import {
  aggregateUsage,
  createDecisionUsageObserver,
  grantedButUnused,
  parseCloudTrail,
  parseK8sAudit,
  parseUsageJsonl,
  parseUsageLog,
  recordUsage,
  usageFormats,
} from '../../src/inventory/usage/index.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { addCredential, addGrant, addIdentity } from './construct.js'

const example = (name: string) =>
  readFileSync(new URL(`../../examples/usage/${name}`, import.meta.url), 'utf8')

const bot = 'arn:aws:iam::111122223333:user/report-bot'
const apiRole = 'arn:aws:iam::111122223333:role/api'

describe('usage parsers', () => {
  it('reads a CloudTrail file: successful calls, roles for sessions, one record per resource', () => {
    const r = parseCloudTrail(example('cloudtrail.json'))
    assert.deepEqual(r.problems, [])
    assert.equal(r.read, 5)
    assert.equal(r.ignored, 2, 'the AccessDenied call and the AWS service call')
    assert.deepEqual(
      r.records.map((x) => [x.identity, x.action, x.resource, x.at.toISOString(), x.sourceAddress]),
      [
        [
          bot,
          's3:GetObject',
          'arn:aws:s3:::reports/2026/11/q3.csv',
          '2026-11-23T10:04:01.000Z',
          '203.0.113.10',
        ],
        [bot, 's3:GetObject', 'arn:aws:s3:::reports', '2026-11-23T10:04:01.000Z', '203.0.113.10'],
        [bot, 's3:GetObject', 'arn:aws:s3:::reports', '2026-11-23T10:34:59.000Z', '203.0.113.10'],
        [
          apiRole,
          'dynamodb:Query',
          'arn:aws:dynamodb:eu-west-1:111122223333:table/orders',
          '2026-11-23T11:00:00.000Z',
          '10.0.4.17',
        ],
      ],
    )
    assert.equal(r.records[0]!.accessKeyId, 'AKIAEXAMPLEREPORT01')
  })

  it('reads a Kubernetes audit log: final stage, successful requests, RBAC-shaped refs', () => {
    const r = parseK8sAudit(example('k8s-audit.jsonl'), { cluster: 'prod-eu' })
    assert.deepEqual(r.problems, [])
    assert.equal(r.ignored, 2, 'the RequestReceived stage and the 403')
    assert.deepEqual(
      r.records.map((x) => [x.identity, x.action, x.resource, x.at.toISOString()]),
      [
        [
          'k8s:prod-eu:sa:prod/report-bot',
          'get',
          'k8s://prod-eu/namespaces/prod/secrets/db-pass',
          '2026-11-23T10:04:01.500Z',
        ],
        [
          'k8s:prod-eu:sa:prod/report-bot',
          'list',
          'k8s://prod-eu/namespaces/prod/deployments.apps',
          '2026-11-23T10:20:00.000Z',
        ],
        [
          'k8s:prod-eu:user:alice@example.com',
          'get',
          'k8s://prod-eu/nonresource/healthz',
          '2026-11-23T10:22:00.000Z',
        ],
      ],
    )
  })

  it('reads the generic JSON Lines form and reports bad lines by number', () => {
    const r = parseUsageJsonl(example('usage.jsonl'))
    assert.deepEqual(r.problems, [])
    assert.equal(r.records.length, 3)
    assert.equal(r.records[0]!.count, 3)
    assert.equal(r.records[2]!.credential, 'github-pat:acme/deploy')
    const bad = parseUsageJsonl(
      '{"identity":"a","resource":"r","action":"x","at":"nope"}\n[1]\n{"identity":"a","resource":"r","action":"x","at":"2026-01-01T00:00:00Z","count":-1}\n',
    )
    assert.deepEqual(
      bad.problems.map((p) => p.line),
      [1, 2, 3],
    )
  })

  it('reports a file of the wrong shape instead of throwing', () => {
    assert.equal(parseCloudTrail('[]').problems.length, 1)
    assert.equal(parseCloudTrail('{').problems.length, 1)
    assert.equal(parseK8sAudit('{"kind":"Pod"}', { cluster: 'c' }).problems.length, 1)
    assert.throws(() => parseUsageLog('', { format: 'xml' as never }), { code: 'TSR_VALIDATION' })
  })

  it('never throws on arbitrary input, and every record it returns is well-formed (fuzz)', () => {
    const jsonish = fc.oneof(
      fc.string(),
      fc.json(),
      fc.jsonValue().map((v) => JSON.stringify({ Records: [v] })),
      fc
        .record({
          kind: fc.constantFrom('Event', 'X'),
          apiVersion: fc.constantFrom('audit.k8s.io/v1', 'v1'),
          verb: fc.oneof(fc.string(), fc.integer()),
          stage: fc.constantFrom('ResponseComplete', 'RequestReceived', undefined),
          user: fc.record({
            username: fc.oneof(fc.string(), fc.constant('system:serviceaccount:a:b')),
          }),
          objectRef: fc.option(
            fc.record({ resource: fc.string(), namespace: fc.option(fc.string()) }),
          ),
          stageTimestamp: fc.oneof(
            fc.string(),
            fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          ),
        })
        .map((v) => JSON.stringify(v)),
      fc
        .record({
          identity: fc.oneof(fc.string(), fc.integer()),
          resource: fc.string(),
          action: fc.string(),
          at: fc.oneof(
            fc.string(),
            fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          ),
          count: fc.oneof(fc.integer(), fc.double(), fc.string()),
        })
        .map((v) => JSON.stringify(v)),
    )
    fc.assert(
      fc.property(
        fc.array(jsonish, { maxLength: 5 }),
        fc.constantFrom(...usageFormats),
        (lines, format) => {
          const r = parseUsageLog(lines.join('\n'), { format, cluster: 'c' })
          for (const rec of r.records) {
            assert.ok(rec.identity.length > 0 && rec.resource.length > 0 && rec.action.length > 0)
            assert.ok(!Number.isNaN(rec.at.getTime()))
            assert.ok(
              rec.count === undefined || (Number.isSafeInteger(rec.count) && rec.count >= 1),
            )
          }
          assert.ok(r.problems.length <= 100)
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('aggregates per identity, resource, action and hour', () => {
    const agg = aggregateUsage(parseCloudTrail(example('cloudtrail.json')).records)
    const reports = agg.rows.find((r) => r.resource === 'arn:aws:s3:::reports')!
    assert.equal(reports.count, 2)
    assert.equal(reports.hour, '2026-11-23T10:00:00.000Z')
    assert.equal(reports.lastAt, '2026-11-23T10:34:59.000Z')
    assert.deepEqual(agg.accessKeys, {
      AKIAEXAMPLEREPORT01: '2026-11-23T10:34:59.000Z',
      ASIAEXAMPLETEMP0001: '2026-11-23T11:00:00.000Z',
    })
  })
})

for (const backend of testBackends()) {
  describe(`usage in the store (${backend.name})`, () => {
    let store: Store
    before(async () => {
      store = await backend.open()
      await addIdentity(store, { ref: bot, kind: 'iam_user', from: '2026-01-01T00:00:00Z' })
      await addIdentity(store, { ref: apiRole, kind: 'iam_role', from: '2026-01-01T00:00:00Z' })
      await addCredential(store, {
        ref: `aws-key:${bot}#1`,
        identity: bot,
        from: '2026-01-01T00:00:00Z',
        attributes: { accessKeyId: 'AKIAEXAMPLEREPORT01' },
      })
      await addCredential(store, {
        ref: 'github-pat:acme/deploy',
        identity: 'ci:github:acme/deploy',
        from: '2026-01-01T00:00:00Z',
      })
    })
    after(async () => store.close())

    const usageRows = async () =>
      (
        await sql<{
          identity_ref: string
          resource_ref: string
          action: string
          count: number
          source: string
        }>`
          select identity_ref, resource_ref, action, count, source from usage order by identity_ref, resource_ref, action, source
        `.execute(store.db)
      ).rows

    it('imports idempotently and raises last_used_at on identities and credentials', async () => {
      const agg = aggregateUsage(parseCloudTrail(example('cloudtrail.json')).records)
      const first = await recordUsage({ store }, agg, { source: 'cloudtrail:cloudtrail.json' })
      assert.equal(first.written, 3)
      assert.equal(first.identitiesTouched, 2)
      assert.equal(first.credentialsTouched, 1)
      const before = await usageRows()
      const again = await recordUsage({ store }, agg, { source: 'cloudtrail:cloudtrail.json' })
      assert.equal(again.written, 0)
      assert.equal(again.unchanged, 3)
      assert.deepEqual(await usageRows(), before, 're-import changes nothing')
      const id = await store.db
        .selectFrom('identity')
        .select('last_used_at')
        .where('ref', '=', bot)
        .where('valid_to', 'is', null)
        .executeTakeFirstOrThrow()
      assert.equal(new Date(id.last_used_at!).toISOString(), '2026-11-23T10:34:59.000Z')
      const key = await store.db
        .selectFrom('credential')
        .select('last_used_at')
        .where('ref', '=', `aws-key:${bot}#1`)
        .executeTakeFirstOrThrow()
      assert.equal(new Date(key.last_used_at!).toISOString(), '2026-11-23T10:34:59.000Z')
      const jsonl = aggregateUsage(parseUsageJsonl(example('usage.jsonl')).records)
      const r = await recordUsage({ store }, jsonl, { source: 'jsonl:usage.jsonl' })
      assert.equal(r.credentialsTouched, 1, 'the credential named by ref')
      const select = (await usageRows()).find((u) => u.action === 'db:select')
      assert.equal(select?.count, 4)
    })

    it('turns allowed decisions into usage, adding across batches', async () => {
      const observer = createDecisionUsageObserver({ store })
      const at = new Date('2026-11-23T12:10:00Z')
      const ev = (seq: number, decision: string) => ({
        seq,
        at,
        type: 'authz.decision',
        subject: apiRole,
        resource: 'arn:aws:s3:::reports',
        action: 's3:ListBucket',
        decision,
      })
      await observer.observe([
        ev(1, 'allow'),
        ev(2, 'deny'),
        ev(3, 'allow'),
        { seq: 4, at, type: 'issuance.x509' },
      ])
      assert.equal(observer.pending, 2)
      await observer.flush()
      await observer.observe([ev(5, 'allow')])
      await observer.flush()
      const row = (await usageRows()).find((u) => u.source === 'tessera:authz')
      assert.equal(row?.count, 3)
    })

    it('finds granted-but-unused actions, honouring wildcards', async () => {
      await addGrant(store, {
        identity: bot,
        resource: 'arn:aws:s3:::reports*',
        actions: ['s3:Get*', 's3:PutObject'],
        from: '2026-06-01T00:00:00Z',
      })
      await addGrant(store, {
        identity: apiRole,
        resource: 'arn:aws:dynamodb:eu-west-1:111122223333:table/orders',
        actions: ['dynamodb:Query'],
        from: '2026-06-01T00:00:00Z',
      })
      await addGrant(store, {
        identity: apiRole,
        resource: 'arn:aws:s3:::archive',
        actions: ['s3:GetObject'],
        from: '2026-06-01T00:00:00Z',
      })
      await addGrant(store, {
        identity: apiRole,
        resource: 'arn:aws:s3:::new',
        actions: ['s3:GetObject'],
        from: '2026-11-20T00:00:00Z',
      })
      const since = new Date('2026-08-25T00:00:00Z')
      const unused = await grantedButUnused({ db: store.db, since })
      assert.deepEqual(
        unused.map((u) => [u.identityRef, u.resourceRef, u.unusedActions, u.usedActions]),
        [
          [apiRole, 'arn:aws:s3:::archive', ['s3:GetObject'], []],
          [bot, 'arn:aws:s3:::reports*', ['s3:PutObject'], ['s3:Get*']],
        ],
        'the grant newer than `since` is left out; Query on orders was used',
      )
      const later = await grantedButUnused({
        db: store.db,
        since: new Date('2026-11-24T00:00:00Z'),
        onlyOlderGrants: false,
      })
      assert.equal(later.length, 4, 'nothing was used after the usage hours')
    })
  })
}
