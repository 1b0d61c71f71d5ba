import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { judge, parseAuthzTestFile } from '../../src/policy/test-cases.js'

describe('authz test files', () => {
  it('parses YAML and JSON cases with their expectations', () => {
    const yaml = parseAuthzTestFile(`policies: [a.cedar]
cases:
  - name: one
    principal: spiffe://example.org/x
    action: read
    resource: r
    context: { intent: report }
    at: 2026-11-23T10:04:00Z
    expect: allow
    policies: [p@1]
  - { principal: { type: jwt_svid, token: a.b.c }, action: write, resource: r, expect: deny }
`)
    assert.deepEqual(yaml.policyFiles, ['a.cedar'])
    assert.equal(yaml.cases.length, 2)
    assert.equal(yaml.cases[0]!.at?.toISOString(), '2026-11-23T10:04:00.000Z')
    assert.deepEqual(yaml.cases[0]!.request.context, { intent: 'report' })
    assert.equal(yaml.cases[1]!.name, 'case 2')
    const json = parseAuthzTestFile(
      JSON.stringify({ cases: [{ principal: 'x', action: 'a', resource: 'r', expect: 'deny' }] }),
    )
    assert.equal(json.cases[0]!.expect, 'deny')
    const result = judge(yaml.cases[0]!, {
      decision: 'allow',
      determiningPolicies: ['p@1'],
      errors: [],
      decisionId: 'x',
    })
    assert.equal(result.passed, true)
    assert.equal(
      judge(yaml.cases[0]!, {
        decision: 'allow',
        determiningPolicies: ['q@1'],
        errors: [],
        decisionId: 'x',
      }).passed,
      false,
    )
  })

  it('names the case and field of every problem', () => {
    for (const [text, pattern] of [
      ['cases: []', /non-empty list/],
      [
        'cases: [{ principal: x, action: read, resource: r, expect: maybe }]',
        /cases\[0\] \(case 1\): expect/,
      ],
      [
        'cases: [{ principal: x, action: read, resource: r, expect: allow, colour: red }]',
        /unknown key "colour"/,
      ],
      ['oops: 1', /unknown top-level key/],
      [
        'cases: [{ principal: x, action: read, resource: r, expect: allow, at: someday }]',
        /at is not an instant/,
      ],
      ['a: &x [1]\nb: *x', /YAML|top-level/],
    ] as const) {
      assert.throws(() => parseAuthzTestFile(text), { code: 'TSR_VALIDATION', message: pattern })
    }
  })

  it('throws nothing but TesseraErrors on arbitrary input (fuzz)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json().map((j) => `cases: [${j}]`),
          fc.json(),
        ),
        (text) => {
          try {
            parseAuthzTestFile(text)
          } catch (err) {
            assert.equal((err as Error).name, 'TesseraError', String(err))
          }
        },
      ),
      { numRuns: 500 },
    )
  })
})
