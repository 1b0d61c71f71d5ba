import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { isTesseraError } from '../errors.js'
import { edgeTypes, identityKinds, ownerStatuses } from '../store/schema.js'
import { credentialTypes, locationTypes, nodeTypes, type Observation } from './observation.js'
import {
  parseJsonLines,
  parseObservation,
  readJsonLinesFile,
  type JsonLinesEntry,
} from './observation-parse.js'

async function collect(
  input: Parameters<typeof parseJsonLines>[0],
  options?: Parameters<typeof parseJsonLines>[1],
): Promise<JsonLinesEntry[]> {
  const out: JsonLinesEntry[] = []
  for await (const entry of parseJsonLines(input, options)) out.push(entry)
  return out
}

const identity = {
  type: 'identity',
  source: 'aws:prod',
  ref: 'arn:aws:iam::123456789012:role/deploy',
  kind: 'iam_role',
  name: 'deploy',
}
const credential = {
  type: 'credential',
  source: 'aws:prod',
  ref: 'aws-key:AKIAEXAMPLE0001',
  credentialType: 'access_key',
  fingerprint: 'hmac-sha256:' + 'ab'.repeat(32),
  preview: 'AKIA…0001',
}

function reasonOf(value: unknown): string {
  const result = parseObservation(value)
  assert.equal(result.ok, false, `expected a rejection of ${JSON.stringify(value)}`)
  return result.ok ? '' : result.reason
}

describe('parseObservation', () => {
  it('accepts every variant and returns a copy', () => {
    const samples: Observation[] = [
      identity as Observation,
      credential as Observation,
      {
        type: 'location',
        source: 'scanner',
        credential: credential.ref,
        locationType: 'git',
        repository: 'github.com/acme/api',
        file: '.env',
        line: 3,
        commit: 'a'.repeat(40),
      },
      {
        type: 'owner',
        source: 'hr',
        ref: 'ana@acme.example',
        ownerType: 'person',
        name: 'Ana',
        email: 'ana@acme.example',
        status: 'departed',
        team: 'platform',
      },
      {
        type: 'resource',
        source: 'aws:prod',
        ref: 'arn:aws:s3:::logs',
        resourceType: 's3_bucket',
        name: 'logs',
        environment: 'prod',
      },
      {
        type: 'grant',
        source: 'aws:prod',
        identity: identity.ref,
        resource: '*',
        actions: ['*'],
        via: 'AdministratorAccess',
      },
      {
        type: 'usage',
        source: 'aws:prod',
        identity: identity.ref,
        resource: 'arn:aws:s3:::logs',
        action: 's3:GetObject',
        hour: '2026-11-20T10:00:00.000Z',
        count: 4,
      },
      {
        type: 'edge',
        source: 'aws:prod',
        edgeType: 'can_assume',
        from: { type: 'identity', ref: 'a' },
        to: { type: 'identity', ref: 'b' },
        attributes: { chain: [1, 2] },
      },
    ]
    for (const sample of samples) {
      const result = parseObservation(sample)
      assert.ok(result.ok, JSON.stringify(result))
      assert.deepEqual(result.observation, sample)
      assert.notEqual(result.observation, sample)
    }
  })

  it('normalises dates to UTC ISO, truncates the usage hour and lower-cases fingerprints', () => {
    const usage = parseObservation({
      type: 'usage',
      source: 'aws:prod',
      identity: 'i',
      resource: 'r',
      action: 'a',
      hour: '2026-11-20T10:59:59.999+01:00',
      count: 1,
      observedAt: '2026-11-20T12:00:00Z',
    })
    assert.ok(usage.ok)
    assert.equal((usage.observation as { hour: string }).hour, '2026-11-20T09:00:00.000Z')
    assert.equal(usage.observation.observedAt, '2026-11-20T12:00:00.000Z')
    const cred = parseObservation({ ...credential, fingerprint: 'AB'.repeat(20) })
    assert.ok(cred.ok)
    assert.equal((cred.observation as { fingerprint: string }).fingerprint, 'ab'.repeat(20))
  })

  it('gives short, precise reasons', () => {
    assert.equal(
      reasonOf({ ...identity, kind: 'robot' }),
      'kind: must be one of ' + identityKinds.join(', '),
    )
    assert.match(
      reasonOf({ ...identity, type: 'foo' }),
      /^unknown type "foo" \(expected one of identity, credential/,
    )
    assert.equal(reasonOf({ source: 'x' }), 'type: required')
    assert.equal(reasonOf({ type: 7 }), 'type: must be a string')
    const { credentialType: _omitted, ...noType } = credential
    assert.equal(reasonOf(noType), 'credentialType: required')
    assert.equal(reasonOf({ type: 'identity', source: 'x' }), 'ref, kind, name: required')
    assert.equal(reasonOf({ ...identity, name: 42 }), 'name: must be a string')
    assert.equal(reasonOf({ ...identity, name: '' }), 'name: must not be empty')
    assert.equal(
      reasonOf({ ...identity, ref: 'x'.repeat(2049) }),
      'ref: must be at most 2048 characters',
    )
    assert.equal(
      reasonOf({ ...identity, surprise: 1 }),
      'unknown field "surprise" (put source-specific data in attributes)',
    )
    assert.equal(
      reasonOf({ ...identity, source: 'has space' }),
      'source: must start with a letter or digit and use only letters, digits and . _ : -',
    )
    assert.equal(
      reasonOf({ ...identity, createdAt: 'yesterday' }),
      'createdAt: must be an RFC 3339 date-time such as 2026-11-20T12:00:00Z',
    )
    assert.equal(
      reasonOf({ ...identity, createdAt: '1969-12-31T23:00:00Z' }),
      'createdAt: year must be between 1970 and 9999',
    )
    assert.equal(
      reasonOf({
        ...identity,
        attributes: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])),
      }),
      'attributes: must have at most 64 keys',
    )
    assert.equal(
      reasonOf({ ...identity, attributes: { note: 'a\u0000b' } }),
      'attributes.note: must not contain U+0000',
    )
    assert.equal(
      reasonOf({
        type: 'edge',
        source: 's',
        edgeType: 'owns',
        from: { type: 'owner', ref: 'a' },
        to: { type: 'team', ref: 'b' },
      }),
      'to.type: must be one of ' + nodeTypes.join(', '),
    )
    assert.equal(
      reasonOf({ type: 'grant', source: 's', identity: 'i', resource: '*', actions: [] }),
      'actions: must have at least 1 item',
    )
    assert.equal(
      reasonOf({ type: 'grant', source: 's', identity: 'i', resource: '*', actions: ['ok', 3] }),
      'actions[1]: must be a string',
    )
    assert.equal(
      reasonOf({
        type: 'usage',
        source: 's',
        identity: 'i',
        resource: 'r',
        action: 'a',
        hour: '2026-11-20T10:00:00Z',
        count: -1,
      }),
      'count: must be >= 0',
    )
    assert.equal(reasonOf([identity]), 'expected a JSON object, got an array')
    assert.equal(reasonOf(null), 'expected a JSON object, got null')
  })

  it('rejects previews that could be the whole secret and malformed fingerprints', () => {
    for (const preview of [
      'AKIAIOSFODNN7EXAMPLE',
      'abcdefgh',
      'AKIAI…X7Q2',
      'AKIA…X7Q2Z',
      'sk_live_…',
    ]) {
      assert.match(reasonOf({ ...credential, preview }), /^preview: must be redacted/, preview)
    }
    for (const preview of ['AKIA…X7Q2', 'ghp_****', '…Q2x9', '****', 'ab...yz', '••••']) {
      assert.ok(parseObservation({ ...credential, preview }).ok, preview)
    }
    for (const fingerprint of [
      'abc',
      'hmac-sha256:xyz',
      'g'.repeat(64),
      'a'.repeat(129),
      'sha256:',
    ]) {
      assert.equal(
        reasonOf({ ...credential, fingerprint }),
        'fingerprint: must be hmac-sha256:<hex> or 32..128 hex digits',
      )
    }
    assert.ok(parseObservation({ ...credential, fingerprint: 'f'.repeat(32) }).ok)
  })

  it('never echoes a rejected value', () => {
    const secret = 'sk_live_0123456789abcdefghijklmnopqrstuv'
    for (const bad of [
      { ...credential, preview: secret },
      { ...credential, credentialType: secret },
      { ...credential, fingerprint: secret },
      { ...identity, createdAt: secret },
    ]) {
      assert.ok(!reasonOf(bad).includes('sk_live_0123'), reasonOf(bad))
    }
  })
})

describe('parseJsonLines', () => {
  const good = JSON.stringify(identity)

  it('reports each bad line with its number and keeps going', async () => {
    const lines = [
      good,
      '{"type":"identity",',
      JSON.stringify({ ...identity, name: 5 }),
      JSON.stringify({ ...identity, kind: 'robot' }),
      JSON.stringify({ ...identity, type: 'foo' }),
      JSON.stringify({ type: 'identity', source: 'x', ref: 'r', kind: 'bot' }),
      'x'.repeat(300),
      JSON.stringify({ ...identity, lastUsedAt: '2026-02-30T25:00:00Z' }),
      '[1,2]',
      '"a string"',
      good,
    ]
    const entries = await collect(lines.join('\n'), { maxLineBytes: 200 })
    assert.deepEqual(
      entries.map((e) => ('error' in e ? [e.line, e.error.split(':')[0]] : [e.line, 'ok'])),
      [
        [1, 'ok'],
        [2, 'invalid JSON'],
        [3, 'name'],
        [4, 'kind'],
        [
          5,
          'unknown type "foo" (expected one of identity, credential, location, owner, resource, grant, usage, edge)',
        ],
        [6, 'name'],
        [7, 'line longer than 200 bytes'],
        [8, 'lastUsedAt'],
        [9, 'expected a JSON object, got an array'],
        [10, 'expected a JSON object, got a string'],
        [11, 'ok'],
      ],
    )
    assert.equal(
      (entries[1] as { error: string }).error,
      'invalid JSON: expected double-quoted property name at column 20',
    )
    assert.equal((entries[5] as { error: string }).error, 'name: required')
  })

  it('does not quote the offending input in JSON errors', async () => {
    const [entry] = await collect('{"key": sk_live_0123456789abcdef}\n')
    assert.ok(entry && 'error' in entry)
    assert.match(entry.error, /^invalid JSON: /)
    assert.ok(!entry.error.includes('sk_live_0123'), entry.error)
  })

  it('handles CRLF, blank lines, a BOM on line 1 and a final line without newline', async () => {
    const text = `\uFEFF${good}\r\n\r\n   \n${good}\r\n${good}`
    const entries = await collect(text)
    assert.deepEqual(
      entries.map((e) => [e.line, 'observation' in e]),
      [
        [1, true],
        [4, true],
        [5, true],
      ],
    )
    const bomLater = await collect(`${good}\n\uFEFF${good}\n`)
    assert.ok('error' in bomLater[1]!, 'a BOM is only allowed at the start of the input')
  })

  it('gives the same entries however the bytes are split into chunks', async () => {
    const withUnicode = JSON.stringify({ ...identity, name: 'Zoë’s 🚀 deployer' })
    const text = `${good}\r\n${withUnicode}\n{"broken"\n${withUnicode}`
    const whole = await collect(text)
    const bytes = Buffer.from(text, 'utf8')
    for (let cut = 0; cut <= bytes.length; cut++) {
      const split = await collect([bytes.subarray(0, cut), bytes.subarray(cut)])
      assert.deepEqual(split, whole, `split at byte ${cut}`)
    }
    const oneByteChunks = await collect(
      (async function* () {
        for (const b of bytes) yield Buffer.from([b])
      })(),
    )
    assert.deepEqual(oneByteChunks, whole)
  })

  it('skips an oversized line arriving in many chunks and resumes after it', async () => {
    async function* chunks() {
      yield `${good}\n`
      for (let i = 0; i < 1000; i++) yield 'y'.repeat(1024)
      yield `\n${good}\n`
    }
    const entries = await collect(chunks(), { maxLineBytes: 4096 })
    assert.deepEqual(
      entries.map((e) => ('error' in e ? [e.line, e.error] : [e.line, 'ok'])),
      [
        [1, 'ok'],
        [2, 'line longer than 4096 bytes'],
        [3, 'ok'],
      ],
    )
    const exact = 'z'.repeat(10)
    const limit = await collect(`${exact}\r\n${exact}z`, { maxLineBytes: 10 })
    assert.deepEqual(
      limit.map((e) => 'error' in e && e.error),
      ["invalid JSON: unexpected token 'z'", 'line longer than 10 bytes'],
    )
  })

  it('reports invalid UTF-8', async () => {
    const entries = await collect([Buffer.from([0x7b, 0xff, 0x7d, 0x0a]), `${good}\n`])
    assert.deepEqual(entries[0], { line: 1, error: 'invalid UTF-8' })
    assert.ok('observation' in entries[1]!)
  })

  it('never throws on arbitrary text or bytes', async () => {
    const entryOk = (e: JsonLinesEntry) =>
      Number.isInteger(e.line) && e.line >= 1 && ('observation' in e || typeof e.error === 'string')
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 400 }), async (text) => {
        const entries = await collect(text, { maxLineBytes: 64 })
        assert.ok(entries.every(entryOk))
      }),
      { numRuns: 300 },
    )
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }),
        async (chunks) => {
          const entries = await collect(
            chunks.map((c) => Buffer.from(c)),
            { maxLineBytes: 48 },
          )
          assert.ok(entries.every(entryOk))
          const lines = entries.map((e) => e.line)
          assert.deepEqual(
            lines,
            [...lines].sort((a, b) => a - b),
          )
        },
      ),
      { numRuns: 300 },
    )
    // JSON-shaped noise reaches the schema checks rather than the JSON parser.
    await fc.assert(
      fc.asyncProperty(fc.array(fc.jsonValue(), { maxLength: 5 }), async (values) => {
        const text = values.map((v) => JSON.stringify(v)).join('\n')
        const entries = await collect(text)
        assert.ok(entries.every(entryOk))
      }),
      { numRuns: 300 },
    )
  })

  it('round-trips arbitrary valid observations', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(observationArbitrary, { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 1, max: 97 }),
        async (observations, chunkSize) => {
          const text = observations.map((o) => JSON.stringify(o)).join('\n') + '\n'
          const bytes = Buffer.from(text, 'utf8')
          const chunks: Buffer[] = []
          for (let i = 0; i < bytes.length; i += chunkSize)
            chunks.push(bytes.subarray(i, i + chunkSize))
          const entries = await collect(chunks)
          assert.deepEqual(
            entries,
            observations.map((o, i) => ({
              line: i + 1,
              observation: JSON.parse(JSON.stringify(o)),
            })),
          )
        },
      ),
      { numRuns: 200 },
    )
  })
})

describe('readJsonLinesFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-jsonl-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('streams a file and reports the bytes read', async () => {
    const file = join(dir, 'in.jsonl')
    writeFileSync(file, `${JSON.stringify(identity)}\n{bad\n`.repeat(5000))
    const seen: number[] = []
    const reader = readJsonLinesFile(file, { onBytes: (n) => seen.push(n) })
    let ok = 0
    let bad = 0
    for await (const entry of reader.entries) {
      if ('observation' in entry) ok++
      else bad++
    }
    assert.deepEqual([ok, bad], [5000, 5000])
    assert.equal(reader.bytesRead(), statSync(file).size)
    assert.ok(seen.length > 1, 'onBytes is called per chunk')
    assert.equal(seen.at(-1), statSync(file).size)
  })

  it('fails with TSR_IMPORT_FILE on an unreadable file', async () => {
    const reader = readJsonLinesFile(join(dir, 'missing.jsonl'))
    await assert.rejects(
      async () => {
        for await (const _ of reader.entries) void _
      },
      (err: unknown) => isTesseraError(err, 'TSR_IMPORT_FILE') && /ENOENT/.test(err.message),
    )
  })
})

// Arbitrary valid observations, built from the same enums the schema uses.
const text = (max: number) =>
  fc.string({ minLength: 1, maxLength: max, unit: 'grapheme' }).filter((s) => !s.includes('\u0000'))
const refArb = text(60)
const sourceArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,20}$/)
const dateArb = fc
  .date({
    min: new Date('1970-01-01T00:00:00Z'),
    max: new Date('9999-12-31T23:59:59Z'),
    noInvalidDate: true,
  })
  .map((d) => d.toISOString())
const hourArb = dateArb.map((iso) => `${iso.slice(0, 13)}:00:00.000Z`)
const attributesArb = fc.dictionary(
  text(12),
  fc.jsonValue({ maxDepth: 3 }).filter((v) => !JSON.stringify(v).includes('\\u0000')),
  { maxKeys: 6 },
)
const hexArb = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: min, maxLength: max })
const visible = fc.string({
  unit: fc.constantFrom(...'ABCDEFGHJKLMNPQRSTUVWXYZ0123456789_-'),
  maxLength: 4,
})
const base = {
  source: sourceArb,
  observedAt: dateArb,
  attributes: attributesArb,
}
const enumArb = <T extends string>(values: readonly T[]) => fc.constantFrom(...values)

const observationArbitrary: fc.Arbitrary<Observation> = fc.oneof(
  fc.record(
    {
      type: fc.constant('identity' as const),
      ref: refArb,
      kind: enumArb(identityKinds),
      name: text(40),
      owner: refArb,
      createdBy: refArb,
      state: enumArb(['active', 'disabled', 'deleted', 'quarantined'] as const),
      createdAt: dateArb,
      lastUsedAt: dateArb,
      ...base,
    },
    { requiredKeys: ['type', 'ref', 'kind', 'name', 'source'] },
  ),
  fc.record(
    {
      type: fc.constant('credential' as const),
      ref: refArb,
      identity: refArb,
      credentialType: enumArb(credentialTypes),
      fingerprint: hexArb(64, 64).map((h) => `hmac-sha256:${h}`),
      preview: fc.tuple(visible, visible).map(([a, b]) => `${a}…${b}`),
      issuer: refArb,
      createdAt: dateArb,
      expiresAt: dateArb,
      lastRotatedAt: dateArb,
      lastUsedAt: dateArb,
      state: enumArb(['active', 'inactive', 'revoked', 'expired'] as const),
      ...base,
    },
    { requiredKeys: ['type', 'ref', 'credentialType', 'source'] },
  ),
  fc.record(
    {
      type: fc.constant('location' as const),
      credential: refArb,
      locationType: enumArb(locationTypes),
      repository: refArb,
      file: refArb,
      line: fc.integer({ min: 1, max: 2_147_483_647 }),
      commit: hexArb(7, 64),
      host: text(40),
      path: refArb,
      ...base,
    },
    { requiredKeys: ['type', 'credential', 'locationType', 'source'] },
  ),
  fc.record(
    {
      type: fc.constant('owner' as const),
      ref: refArb,
      ownerType: enumArb(['person', 'team'] as const),
      name: text(40),
      email: fc.constantFrom('ana@acme.example', 'ops-team@example.com'),
      status: enumArb(ownerStatuses),
      team: refArb,
      ...base,
    },
    { requiredKeys: ['type', 'ref', 'ownerType', 'name', 'source'] },
  ),
  fc.record(
    {
      type: fc.constant('resource' as const),
      ref: refArb,
      resourceType: fc.stringMatching(/^[a-z0-9][a-z0-9._:-]{0,20}$/),
      name: text(40),
      environment: text(10),
      ...base,
    },
    { requiredKeys: ['type', 'ref', 'resourceType', 'name', 'source'] },
  ),
  fc.record(
    {
      type: fc.constant('grant' as const),
      identity: refArb,
      resource: refArb,
      actions: fc.array(text(30), { minLength: 1, maxLength: 5 }),
      via: refArb,
      ...base,
    },
    { requiredKeys: ['type', 'identity', 'resource', 'actions', 'source'] },
  ),
  fc.record(
    {
      type: fc.constant('usage' as const),
      identity: refArb,
      resource: refArb,
      action: text(30),
      hour: hourArb,
      count: fc.integer({ min: 0, max: 2_147_483_647 }),
      ...base,
    },
    { requiredKeys: ['type', 'identity', 'resource', 'action', 'hour', 'count', 'source'] },
  ),
  fc.record(
    {
      type: fc.constant('edge' as const),
      edgeType: enumArb(edgeTypes),
      from: fc.record({ type: enumArb(nodeTypes), ref: refArb }),
      to: fc.record({ type: enumArb(nodeTypes), ref: refArb }),
      ...base,
    },
    { requiredKeys: ['type', 'edgeType', 'from', 'to', 'source'] },
  ),
) as fc.Arbitrary<Observation>
