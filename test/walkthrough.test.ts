/**
 * The README's walk-through, command by command, on every store backend: import the sample, list it,
 * look at one identity and its graph, then a full discovery run of aws:prod a day later, and the
 * same questions asked as of before that run.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { createFixedClock } from '../src/runtime/clock.js'
import type { Store } from '../src/store/index.js'
import { deriveDay2, readJsonl, renderJsonl } from '../scripts/derive-day2.js'
import { cliOn } from './cli/support.js'
import { testBackends } from './support/stores.js'

const sample = 'examples/inventory.jsonl'
const day2 = 'examples/aws-prod-day2.jsonl'

it('examples/aws-prod-day2.jsonl is what scripts/derive-day2.ts derives from the sample', () => {
  assert.equal(readFileSync(day2, 'utf8'), renderJsonl(deriveDay2(readJsonl(sample))))
})

for (const backend of testBackends()) {
  describe(`README walk-through (${backend.name})`, () => {
    let store: Store
    const clock = createFixedClock('2026-11-21T09:00:00Z')
    before(async () => {
      store = await backend.open()
    })
    after(async () => {
      await store.close()
    })

    it('imports, lists, shows, walks the graph, and answers as of before a full run', async () => {
      const cli = cliOn(store, clock)
      const imported = await cli.run('inventory', 'import', sample, '--json')
      assert.equal(imported.code, 0, imported.stderr)
      const summary = JSON.parse(imported.stdout) as { received: number; invalid: number }
      assert.equal(summary.invalid, 0)
      assert.ok(summary.received > 10_000)

      const stats = JSON.parse((await cli.run('inventory', 'stats', '--json')).stdout) as Record<
        string,
        number
      >
      assert.equal(stats.identity, 2000)

      const agents = await cli.run(
        'inventory',
        'list',
        '--kind',
        'ai_agent',
        '--limit',
        '5',
        '--json',
      )
      assert.equal(agents.code, 0, agents.stderr)
      const page = JSON.parse(agents.stdout) as {
        items: Array<{ ref: string; kind: string }>
        nextCursor?: string
      }
      assert.equal(page.items.length, 5)
      assert.ok(page.items.every((i) => i.kind === 'ai_agent'))
      assert.ok(page.nextCursor)

      const agentRef = page.items[0]!.ref
      const shown = JSON.parse((await cli.run('inventory', 'show', agentRef, '--json')).stdout) as {
        ref: string
        edges: Array<{ edgeType: string }>
      }
      assert.equal(shown.ref, agentRef)
      assert.ok(shown.edges.some((e) => e.edgeType === 'delegated_to' || e.edgeType === 'created'))

      const graph = JSON.parse(
        (await cli.run('inventory', 'graph', agentRef, '--depth', '2', '--json')).stdout,
      ) as { nodes: Array<{ depth: number }>; edges: unknown[] }
      assert.ok(graph.nodes.some((n) => n.depth === 2))
      assert.ok(graph.edges.length > 0)

      // A day later: the full run of aws:prod no longer sees some identities and disables others.
      const dayOne = clock.now().toISOString()
      clock.advance(24 * 3600_000)
      const run = await cli.run('inventory', 'import', day2, '--full', '--json')
      assert.equal(run.code, 0, run.stderr)

      const dropped = readJsonl(sample).find(
        (o) =>
          o.type === 'identity' &&
          o.source === 'aws:prod' &&
          !readFileSync(day2, 'utf8').includes(JSON.stringify(o.ref)),
      )
      assert.ok(dropped && dropped.type === 'identity')
      const now = await cli.run('inventory', 'show', dropped.ref, '--json')
      assert.equal(now.code, 1, 'a closed identity is not found now')
      const then = await cli.run('inventory', 'show', dropped.ref, '--at', dayOne, '--json')
      assert.equal(then.code, 0, then.stderr)
      assert.equal((JSON.parse(then.stdout) as { ref: string }).ref, dropped.ref)

      const disabledNow = JSON.parse(
        (
          await cli.run(
            'inventory',
            'list',
            '--source',
            'aws:prod',
            '--state',
            'disabled',
            '--all',
            '--json',
          )
        ).stdout,
      ) as { items: unknown[] }
      const disabledThen = JSON.parse(
        (
          await cli.run(
            'inventory',
            'list',
            '--source',
            'aws:prod',
            '--state',
            'disabled',
            '--all',
            '--at',
            dayOne,
            '--json',
          )
        ).stdout,
      ) as { items: unknown[] }
      assert.ok(disabledNow.items.length > disabledThen.items.length)
    })
  })
}
