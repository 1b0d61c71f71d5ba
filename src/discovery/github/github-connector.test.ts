import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { byType, collect, make, memoryFiles } from '../testing/collect.js'
import { createGithubConnector } from './github-connector.js'

const file = new URL('../../../examples/github/acme-org.json', import.meta.url).pathname

describe('github connector on the sample org export', () => {
  it('maps app installations, Actions secrets, deploy keys and fine-grained PAT approvals', async () => {
    const r = await collect(make(createGithubConnector, { file }, { name: 'github:acme' }))
    assert.deepEqual(r.errors, [])
    assert.deepEqual(r.invalid, [])
    const ids = new Map(byType(r.observations, 'identity').map((i) => [i.ref, i]))
    const bot = ids.get('github:installation:48291037')!
    assert.deepEqual(
      [bot.kind, bot.name, bot.state],
      ['bot', 'acme-deploy-bot[bot] on acme', 'active'],
    )
    assert.equal(ids.get('github:installation:27364510')?.state, 'disabled')
    const grants = byType(r.observations, 'grant')
    assert.deepEqual(grants.find((g) => g.identity === bot.ref)?.actions, [
      'actions:write',
      'contents:write',
      'deployments:write',
      'metadata:read',
      'pull_requests:read',
    ])

    const creds = new Map(byType(r.observations, 'credential').map((c) => [c.ref, c]))
    assert.equal(
      creds.get('github-secret:acme/NPM_TOKEN')?.lastRotatedAt,
      '2025-11-02T09:31:12.000Z',
    )
    assert.ok(creds.has('github-secret:acme/payments/STRIPE_API_KEY'))
    const locs = byType(r.observations, 'location').filter((l) => l.locationType === 'ci_secret')
    assert.equal(locs.length, 5)

    // Deploy keys: fingerprinted like ssh-keygen, write access as a grant, the adder as creator.
    const dk = ids.get('github:deploy-key:acme/payments#91028374')!
    assert.equal(dk.createdBy, 'ana-costa-acme')
    const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { key: string }[]>
    const tmp = join(tmpdir(), `tessera-dk-${process.pid}.pub`)
    writeFileSync(tmp, doc['repos/acme/payments/keys']![0]!.key + '\n')
    const expected = execFileSync('ssh-keygen', ['-lf', tmp], { encoding: 'utf8' }).split(' ')[1]
    const key = creds.get('github-deploy-key:acme/payments#91028374')!
    assert.equal(key.attributes?.sshFingerprint, expected)
    assert.deepEqual(grants.find((g) => g.identity === dk.ref)?.actions, [
      'contents:read',
      'contents:write',
    ])
    assert.deepEqual(grants.find((g) => g.identity.endsWith('#82736451'))?.actions, [
      'contents:read',
    ])

    const pat = ids.get('github:pat:acme/2520571')!
    assert.equal(pat.owner, 'dev-tanaka')
    const patCred = creds.get('github-pat:acme/18273645')!
    assert.deepEqual(
      [patCred.credentialType, patCred.expiresAt, patCred.lastUsedAt],
      ['token', '2027-02-14T10:30:00.000Z', '2026-11-18T17:55:00.000Z'],
    )
    assert.equal(creds.get('github-pat:acme/12093847')?.state, 'expired')
    const patGrants = grants
      .filter((g) => g.identity === pat.ref)
      .map((g) => [g.resource, g.actions.join(',')])
    assert.deepEqual(patGrants.sort(), [
      ['github://acme', 'members:read'],
      ['github://acme/(selected)', 'contents:write,metadata:read,pull_requests:write'],
    ])
  })

  it('keeps what precedes a truncation and reports it by JSON path', async () => {
    const text = readFileSync(file, 'utf8')
    const files = memoryFiles({
      '/g/org.json': text.slice(0, text.indexOf('"token_name": "dashboards"')),
    })
    const r = await collect(make(createGithubConnector, { file: '/g/org.json' }), { files })
    assert.equal(r.errors.length, 1)
    assert.match(
      r.errors[0]!.message,
      /^\/g\/org\.json at \$\["orgs\/acme\/personal-access-tokens"\]\[1\] \(line \d+/,
    )
    assert.ok(byType(r.observations, 'identity').some((i) => i.ref === 'github:pat:acme/2520571'))
    assert.ok(!byType(r.observations, 'identity').some((i) => i.ref === 'github:pat:acme/1998234'))
  })

  it('reports a bad deploy key and an unknown file shape', async () => {
    const files = memoryFiles({
      '/g/a.json': JSON.stringify({ 'repos/acme/x/keys': [{ id: 1, key: 'ssh-ed25519 AAAA' }] }),
      '/g/b.json': '{"hello": 1}',
    })
    const a = await collect(make(createGithubConnector, { file: '/g/a.json' }), { files })
    assert.match(
      a.errors[0]!.message,
      /\/g\/a\.json at \$\["repos\/acme\/x\/keys"\]\[0\]\.key: deploy key: truncated key data/,
    )
    const b = await collect(make(createGithubConnector, { file: '/g/b.json' }), { files })
    assert.match(b.errors[0]!.message, /no known GitHub API path/)
  })
})
