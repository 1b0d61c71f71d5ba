import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { createInventory, entityId } from '../../src/inventory/index.js'
import { createOwners, type Owners } from '../../src/inventory/owners/owners.js'
import { createOwnershipResolver } from '../../src/inventory/owners/ownership.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { codeowners, graph, ids, ownersCsv } from './graph-fixture.js'

for (const backend of testBackends()) {
  describe(`owners and ownership (${backend.name})`, () => {
    let store: Store
    let owners: Owners
    const clock = createFixedClock('2026-11-20T12:00:00Z')

    before(async () => {
      store = await backend.open()
      const inventory = createInventory({ store, clock })
      owners = createOwners({ store, inventory, clock })
      await owners.importText(ownersCsv)
      await inventory.ingest(graph)
      await owners.setCodeowners('github.com/acme/api', codeowners)
      await owners.assign(ids.explicit, 'ana@acme.example', {
        by: 'cli:test',
        reason: 'took it over',
      })
    })
    after(() => store.close())

    it('imports the SCIM sample: people, teams, departed, memberships', async () => {
      const text = await readFile('examples/owners/scim-users-groups.json', 'utf8')
      const r = await owners.importText(text, { source: 'scim:okta' })
      assert.equal(r.people, 3)
      assert.equal(r.teams, 2)
      assert.equal(r.departed, 1)
      assert.deepEqual(r.unmatchedMembers, [])
      const ana = await owners.get('ana.costa@acme.example')
      assert.equal(ana?.team, 'payments-core')
      assert.deepEqual(ana?.teams, ['payments-core', 'sre'])
      assert.equal(ana?.attributes.costCenter, 'CC-410')
      const amir = await owners.get('amir.haddad@acme.example')
      assert.equal(amir?.status, 'departed')
      assert.equal(amir?.attributes.departedAt, '2026-11-20T12:00:00.000Z')
      // Importing again is idempotent: nothing new.
      const again = await owners.importText(text, { source: 'scim:okta' })
      assert.equal(again.inserted + again.changed, 0)
    })

    it('imports the CSV sample and keeps a departed person as departed', async () => {
      const text = await readFile('examples/owners/owners.csv', 'utf8')
      const r = await owners.importText(text, { source: 'csv:hr' })
      assert.equal(r.people, 3)
      assert.equal(r.teams, 2)
      const wei = await owners.get('wei.santos@acme.example')
      assert.equal(wei?.name, 'Wei Santos, Jr.')
      const departed = await owners.list({ status: 'departed' })
      assert.ok(departed.items.some((o) => o.ref === 'amir.haddad@acme.example'))
      // Never deleted: every version is kept.
      const versions = await store.db
        .selectFrom('owner')
        .select(['status', 'valid_to'])
        .where('id', '=', entityId('owner', 'amir.haddad@acme.example'))
        .execute()
      assert.ok(versions.length >= 1)
    })

    const expected: Array<[string, string | null, string, number, boolean]> = [
      // identity, owner, deciding step, confidence, orphaned
      [ids.explicit, 'ana@acme.example', 'explicit', 1, false],
      [ids.source, 'sre', 'source', 0.9, false],
      [ids.tagTeam, 'payments-core', 'tags', 0.75, false],
      [ids.costCenter, 'payments-core', 'tags', 0.6, false],
      [ids.codeowners, 'wei@acme.example', 'codeowners', 0.7, false],
      [ids.commit, 'ana@acme.example', 'commit-author', 0.6, false],
      [ids.createdBy, 'wei@acme.example', 'created-by', 0.5, false],
      [ids.parent, 'sre', 'parent', 0.72, false],
      [ids.departed, 'amir@acme.example', 'source', 0.9, true],
      [ids.agent, 'ana@acme.example', 'parent', 0.8, false],
      [ids.subAgent, 'ana@acme.example', 'parent', 0.64, false],
      [ids.unknown, 'ghost-team', 'source', 0.72, false],
    ]
    for (const [ref, owner, step, confidence, orphaned] of expected) {
      it(`resolves ${ref} to ${owner} by ${step}`, async () => {
        const o = await owners.ownership(ref)
        assert.ok(o)
        assert.equal(o.owner?.ref ?? null, owner)
        assert.equal(o.evidence[0]?.step, step)
        assert.equal(o.confidence, confidence)
        assert.equal(o.orphaned, orphaned)
      })
    }

    it('says why: departed owner, no owner, unknown owner, alternatives kept', async () => {
      const departed = (await owners.ownership(ids.departed))!
      assert.equal(departed.orphanReason, 'owner-departed')
      assert.equal(departed.owner?.status, 'departed')
      assert.deepEqual(
        departed.evidence.map((e) => [e.step, e.owner]),
        [
          ['source', 'amir@acme.example'],
          ['created-by', 'wei@acme.example'],
        ],
      )
      const none = (await owners.ownership(ids.none))!
      assert.equal(none.owner, null)
      assert.equal(none.orphanReason, 'no-owner')
      const unknown = (await owners.ownership(ids.unknown))!
      assert.equal(unknown.owner?.status, 'unknown')
      const explicit = (await owners.ownership(ids.explicit))!
      assert.match(explicit.evidence[0]!.detail, /assigned by cli:test: took it over/)
      assert.equal(explicit.evidence[1]?.owner, 'amir@acme.example')
      const co = (await owners.ownership(ids.codeowners))!
      assert.match(co.evidence[0]!.detail, /CODEOWNERS of github.com\/acme\/api line 3/)
    })

    it('follows a configured order', async () => {
      const resolver = createOwnershipResolver({ db: store.db, order: ['created-by', 'source'] })
      const o = (await resolver.resolve(ids.departed))!
      assert.equal(o.owner?.ref, 'wei@acme.example')
      assert.equal(o.orphaned, false)
      const only = createOwnershipResolver({ db: store.db, order: ['tags'] })
      assert.equal((await only.resolve(ids.source))!.orphanReason, 'no-owner')
    })

    it('resolves the whole inventory page by page', async () => {
      const resolver = createOwnershipResolver({ db: store.db })
      const all = []
      for await (const page of resolver.resolveAll(5)) all.push(...page)
      assert.equal(all.length, 13)
      assert.equal(all.filter((o) => o.orphaned).length, 2)
    })

    it('reassigns explicitly, keeping the earlier assignment as history', async () => {
      await owners.assign(ids.explicit, 'wei@acme.example', { by: 'cli:test' })
      assert.equal((await owners.ownership(ids.explicit))!.owner?.ref, 'wei@acme.example')
      const rows = await store.db
        .selectFrom('owner_assignment')
        .select(['owner_ref', 'valid_to'])
        .where('identity_id', '=', entityId('identity', ids.explicit))
        .orderBy('version_id')
        .execute()
      assert.deepEqual(
        rows.map((r) => [r.owner_ref, r.valid_to === null]),
        [
          ['ana@acme.example', false],
          ['wei@acme.example', true],
        ],
      )
      await assert.rejects(owners.assign(ids.explicit, 'amir@acme.example'), /departed/)
      await assert.rejects(owners.assign(ids.explicit, 'nobody'), { code: 'TSR_NOT_FOUND' })
      await assert.rejects(owners.assign('no-such-identity', 'sre'), { code: 'TSR_NOT_FOUND' })
    })
  })
}
