import assert from 'node:assert/strict'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { SourceRunStats } from '../../src/discovery/index.js'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { cliOn, tempDir } from '../cli/support.js'
import { testBackends } from '../support/stores.js'

const examples = new URL('../../examples/', import.meta.url).pathname

for (const backend of testBackends()) {
  describe(`${backend.name}: tessera discover run`, () => {
    let store: Store
    const clock = createFixedClock('2026-11-20T12:00:00Z')
    const dir = tempDir()
    before(async () => {
      store = await backend.open()
      copyFileSync(join(examples, 'aws/authorization-details.json'), join(dir, 'auth.json'))
      copyFileSync(join(examples, 'aws/credential-report.csv'), join(dir, 'report.csv'))
      writeFileSync(
        join(dir, 'sources.yaml'),
        [
          'sources:',
          '  - name: aws:prod',
          '    type: aws',
          '    interval: 6h',
          '    options:',
          '      authorizationDetails: auth.json',
          '      credentialReport: report.csv',
        ].join('\n'),
      )
    })
    after(() => store.close())

    const run = async (...args: string[]) => {
      const r = await cliOn(store, clock).run(
        'discover',
        'run',
        '--json',
        '--config',
        join(dir, 'sources.yaml'),
        ...args,
      )
      return {
        ...r,
        stats: r.stdout ? (JSON.parse(r.stdout) as { sources: SourceRunStats[] }).sources : [],
      }
    }

    it('runs a source, then a second run changes nothing', async () => {
      const first = await run()
      assert.equal(first.code, 0, first.stderr)
      const s = first.stats[0]!
      assert.equal(s.source, 'aws:prod')
      assert.equal(s.status, 'succeeded')
      assert.ok(s.seen > 40, `seen ${s.seen}`)
      assert.equal(s.new, s.seen)
      assert.equal(s.errors, 0)
      clock.advance(3_600_000)
      const again = await run('aws:prod')
      const t = again.stats[0]!
      assert.deepEqual([t.seen, t.new, t.changed, t.unchanged, t.closed], [s.seen, 0, 0, s.seen, 0])
      // Each run's statistics are recorded with it in the store, not only printed.
      const recorded = await store.db
        .selectFrom('discovery_run')
        .select(['status', 'stats'])
        .where('source', '=', 'aws:prod')
        .orderBy('started_at')
        .execute()
      const statsOf = (v: unknown) =>
        (typeof v === 'string' ? JSON.parse(v) : v) as Record<string, number>
      assert.deepEqual(statsOf(recorded.at(-2)!.stats), {
        seen: s.seen,
        new: s.seen,
        changed: 0,
        unchanged: 0,
        errors: 0,
        closed: 0,
      })
      assert.deepEqual(statsOf(recorded.at(-1)!.stats), {
        seen: s.seen,
        new: 0,
        changed: 0,
        unchanged: s.seen,
        errors: 0,
        closed: 0,
      })
    })

    it('a truncated input keeps its valid part, reports file and position, and closes nothing', async () => {
      const full = readFileSync(join(examples, 'aws/authorization-details.json'), 'utf8')
      writeFileSync(
        join(dir, 'auth.json'),
        full.slice(0, full.indexOf('"RoleName": "data-pipeline"')),
      )
      clock.advance(3_600_000)
      const r = await run()
      assert.equal(r.code, 1)
      const s = r.stats[0]!
      assert.equal(s.status, 'failed')
      assert.equal(s.closed, 0)
      assert.equal(s.errors, 1)
      assert.match(
        s.problems[0]!,
        /^TSR_DISCOVERY_INPUT: .*auth\.json at \$\.RoleDetailList\[3\] \(line \d+, column \d+, byte \d+\)/,
      )
      // Policies come last in the export and were cut off: attachments are kept, marked unresolved.
      assert.ok(s.seen > 20)
      // Human output names the problem on stderr.
      const human = await cliOn(store, clock).run(
        'discover',
        'run',
        '--config',
        join(dir, 'sources.yaml'),
      )
      assert.equal(human.code, 1)
      assert.match(
        human.stderr,
        /aws:prod: TSR_DISCOVERY_INPUT: .*auth\.json at \$\.RoleDetailList\[3\]/,
      )
      assert.match(
        human.stdout,
        /SOURCE\s+KIND\s+SCOPE\s+STATUS\s+SEEN\s+NEW\s+CHANGED\s+CLOSED\s+ERRORS/,
      )
    })

    it('a full run closes what it no longer sees', async () => {
      // The role is gone from a complete export: its facts close.
      const doc = JSON.parse(
        readFileSync(join(examples, 'aws/authorization-details.json'), 'utf8'),
      ) as {
        RoleDetailList: { RoleName: string }[]
      }
      doc.RoleDetailList = doc.RoleDetailList.filter((r) => r.RoleName !== 'data-pipeline')
      writeFileSync(join(dir, 'auth.json'), JSON.stringify(doc))
      clock.advance(3_600_000)
      const r = await run()
      assert.equal(r.code, 0, r.stderr)
      const s = r.stats[0]!
      assert.equal(s.status, 'succeeded')
      // The role, its grants (2 buckets), its 4 trust edges and the lambda principal.
      assert.ok(s.closed >= 7, `closed ${s.closed}`)
    })

    it('refuses a bad sources file with every problem, and an unknown source name', async () => {
      writeFileSync(
        join(dir, 'bad.yaml'),
        'sources:\n  - name: x\n    type: nope\n  - name: y\n    type: aws\n    interval: 5s\n    options: {credentialReprot: a.csv}\n',
      )
      const r = await cliOn(store, clock).run('discover', 'run', '--config', join(dir, 'bad.yaml'))
      assert.equal(r.code, 2)
      assert.match(r.stderr, /TSR_CONFIG/)
      assert.match(r.stderr, /x: type must be one of/)
      assert.match(r.stderr, /y: interval must be a duration/)
      assert.match(r.stderr, /y: options.credentialReprot: unknown option/)
      const u = await run('aws:staging')
      assert.equal(u.code, 2)
      assert.match(u.stderr, /no source named aws:staging \(configured: aws:prod\)/)
    })
  })
}
