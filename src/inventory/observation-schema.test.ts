import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { Compile } from 'typebox/compile'
import { generateObservations, writeJsonLines } from '../../scripts/generate-inventory.js'
import {
  observationSchemaPath,
  renderObservationSchema,
} from '../../scripts/write-observation-schema.js'
import { edgeTypes, identityKinds } from '../store/schema.js'
import { credentialTypes, locationTypes, type Observation } from './observation.js'
import { parseJsonLines, parseObservation } from './observation-parse.js'
import { ObservationBatchSchema, ObservationSchema } from './observation-schema.js'

const examplesPath = new URL('../../examples/inventory.jsonl', import.meta.url)

/** Collects what `writeJsonLines` writes, as the CLI would write it to a file. */
async function render(observations: Iterable<Observation>): Promise<string> {
  const chunks: Buffer[] = []
  const sink = {
    write(chunk: Buffer | string) {
      chunks.push(Buffer.from(chunk))
      return true
    },
  } as unknown as NodeJS.WritableStream
  await writeJsonLines(observations, sink)
  return Buffer.concat(chunks).toString('utf8')
}

describe('observation JSON Schema', () => {
  it('docs/observation.schema.json is the generated one (run scripts/write-observation-schema.ts)', async () => {
    assert.equal(readFileSync(observationSchemaPath, 'utf8'), await renderObservationSchema())
  })

  it('the compiled union accepts a valid observation and rejects other shapes', () => {
    const union = Compile(ObservationSchema)
    const identity = { type: 'identity', source: 'aws:prod', ref: 'r', kind: 'bot', name: 'n' }
    assert.ok(union.Check(identity))
    assert.ok(!union.Check({ ...identity, kind: 'robot' }))
    assert.ok(!union.Check({ ...identity, type: 'credential' }))
  })

  it('a batch holds 1..10,000 observations and run ids per source', () => {
    const batch = Compile(ObservationBatchSchema)
    const identity = { type: 'identity', source: 'aws:prod', ref: 'r', kind: 'bot', name: 'n' }
    assert.ok(batch.Check({ observations: [identity], runs: { 'aws:prod': 'run-1' } }))
    assert.ok(!batch.Check({ observations: [] }))
    assert.ok(!batch.Check({ observations: Array(10_001).fill(identity) }))
    assert.ok(!batch.Check({ observations: [identity], runs: { 'aws:prod': 7 } }))
  })
})

describe('docs/observation-schema.md', () => {
  it('every JSON example passes the parser', () => {
    const markdown = readFileSync(
      new URL('../../docs/observation-schema.md', import.meta.url),
      'utf8',
    )
    const lines = [...markdown.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!)
    assert.ok(lines.length >= 9)
    const types = new Set<string>()
    for (const line of lines) {
      const result = parseObservation(JSON.parse(line))
      assert.ok(result.ok, `${line}: ${result.ok ? '' : result.reason}`)
      types.add(result.observation.type)
    }
    assert.equal(types.size, 8, 'one example per observation type at least')
  })
})

describe('sample generator', () => {
  const now = new Date('2026-11-20T12:00:00Z')

  it('is deterministic for a seed and instant, and the seed matters', async () => {
    const a = await render(generateObservations({ seed: 7, identities: 300, now }))
    const b = await render(generateObservations({ seed: 7, identities: 300, now }))
    const c = await render(generateObservations({ seed: 8, identities: 300, now }))
    assert.equal(a, b)
    assert.notEqual(a, c)
  })

  it('examples/inventory.jsonl is the output of seed 42 with 2,000 identities', async () => {
    const expected = await render(generateObservations({ seed: 42, identities: 2000, now }))
    assert.equal(readFileSync(examplesPath, 'utf8'), expected)
  })

  it('every line of examples/inventory.jsonl passes the parser, unchanged', async () => {
    const text = readFileSync(examplesPath, 'utf8')
    const lines = text.split('\n').filter((l) => l !== '')
    let count = 0
    for await (const entry of parseJsonLines(text)) {
      assert.ok(
        'observation' in entry,
        `line ${entry.line}: ${'error' in entry ? entry.error : ''}`,
      )
      assert.deepEqual(entry.observation, JSON.parse(lines[entry.line - 1]!))
      count++
    }
    assert.equal(count, lines.length)
  })

  it('covers every kind, credential type, location type and edge type, with the requested shapes', () => {
    const all = [...generateObservations({ seed: 42, identities: 2000, now })]
    const of = <T extends Observation['type']>(type: T) =>
      all.filter((o): o is Extract<Observation, { type: T }> => o.type === type)
    const identities = of('identity')
    const credentials = of('credential')
    assert.equal(identities.length, 2000)
    assert.deepEqual(new Set(identities.map((i) => i.kind)), new Set(identityKinds))
    assert.deepEqual(new Set(credentials.map((c) => c.credentialType)), new Set(credentialTypes))
    assert.deepEqual(new Set(of('location').map((l) => l.locationType)), new Set(locationTypes))
    assert.deepEqual(new Set(of('edge').map((e) => e.edgeType)), new Set(edgeTypes))
    assert.equal(
      new Set(identities.map((i) => i.ref)).size,
      identities.length,
      'identity refs are unique',
    )
    assert.equal(
      new Set(credentials.map((c) => c.ref)).size,
      credentials.length,
      'credential refs are unique',
    )

    const owners = of('owner')
    const people = owners.filter((o) => o.ownerType === 'person')
    const departed = new Set(people.filter((p) => p.status === 'departed').map((p) => p.ref))
    assert.ok(departed.size > 0 && departed.size < people.length * 0.2)
    assert.ok(
      identities.some((i) => i.owner === undefined),
      'some identities are orphans',
    )
    assert.ok(
      identities.some((i) => i.owner && departed.has(i.owner)),
      'some owned by departed people',
    )

    const nowMs = now.getTime()
    const ms = (s: string | undefined) => (s === undefined ? undefined : Date.parse(s))
    assert.ok(identities.some((i) => i.lastUsedAt === undefined))
    assert.ok(identities.some((i) => nowMs - ms(i.lastUsedAt ?? '2999-01-01')! > 90 * 86_400_000))
    assert.ok(credentials.some((c) => ms(c.expiresAt) !== undefined && ms(c.expiresAt)! < nowMs))
    assert.ok(
      credentials.some((c) => {
        const e = ms(c.expiresAt)
        return e !== undefined && e > nowMs && e < nowMs + 30 * 86_400_000
      }),
    )
    for (const c of credentials) {
      assert.match(c.fingerprint ?? '', /^hmac-sha256:[0-9a-f]{64}$/)
    }
    const fingerprints = new Map<string, number>()
    for (const c of credentials)
      fingerprints.set(c.fingerprint!, (fingerprints.get(c.fingerprint!) ?? 0) + 1)
    assert.ok(
      [...fingerprints.values()].some((n) => n > 1),
      'some secrets are shared by two credentials',
    )
    const locationsPerCredential = new Map<string, number>()
    for (const l of of('location')) {
      locationsPerCredential.set(l.credential, (locationsPerCredential.get(l.credential) ?? 0) + 1)
    }
    assert.ok([...locationsPerCredential.values()].some((n) => n >= 2 && n <= 5))
    const grants = of('grant')
    const admin = grants.filter((g) => g.resource === '*' || g.actions.includes('*'))
    assert.ok(admin.length > 0 && admin.length < grants.length * 0.2)
  })

  it('links point only to facts already generated', () => {
    const seen = new Map<string, Set<string>>([
      ['identity', new Set()],
      ['credential', new Set()],
      ['owner', new Set()],
      ['resource', new Set()],
    ])
    const has = (type: string, ref: string) => seen.get(type)?.has(ref) ?? false
    for (const o of generateObservations({ seed: 3, identities: 1500, now })) {
      switch (o.type) {
        case 'identity':
          if (o.owner) assert.ok(has('owner', o.owner), o.owner)
          break
        case 'credential':
          if (o.identity) assert.ok(has('identity', o.identity), o.identity)
          break
        case 'location':
          assert.ok(has('credential', o.credential), o.credential)
          break
        case 'grant':
        case 'usage':
          assert.ok(has('identity', o.identity), o.identity)
          assert.ok(o.resource === '*' || has('resource', o.resource), o.resource)
          break
        case 'edge':
          assert.ok(has(o.from.type, o.from.ref), `${o.edgeType} from ${o.from.ref}`)
          assert.ok(has(o.to.type, o.to.ref), `${o.edgeType} to ${o.to.ref}`)
          break
      }
      if ('ref' in o) seen.get(o.type)?.add(o.ref)
    }
  })
})
