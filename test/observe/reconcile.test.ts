import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createMemoryEventSink } from '../../src/audit/event-sink.js'
import { createEntries } from '../../src/entries/entries.js'
import { entityId } from '../../src/inventory/ids.js'
import {
  parseAgentReport,
  reconcile,
  type ReconcileReport,
} from '../../src/lifecycle/reconcile/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { createMemoryFindings } from '../detection/fakes.js'
import { testBackends } from '../support/stores.js'
import { addCredential, addIdentity } from './construct.js'

const td = 'spiffe://example.org'
const parent = `${td}/spire/agent/join_token/n1`
const sel = (s: string) => {
  const i = s.indexOf(':')
  return { type: s.slice(0, i), value: s.slice(i + 1) }
}

/**
 * Desired: entries api (k8s ns/sa), old-job, web (unix uid+path); identities declared by the
 * `registry` source. Observed: SVIDs for api and for a SPIFFE ID with no entry (ghost); Kubernetes
 * workloads api (covered) and miner (not); an agent report of web with another uid; AWS listings.
 */
async function build(store: Store): Promise<{ ids: Record<string, string> }> {
  const clock = createFixedClock('2026-11-20T09:00:00Z')
  const entries = createEntries({ store, clock })
  const ids: Record<string, string> = {}
  const mk = async (name: string, selectors: string[]) =>
    (ids[name] = (
      await entries.create({
        spiffeId: `${td}/ns/prod/${name}`,
        parentId: parent,
        selectors: selectors.map(sel),
        owner: 'team-a',
      })
    ).id)
  await mk('api', ['k8s:ns:prod', 'k8s:sa:api'])
  await mk('old-job', ['k8s:ns:prod', 'k8s:sa:old-job'])
  await mk('web', ['unix:uid:1000', 'unix:path:/usr/bin/web'])
  clock.set('2026-11-23T09:30:00Z')
  await mk('fresh', ['unix:uid:2000'])
  const issue = (spiffeId: string, at: string) =>
    store.db
      .insertInto('issuance')
      .values({
        svid_type: 'x509',
        spiffe_id: spiffeId,
        serial: Math.random().toString(16).slice(2),
        not_before: at,
        not_after: at,
        issued_at: at,
      })
      .execute()
  await issue(`${td}/ns/prod/api`, '2026-11-23T08:00:00Z')
  await issue(`${td}/ns/prod/old-job`, '2026-11-21T08:00:00Z')
  await issue(`${td}/ns/prod/ghost`, '2026-11-23T07:00:00Z')
  // Kubernetes discovery: two deployments and their service accounts.
  const k = 'k8s:prod-eu'
  for (const [name, sa] of [
    ['api', 'api'],
    ['miner', 'default'],
  ] as const) {
    const ref = `k8s:prod-eu:workload:prod/Deployment/${name}`
    await addIdentity(store, {
      ref,
      source: k,
      kind: 'workload',
      name: `prod/${name}`,
      from: '2026-11-01T00:00:00Z',
      attributes: { namespace: 'prod' },
    })
    const saRef = `k8s:prod-eu:sa:prod/${sa}`
    await addIdentity(store, {
      ref: saRef,
      source: k,
      kind: 'service_account',
      name: `system:serviceaccount:prod:${sa}`,
      from: '2026-11-01T00:00:00Z',
    })
    await store.db
      .insertInto('edge')
      .values({
        id: entityId('edge', `${ref}>${saRef}`),
        ref: `${ref}>${saRef}`,
        source: k,
        valid_from: '2026-11-01T00:00:00Z',
        last_seen_at: '2026-11-23T00:00:00Z',
        content_hash: 'x',
        edge_type: 'runs_as',
        from_type: 'identity',
        from_id: entityId('identity', ref),
        from_ref: ref,
        to_type: 'identity',
        to_id: entityId('identity', saRef),
        to_ref: saRef,
      })
      .execute()
  }
  // AWS: a declared user with a key, an undeclared user with a key, a declared role since deleted,
  // and a declared user the last full listing did not show.
  const acct = 'arn:aws:iam::111122223333'
  await addIdentity(store, {
    ref: `${acct}:user/declared-ci`,
    source: 'registry',
    kind: 'iam_user',
    from: '2026-10-01T00:00:00Z',
    to: '2026-10-02T00:00:00Z',
  })
  await addIdentity(store, {
    ref: `${acct}:user/declared-ci`,
    source: 'aws:prod',
    kind: 'iam_user',
    from: '2026-10-02T00:00:00Z',
  })
  await addCredential(store, {
    ref: `aws-key:${acct}:user/declared-ci#1`,
    identity: `${acct}:user/declared-ci`,
    source: 'aws:prod',
    from: '2026-10-02T00:00:00Z',
  })
  await addIdentity(store, {
    ref: `${acct}:user/shadow`,
    source: 'aws:prod',
    kind: 'iam_user',
    from: '2026-10-02T00:00:00Z',
  })
  await addCredential(store, {
    ref: `aws-key:${acct}:user/shadow#1`,
    identity: `${acct}:user/shadow`,
    source: 'aws:prod',
    from: '2026-10-02T00:00:00Z',
  })
  await addIdentity(store, {
    ref: `${acct}:role/old`,
    source: 'registry',
    kind: 'iam_role',
    from: '2026-10-01T00:00:00Z',
    to: '2026-10-02T00:00:00Z',
  })
  await addIdentity(store, {
    ref: `${acct}:role/old`,
    source: 'aws:prod',
    kind: 'iam_role',
    from: '2026-10-02T00:00:00Z',
    to: '2026-11-22T00:00:00Z',
  })
  await addIdentity(store, {
    ref: `${acct}:user/paper-only`,
    source: 'registry',
    kind: 'iam_user',
    from: '2026-11-01T00:00:00Z',
  })
  await store.db
    .insertInto('discovery_run')
    .values({
      id: 'run-1',
      source: 'aws:prod',
      scope: 'full',
      status: 'succeeded',
      started_at: '2026-11-22T00:00:00Z',
      finished_at: '2026-11-22T00:01:00Z',
    })
    .execute()
  return { ids }
}

const report = parseAgentReport({
  agent: 'agent-7',
  at: '2026-11-23T09:55:00Z',
  workloads: [
    { spiffeId: `${td}/ns/prod/web`, selectors: ['unix:uid:1001', 'unix:path:/usr/bin/web'] },
    { selectors: ['unix:uid:3000', 'unix:path:/tmp/x'] },
  ],
})

for (const backend of testBackends()) {
  describe(`reconciliation (${backend.name})`, () => {
    let store: Store
    let ids: Record<string, string>
    let result: ReconcileReport
    const findings = createMemoryFindings()
    const events = createMemoryEventSink()
    before(async () => {
      store = await backend.open()
      ;({ ids } = await build(store))
      result = await reconcile(
        {
          store,
          clock: createFixedClock('2026-11-23T10:00:00Z'),
          findings,
          events,
          entries: createEntries({ store }),
        },
        { staleHours: 24, reported: report, cleanup: true },
      )
    })
    after(async () => store.close())

    const refs = (rule: string) =>
      result.drift
        .filter((d) => d.rule === rule)
        .map((d) => d.subjectRef)
        .sort()

    it('finds entries with no workload for N hours, and cleans them up with an audit record', async () => {
      assert.deepEqual(refs('drift-entry-without-workload'), [`${td}/ns/prod/old-job`])
      const d = result.drift.find((x) => x.rule === 'drift-entry-without-workload')!
      assert.equal(d.evidence.lastIssuedAt, null)
      assert.equal(d.ownerRef, 'team-a')
      assert.deepEqual(result.cleaned, [
        { entryId: ids['old-job'], spiffeId: `${td}/ns/prod/old-job` },
      ])
      assert.deepEqual(
        events.events.map((e) => [e.type, e.subject]),
        [['reconcile.cleanup', `${td}/ns/prod/old-job`]],
      )
      const left = await store.db
        .selectFrom('registration_entry')
        .select('deleted')
        .where('id', '=', ids['old-job']!)
        .where('valid_to', 'is', null)
        .executeTakeFirstOrThrow()
      assert.equal(left.deleted, true)
    })

    it('finds workloads running without a registration', () => {
      assert.deepEqual(refs('drift-workload-unregistered'), [
        'agent-7:unix:path:/tmp/x,unix:uid:3000',
        'k8s:prod-eu:workload:prod/Deployment/miner',
        `${td}/ns/prod/ghost`,
      ])
    })

    it('finds a workload attesting with other selectors than its entry', () => {
      const d = result.drift.filter((x) => x.rule === 'drift-selector-mismatch')
      assert.equal(d.length, 1)
      assert.equal(d[0]!.subjectRef, `${td}/ns/prod/web`)
      assert.deepEqual((d[0]!.evidence.entries as { missing: string[] }[])[0]!.missing, [
        'unix:uid:1000',
      ])
    })

    it('compares cloud listings with the registry', () => {
      const acct = 'arn:aws:iam::111122223333'
      assert.deepEqual(refs('drift-credential-unregistered'), [`aws-key:${acct}:user/shadow#1`])
      assert.deepEqual(refs('drift-identity-gone-from-cloud'), [
        `${acct}:role/old`,
        `${acct}:user/paper-only`,
      ])
    })

    it('counts each kind of drift, and a second run no longer sees the cleaned entry', async () => {
      assert.equal(findings.byKey.size, result.drift.length)
      assert.deepEqual(result.counts, {
        'drift-entry-without-workload': 1,
        'drift-workload-unregistered': 3,
        'drift-selector-mismatch': 1,
        'drift-credential-unregistered': 1,
        'drift-identity-gone-from-cloud': 2,
      })
      const again = await reconcile(
        { store, clock: createFixedClock('2026-11-23T10:00:00Z') },
        { staleHours: 24, reported: report },
      )
      assert.equal(again.counts['drift-entry-without-workload'], 0, 'the stale entry was deleted')
      // Without the agent's report, nothing shows the web entry running any more.
      const blind = await reconcile(
        { store, clock: createFixedClock('2026-11-23T10:00:00Z') },
        { staleHours: 24 },
      )
      assert.deepEqual(
        blind.drift
          .filter((d) => d.rule === 'drift-entry-without-workload')
          .map((d) => d.subjectRef),
        [`${td}/ns/prod/web`],
      )
    })

    it('rejects bad options and reports', async () => {
      await assert.rejects(reconcile({ store }, { staleHours: 0 }), { code: 'TSR_VALIDATION' })
      await assert.rejects(reconcile({ store }, { cleanup: true }), { code: 'TSR_CONFIG' })
      assert.throws(() => parseAgentReport({ agent: 'a', at: 'x', workloads: [] }), {
        code: 'TSR_VALIDATION',
      })
      assert.throws(
        () =>
          parseAgentReport({
            agent: 'a',
            at: '2026-11-23T00:00:00Z',
            workloads: [{ selectors: ['nocolon'] }],
          }),
        {
          code: 'TSR_VALIDATION',
        },
      )
    })
  })
}
