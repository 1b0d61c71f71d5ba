import assert from 'node:assert/strict'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createFixedClock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'
import { testBackends } from '../support/stores.js'
import { cliOn, jsonl, sampleLines, tempDir } from './support.js'

for (const backend of testBackends()) {
  describe(`${backend.name}: tessera inventory`, () => {
    let store: Store
    let cli: ReturnType<typeof cliOn>
    const clock = createFixedClock('2026-06-01T00:00:00Z')
    const dir = tempDir()
    const file = join(dir, 'sample.jsonl')

    before(async () => {
      store = await backend.open()
      cli = cliOn(store, clock)
      writeFileSync(file, jsonl(sampleLines))
    })
    after(() => store.close())

    it('imports valid lines, reports the bad ones by line number, and exits 1', async () => {
      const r = await cli.run('inventory', 'import', file)
      assert.equal(r.code, 1)
      assert.match(r.stderr, /^line 4: invalid JSON/m)
      assert.match(r.stderr, /^line 5: name: /m)
      assert.match(r.stderr, /^line 6: kind: must be one of/m)
      assert.equal(r.stderr.match(/^line /gm)?.length, 3)
      assert.match(r.stdout, /received 6, inserted 6, changed 0, unchanged 0, invalid 3/)
    })

    it('re-importing reports everything unchanged, as JSON with --json', async () => {
      clock.advance(60_000)
      const r = await cli.run('inventory', 'import', file, '--json')
      assert.equal(r.code, 1)
      const summary = JSON.parse(r.stdout)
      assert.equal(summary.received, 6)
      assert.equal(summary.inserted, 0)
      assert.equal(summary.unchanged, 6)
      assert.deepEqual(
        summary.errors.map((e: { line: number }) => e.line),
        [4, 5, 6],
      )
      assert.equal(summary.invalid, 3)
      // --json keeps stderr free of per-line chatter
      assert.equal(r.stderr, '')
    })

    it('lists identities as JSON and as an aligned table, with filters', async () => {
      const r = await cli.run('inventory', 'list', '--json')
      assert.equal(r.code, 0)
      const page = JSON.parse(r.stdout)
      assert.deepEqual(page.items.map((i: { name: string }) => i.name).sort(), [
        'ci-user',
        'deploy',
      ])

      const roles = JSON.parse(
        (await cli.run('inventory', 'list', '--kind', 'iam_role', '--json')).stdout,
      )
      assert.deepEqual(
        roles.items.map((i: { name: string }) => i.name),
        ['deploy'],
      )

      // ci-user was last used 2026-01-01, deploy never: both unused for 90 days before June
      const unused = JSON.parse(
        (await cli.run('inventory', 'list', '--unused-since', '90d', '--json')).stdout,
      )
      assert.equal(unused.items.length, 2)
      const recent = JSON.parse(
        (await cli.run('inventory', 'list', '--unused-since', '2025-12-01', '--json')).stdout,
      )
      assert.deepEqual(
        recent.items.map((i: { name: string }) => i.name),
        ['deploy'],
      )
      const expiring = JSON.parse(
        (await cli.run('inventory', 'list', '--expires-before', '365d', '--json')).stdout,
      )
      assert.deepEqual(
        expiring.items.map((i: { name: string }) => i.name),
        ['ci-user'],
      )

      const table = (await cli.run('inventory', 'list')).stdout.split('\n')
      assert.match(table[0]!, /^NAME\s+KIND\s+SOURCE\s+OWNER\s+STATE\s+LAST USED\s+REF$/)
      const refColumn = table[0]!.indexOf('REF')
      assert.equal(table[1]!.indexOf('arn:'), refColumn)
      assert.equal(table[2]!.indexOf('arn:'), refColumn)
    })

    it('pages with --limit and --cursor, and fetches every page with --all', async () => {
      const first = JSON.parse(
        (await cli.run('inventory', 'list', '--limit', '1', '--json')).stdout,
      )
      assert.equal(first.items.length, 1)
      assert.ok(first.nextCursor)
      const second = JSON.parse(
        (await cli.run('inventory', 'list', '--limit', '1', '--cursor', first.nextCursor, '--json'))
          .stdout,
      )
      assert.equal(second.items.length, 1)
      assert.notEqual(second.items[0].id, first.items[0].id)
      const all = JSON.parse(
        (await cli.run('inventory', 'list', '--limit', '1', '--all', '--json')).stdout,
      )
      assert.equal(all.items.length, 2)
    })

    it('shows one identity with owner, credentials, locations and edges', async () => {
      const r = await cli.run('inventory', 'show', 'arn:aws:iam::1:user/ci', '--json')
      assert.equal(r.code, 0)
      const d = JSON.parse(r.stdout)
      assert.equal(d.name, 'ci-user')
      assert.equal(d.ownerDetail.name, 'Team A')
      assert.equal(d.credentials[0].ref, 'aws-key:AKIAEXAMPLE')
      assert.equal(d.credentials[0].locations[0].file, 'config.env')
      assert.equal(d.edges[0].edgeType, 'can_assume')

      const human = (await cli.run('inventory', 'show', d.id)).stdout
      assert.match(human, /^ci-user {2}\[iam_user\]/)
      assert.match(human, /found in {2}git acme\/app config\.env:3 @abc1234/)
      assert.match(human, /→ can_assume {2}identity arn:aws:iam::1:role\/deploy/)
    })

    it('exits 1 for an identity that does not exist', async () => {
      const r = await cli.run('inventory', 'show', 'arn:nope')
      assert.equal(r.code, 1)
      assert.match(r.stderr, /^error: no identity "arn:nope" \(TSR_NOT_FOUND\)$/m)
    })

    it('walks the graph as JSON and as a tree', async () => {
      const r = await cli.run(
        'inventory',
        'graph',
        'arn:aws:iam::1:user/ci',
        '--depth',
        '2',
        '--json',
      )
      assert.equal(r.code, 0)
      const g = JSON.parse(r.stdout)
      const refs = g.nodes.map((n: { ref: string }) => n.ref)
      assert.ok(refs.includes('arn:aws:iam::1:role/deploy'))
      assert.ok(refs.includes('aws-key:AKIAEXAMPLE'))
      const tree = (await cli.run('inventory', 'graph', 'arn:aws:iam::1:user/ci')).stdout
      assert.match(tree, /^identity ci-user {2}arn:aws:iam::1:user\/ci$/m)
      assert.match(tree, /[├└]─ → can_assume {2}identity deploy {2}arn:aws:iam::1:role\/deploy/)

      const only = JSON.parse(
        (
          await cli.run(
            'inventory',
            'graph',
            'arn:aws:iam::1:user/ci',
            '--edge-type',
            'can_assume',
            '--depth',
            '1',
            '--json',
          )
        ).stdout,
      )
      assert.ok(only.edges.every((e: { edgeType: string }) => e.edgeType === 'can_assume'))
    })

    it('counts current facts', async () => {
      const stats = JSON.parse((await cli.run('inventory', 'stats', '--json')).stdout)
      assert.equal(stats.identity, 2)
      assert.equal(stats.credential, 1)
    })

    it('exports CSV with a header, quoting and the formula guard', async () => {
      const evil = join(dir, 'evil.jsonl')
      writeFileSync(
        evil,
        jsonl([
          {
            type: 'identity',
            source: 'aws:prod',
            ref: 'evil',
            kind: 'bot',
            name: '=HYPERLINK("x","y")',
          },
        ]),
      )
      assert.equal((await cli.run('inventory', 'import', evil)).code, 0)
      const out = join(dir, 'ids.csv')
      const r = await cli.run('inventory', 'export', '--format', 'csv', '--out', out)
      assert.equal(r.code, 0)
      assert.equal(statSync(out).mode & 0o777, 0o600)
      const rows = readFileSync(out, 'utf8').split('\r\n')
      assert.equal(
        rows[0],
        'id,ref,kind,name,source,owner,state,created_at,last_used_at,valid_from',
      )
      assert.ok(rows.some((row) => row.includes(`,"'=HYPERLINK(""x"",""y"")",`)))
      assert.equal(rows.filter((row) => row.length > 0).length, 4)
    })

    it('answers as of an earlier instant with --at', async () => {
      const before = clock.now().toISOString()
      clock.advance(3_600_000)
      const renamed = join(dir, 'renamed.jsonl')
      writeFileSync(renamed, jsonl([{ ...(sampleLines[1] as object), name: 'deploy-v2' }]))
      assert.equal((await cli.run('inventory', 'import', renamed)).code, 0)
      const now = JSON.parse(
        (await cli.run('inventory', 'show', 'arn:aws:iam::1:role/deploy', '--json')).stdout,
      )
      assert.equal(now.name, 'deploy-v2')
      const then = JSON.parse(
        (await cli.run('inventory', 'show', 'arn:aws:iam::1:role/deploy', '--at', before, '--json'))
          .stdout,
      )
      assert.equal(then.name, 'deploy')
      const listed = JSON.parse(
        (await cli.run('inventory', 'list', '--at', '30m', '--q', 'deploy', '--json')).stdout,
      )
      assert.deepEqual(
        listed.items.map((i: { name: string }) => i.name),
        ['deploy'],
      )
    })

    it('--source-run-full closes the facts of that source the file no longer mentions', async () => {
      clock.advance(60_000)
      const only = join(dir, 'only-deploy.jsonl')
      writeFileSync(only, jsonl([{ ...(sampleLines[1] as object), name: 'deploy-v2' }]))
      const r = await cli.run(
        'inventory',
        'import',
        only,
        '--source-run-full',
        'aws:prod',
        '--json',
      )
      assert.equal(r.code, 0)
      const summary = JSON.parse(r.stdout)
      assert.equal(summary.runs[0].source, 'aws:prod')
      assert.equal(summary.runs[0].status, 'succeeded')
      assert.ok(summary.runs[0].closed >= 1)
      const names = JSON.parse((await cli.run('inventory', 'list', '--json')).stdout).items.map(
        (i: { name: string }) => i.name,
      )
      assert.deepEqual(names, ['deploy-v2'])
      // the closed identity is still there in the past
      assert.equal(
        (await cli.run('inventory', 'show', 'arn:aws:iam::1:user/ci', '--at', '2m')).code,
        0,
      )
    })

    it('exports JSON Lines that re-import into an empty store as the same facts', async () => {
      const r = await cli.run('inventory', 'export')
      assert.equal(r.code, 0)
      const lines = r.stdout.trim().split('\n')
      assert.ok(lines.length >= 2)
      const exported = join(dir, 'export.jsonl')
      writeFileSync(exported, r.stdout)

      const fresh = await backend.open()
      try {
        const other = cliOn(fresh, createFixedClock('2026-07-01T00:00:00Z'))
        const imported = await other.run('inventory', 'import', exported, '--json')
        assert.equal(imported.code, 0, imported.stderr)
        assert.equal(JSON.parse(imported.stdout).invalid, 0)
        const a = JSON.parse((await cli.run('inventory', 'stats', '--json')).stdout)
        const b = JSON.parse((await other.run('inventory', 'stats', '--json')).stdout)
        assert.deepEqual(b, a)
        const names = (c: typeof cli) =>
          c
            .run('inventory', 'list', '--json')
            .then((x) => JSON.parse(x.stdout).items.map((i: { ref: string }) => i.ref))
        assert.deepEqual(await names(other), await names(cli))
      } finally {
        await fresh.close()
      }
    })

    it('manages API tokens on the store; the secret is printed once and never listed', async () => {
      const created = await cli.run(
        'api-token',
        'create',
        '--name',
        'ci',
        '--scope',
        'read,write',
        '--ttl',
        '30d',
        '--json',
      )
      assert.equal(created.code, 0, created.stderr)
      const token = JSON.parse(created.stdout)
      assert.match(token.token, /^tsr_/)
      assert.deepEqual(token.scopes, ['read', 'write'])
      const listed = await cli.run('api-token', 'list')
      assert.match(listed.stdout, new RegExp(`${token.id}\\s+ci\\s+read,write`))
      assert.ok(!listed.stdout.includes(token.token))
      assert.equal((await cli.run('api-token', 'revoke', token.id)).code, 0)
      assert.match((await cli.run('api-token', 'list')).stdout, /revoked/)
      assert.equal((await cli.run('api-token', 'revoke', 'ffffffffffffffff')).code, 1)
    })

    it('rejects bad option values as usage errors (exit 2) before opening the store', async () => {
      const opens = cli.backendOpens
      for (const args of [
        ['inventory', 'list', '--kind', 'robot'],
        ['inventory', 'list', '--at', 'yesterday'],
        ['inventory', 'list', '--limit', '0'],
        ['inventory', 'list', '--bogus'],
        ['inventory', 'graph', 'x', '--edge-type', 'likes'],
        ['api-token', 'create', '--name', 'x', '--scope', 'root'],
        ['inventory', 'frobnicate'],
      ]) {
        const r = await cli.run(...args)
        assert.equal(r.code, 2, args.join(' '))
        assert.match(r.stderr, /^error: .+ \(TSR_VALIDATION\)$/m, args.join(' '))
      }
      const json = await cli.run('inventory', 'list', '--kind', 'robot', '--json')
      assert.equal(JSON.parse(json.stderr).error.code, 'TSR_VALIDATION')
      assert.equal(cli.backendOpens, opens)
    })
  })
}
