import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { createInventory } from '../../src/inventory/index.js'
import { createPosture, type FindingView, type Posture } from '../../src/posture/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { now, postureGraph, refs } from './graph.js'

const day = 86_400_000

for (const backend of testBackends()) {
  describe(`posture rules (${backend.name})`, () => {
    let store: Store
    let posture: Posture
    const clock = createFixedClock(now)

    before(async () => {
      store = await backend.open()
      await createInventory({ store, clock }).ingest(postureGraph())
      await store.db
        .insertInto('registration_entry')
        .values({
          id: '00000000-0000-4000-8000-000000000001',
          spiffe_id: 'spiffe://acme.example/long',
          parent_id: 'spiffe://acme.example/agent/1',
          selectors: JSON.stringify([{ type: 'unix', value: 'uid:1000' }]),
          x509_svid_ttl: 172_800,
          jwt_svid_ttl: 300,
          owner_ref: 'payments',
        })
        .execute()
      posture = createPosture({
        store,
        clock,
        config: { crownJewels: ['arn:aws:secretsmanager:*'] },
      })
    })
    after(async () => store.close())

    async function open(rule: string): Promise<FindingView[]> {
      const page = await posture.findings.list({ rule, status: 'open', limit: 1000 })
      return page.items
    }
    const subjects = async (rule: string) => (await open(rule)).map((f) => f.subjectRef).sort()

    it('every rule finds exactly the known answer', async () => {
      const result = await posture.run()
      const found = Object.fromEntries(result.rules.map((r) => [r.rule, r.found]))
      const expected: Record<string, string[]> = {
        'certificate-expired': ['cert-expired'],
        'certificate-expiring': ['cert-soon'],
        'static-key-age': ['k1'],
        'identity-unused': [refs.never, refs.old],
        'admin-grant': [refs.admin],
        'unused-permissions': [refs.admin, refs.reader, refs.ci],
        orphaned: [refs.bobs, refs.orphan],
        'hard-coded-secret': ['aws-key:AKIALEAK', 'fp:hmac-aaa'],
        'shared-credential': ['fingerprint:fp-shared', 'fingerprint:fp-two-places'],
        'long-ttl': [
          'cert-long',
          'spiffe://acme.example/long (entry 00000000-0000-4000-8000-000000000001)',
        ],
        'ci-prod-write': [refs.ci],
        'non-expiring-integration-token': ['tok-forever'],
        'trust-path-crown-jewel': [refs.deployer, refs.ci],
      }
      for (const [rule, want] of Object.entries(expected)) {
        assert.deepEqual(await subjects(rule), [...want].sort(), rule)
        assert.equal(found[rule], want.length, `${rule} count`)
      }
      assert.equal(result.rules.length, Object.keys(expected).length)
    })

    it('evidence says why: ages, owners, locations, grants', async () => {
      const [key] = await open('static-key-age')
      assert.equal(key!.evidence.neverRotated, true)
      assert.equal(key!.evidence.ageDays, 323)
      assert.equal(key!.owner, 'ann@acme.example')

      const unused = await open('identity-unused')
      const never = unused.find((f) => f.subjectRef === refs.never)!
      assert.equal(never.evidence.neverUsed, true)
      const old = unused.find((f) => f.subjectRef === refs.old)!
      assert.equal(old.evidence.unusedDays, 203)

      const orphans = await open('orphaned')
      assert.equal(orphans.find((f) => f.subjectRef === refs.orphan)!.evidence.reason, 'no-owner')
      assert.equal(
        orphans.find((f) => f.subjectRef === refs.bobs)!.evidence.reason,
        'owner-departed',
      )

      const [leak] = (await open('hard-coded-secret')).filter((f) => f.subjectRef === 'fp:hmac-aaa')
      assert.equal(leak!.evidence.introducedBy, 'carl@acme.example')
      assert.equal(leak!.owner, 'carl@acme.example')
      assert.deepEqual(leak!.evidence.locations, [
        {
          type: 'git',
          repository: refs.repo,
          file: 'config.yml',
          line: 3,
          commit: 'c1',
          host: null,
        },
      ])

      const shared = await open('shared-credential')
      const twoIds = shared.find((f) => f.subjectRef === 'fingerprint:fp-shared')!
      assert.equal(twoIds.evidence.identityCount, 2)
      assert.deepEqual(twoIds.evidence.identities, [refs.old, refs.reader].sort())
      const twoPlaces = shared.find((f) => f.subjectRef === 'fingerprint:fp-two-places')!
      assert.equal(twoPlaces.evidence.placeCount, 2)

      const [ttl] = (await open('long-ttl')).filter((f) => f.subjectRef === 'cert-long')
      assert.equal(ttl!.evidence.ttlSeconds, 881 * 86_400)

      const [ci] = await open('ci-prod-write')
      assert.deepEqual(ci!.evidence.grants, [
        { resource: refs.prodData, environment: 'prod', actions: ['s3:PutObject'], via: null },
      ])

      const [admin] = await open('admin-grant')
      assert.deepEqual(admin!.evidence.grants, [
        {
          resource: refs.prodData,
          actions: ['*'],
          via: 'arn:aws:iam::aws:policy/AdministratorAccess',
        },
      ])
    })

    it('proposes least privilege from observed usage', async () => {
      const byRef = new Map((await open('unused-permissions')).map((f) => [f.subjectRef, f]))
      const reader = byRef.get(refs.reader)!
      assert.deepEqual(reader.evidence.proposal, [
        { resource: refs.prodData, actions: ['s3:GetObject', 's3:ListBucket'] },
      ])
      assert.deepEqual(reader.evidence.grants, [
        {
          resource: refs.prodData,
          via: 'policy/reader',
          granted: ['s3:GetObject', 's3:ListBucket', 's3:PutObject'],
          used: ['s3:GetObject', 's3:ListBucket'],
          unused: ['s3:PutObject'],
          wildcard: false,
        },
      ])
      const admin = byRef.get(refs.admin)!
      assert.deepEqual(admin.evidence.proposal, [
        { resource: refs.prodData, actions: ['s3:GetObject'] },
      ])
      assert.equal((admin.evidence.grants as Array<{ wildcard: boolean }>)[0]!.wildcard, true)
      // Never used at all: the proposal is to drop every grant.
      assert.deepEqual(byRef.get(refs.ci)!.evidence.proposal, [])
    })

    it('shows the transitive trust path as evidence', async () => {
      const byRef = new Map((await open('trust-path-crown-jewel')).map((f) => [f.subjectRef, f]))
      const ci = byRef.get(refs.ci)!
      assert.equal(ci.severity, 'critical')
      assert.equal(ci.evidence.lowTrustBecause, 'kind')
      assert.equal(ci.evidence.hops, 5)
      assert.deepEqual(ci.evidence.path, [
        { type: 'identity', ref: refs.ci, hop: 'grant' },
        { type: 'resource', ref: refs.repo, hop: 'holds' },
        { type: 'credential', ref: 'aws-key:AKIALEAK', hop: 'authenticates' },
        { type: 'identity', ref: refs.deployer, hop: 'can_assume' },
        { type: 'identity', ref: refs.secretsReader, hop: 'grant' },
        { type: 'resource', ref: refs.jewel },
      ])
      const deployer = byRef.get(refs.deployer)!
      assert.equal(deployer.evidence.lowTrustBecause, 'leaked-credential')
      assert.equal(deployer.evidence.hops, 2)
    })

    it('a shorter depth limit cuts the long path', async () => {
      const short = createPosture({
        store,
        clock,
        config: {
          crownJewels: ['arn:aws:secretsmanager:*'],
          thresholds: { 'trust-path-crown-jewel': { maxDepth: 4 } },
        },
      })
      await short.run({ rules: ['trust-path-crown-jewel'] })
      assert.deepEqual(await subjects('trust-path-crown-jewel'), [refs.deployer])
      await posture.run({ rules: ['trust-path-crown-jewel'] })
      assert.deepEqual(await subjects('trust-path-crown-jewel'), [refs.ci, refs.deployer].sort())
    })

    it('scores risk from findings and blast radius', async () => {
      const scores = await posture.riskScores({ limit: 100 })
      const ci = scores.find((s) => s.identityRef === refs.ci)!
      // unused-permissions 3 + ci-prod-write 6 + trust path 10; 3 resources reachable.
      assert.equal(ci.findings, 3)
      assert.equal(ci.maxSeverity, 'critical')
      assert.equal(ci.blastRadius, 3)
      assert.equal(ci.score, Math.round(19 * (1 + Math.log10(4)) * 100) / 100)
      // deployer reaches the crown jewel through the role it can assume.
      const deployer = scores.find((s) => s.identityRef === refs.deployer)!
      assert.equal(deployer.blastRadius, 1)
      assert.equal(scores[0]!.identityRef, refs.ci)
    })

    it('deduplicates, keeps first seen, and resolves what is gone', async () => {
      const before = await open('identity-unused')
      clock.advance(60_000)
      await createInventory({ store, clock }).ingest([
        {
          type: 'identity',
          source: 'aws:prod',
          ref: refs.old,
          kind: 'service_account',
          name: 'svc-old',
          owner: 'ann@acme.example',
          createdAt: '2026-01-01T00:00:00.000Z',
          lastUsedAt: clock.now().toISOString(),
        },
      ])
      const r = await posture.run({ rules: ['identity-unused'] })
      assert.deepEqual(
        {
          opened: r.rules[0]!.opened,
          updated: r.rules[0]!.updated,
          resolved: r.rules[0]!.resolved,
        },
        { opened: 0, updated: 1, resolved: 1 },
      )
      const after = await open('identity-unused')
      assert.deepEqual(
        after.map((f) => f.subjectRef),
        [refs.never],
      )
      const never0 = before.find((f) => f.subjectRef === refs.never)!
      assert.equal(after[0]!.id, never0.id)
      assert.equal(after[0]!.firstSeenAt, never0.firstSeenAt)
      assert.ok(after[0]!.lastSeenAt > never0.lastSeenAt)
      const resolved = await posture.findings.list({ rule: 'identity-unused', status: 'resolved' })
      assert.equal(resolved.items[0]!.subjectRef, refs.old)
      assert.ok(resolved.items[0]!.resolvedAt)
    })

    it('accepts with a reason and an expiry, and reopens when it expires', async () => {
      const [f] = await open('identity-unused')
      await assert.rejects(
        posture.findings.accept(f!.id, {
          reason: '',
          until: new Date(clock.now().getTime() + day),
        }),
        /reason/,
      )
      await assert.rejects(
        posture.findings.accept(f!.id, { reason: 'batch job', until: new Date(0) }),
        /future/,
      )
      const accepted = await posture.findings.accept(f!.id, {
        reason: 'quarterly batch job',
        until: new Date(clock.now().getTime() + 10 * day),
        by: 'ann',
      })
      assert.equal(accepted.status, 'accepted')
      assert.equal(accepted.acceptedReason, 'quarterly batch job (by ann)')
      // Seen again while accepted: stays accepted.
      await posture.run({ rules: ['identity-unused'] })
      assert.equal((await posture.findings.get(f!.id))!.status, 'accepted')
      clock.advance(11 * day)
      assert.equal((await posture.findings.get(f!.id))!.status, 'open')
      const counts = await sql<{
        n: string
      }>`select count(*) as n from finding where status = 'accepted'`.execute(store.db)
      assert.equal(Number(counts.rows[0]!.n), 0)
    })

    it('takes reports from other producers through the same store', async () => {
      const reporter = posture.findings
      const r1 = await reporter.report(
        'drift.entry-missing',
        [
          {
            rule: 'drift.entry-missing',
            severity: 'low',
            subjectType: 'entry',
            subjectRef: 'a',
            evidence: { n: 1 },
          },
          {
            rule: 'drift.entry-missing',
            severity: 'low',
            subjectType: 'entry',
            subjectRef: 'b',
            evidence: {},
          },
        ] as never,
        { complete: true },
      )
      assert.deepEqual(r1, { opened: 2, updated: 0, resolved: 0 })
      const r2 = await reporter.report(
        'drift.entry-missing',
        [
          {
            rule: 'drift.entry-missing',
            severity: 'medium',
            subjectType: 'entry',
            subjectRef: 'a',
            evidence: { n: 2 },
          },
        ],
        { complete: true },
      )
      assert.deepEqual(r2, { opened: 0, updated: 1, resolved: 1 })
      const open = await posture.findings.list({ rule: 'drift.entry-missing', status: 'open' })
      assert.deepEqual(
        open.items.map((f) => [f.subjectRef, f.severity, f.evidence]),
        [['a', 'medium', { n: 2 }]],
      )
      await assert.rejects(
        reporter.report('x', [
          { rule: 'x', severity: 'bad' as never, subjectType: 't', subjectRef: 'r', evidence: {} },
        ]),
        /severity/,
      )
    })
  })
}
