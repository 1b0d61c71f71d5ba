import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { isTesseraError } from '../../src/errors.js'
import { codeownersFor, parseCodeowners } from '../../src/inventory/owners/codeowners.js'
import { toPostureConfig } from '../../src/policy/governance/governance.js'
import { parsePolicy } from '../../src/policy/governance/policy-parse.js'
import {
  checkRegistration,
  checkSpiffeIdTemplates,
  templateRegex,
} from '../../src/policy/governance/policy-rules.js'

function problems(text: string): Array<[number, number, string, string]> {
  try {
    parsePolicy(text, 'p.yaml')
  } catch (err) {
    assert.ok(isTesseraError(err, 'TSR_POLICY_INVALID'), String(err))
    const list = err.details!.errors as Array<{
      line: number
      column: number
      path: string
      reason: string
    }>
    return list.map((e) => [e.line, e.column, e.path, e.reason])
  }
  assert.fail('the policy was accepted')
}

describe('tessera.policy.yaml validation', () => {
  it('accepts the example and maps it onto PostureConfig', () => {
    const p = parsePolicy(readFileSync('examples/tessera.policy.yaml', 'utf8'))
    assert.deepEqual(toPostureConfig(p), {
      thresholds: {
        'certificate-expiring': { days: 30 },
        'unused-identity': { days: 90 },
        'unused-permission': { days: 90 },
      },
      maxTtlSeconds: { workload: 3600, ai_agent: 900, ci_pipeline: 600 },
      maxKeyAgeDays: { iam_user: 90, service_account: 90, api_client: 180 },
      crownJewels: ['arn:aws:s3:::prod-*', 'arn:aws:kms:*', 'k8s:prod-eu:secret/*'],
      forbiddenGrants: ['*:*', '*', 'AdministratorAccess', 'cluster-admin'],
    })
  })

  const cases: Array<[string, string, Array<[number, number, string, RegExp]>]> = [
    ['a YAML syntax error', 'version: 1\nnaming: [\n', [[3, 1, '(syntax)', /Flow sequence/]]],
    [
      'an alias to no anchor',
      'version: 1\nforbiddenGrants: *nothing\n',
      [[1, 1, '(syntax)', /alias/i]],
    ],
    ['a wrong version', 'version: 2\n', [[1, 10, 'version', /version must be 1/]]],
    [
      'an unknown section',
      'version: 1\nnamming: {}\n',
      [[2, 1, 'namming', /unknown section "namming"/]],
    ],
    [
      'a bad regex and a bad duration',
      'version: 1\nnaming:\n  workload:\n    pattern: "(a"\nmaxTtl:\n  workload: soon\n',
      [
        [4, 14, 'naming.workload.pattern', /invalid regular expression/],
        [6, 13, 'maxTtl.workload', /must be a duration/],
      ],
    ],
    [
      'an unknown kind',
      'version: 1\nmaxKeyAge:\n  robot: 90d\n',
      [[3, 3, 'maxKeyAge.robot', /unknown identity kind "robot"/]],
    ],
    [
      'a registration rule without who',
      'version: 1\nregistration:\n  rules:\n    - name: x\n      spiffeIdPrefixes: [spiffe://a/]\n',
      [[4, 7, 'registration.rules.0', /names who it allows/]],
    ],
    [
      'a template with an unknown placeholder and a prefix without spiffe://',
      "version: 1\nspiffeIds:\n  pay: ['/ns/{tem}/sa/{name}']\nregistration:\n  rules:\n    - name: y\n      teams: [pay]\n      spiffeIdPrefixes: ['http://x/']\n",
      [
        [3, 9, 'spiffeIds.pay.0', /unknown placeholder \{tem\}/],
        [8, 26, 'registration.rules.0.spiffeIdPrefixes.0', /starts with spiffe:\/\//],
      ],
    ],
    [
      'a duplicate key',
      'version: 1\nmaxTtl:\n  workload: 1h\n  workload: 2h\n',
      [[4, 3, '(syntax)', /unique/i]],
    ],
    ['an empty file', '', [[1, 1, '(root)', /empty/]]],
  ]
  for (const [what, text, expected] of cases) {
    it(`rejects ${what} with line, column and reason`, () => {
      const got = problems(text)
      assert.equal(got.length, expected.length, JSON.stringify(got))
      expected.forEach(([line, column, path, reason], i) => {
        assert.deepEqual(got[i]!.slice(0, 3), [line, column, path], JSON.stringify(got[i]))
        assert.match(got[i]![3], reason)
      })
    })
  }

  it('names the file, line and column in the message', () => {
    assert.throws(
      () => parsePolicy('version: 1\nmaxTtl:\n  workload: soon\n', 'mine.yaml'),
      /^TesseraError: mine\.yaml:3:13: maxTtl\.workload: must be a duration/,
    )
  })
})

describe('governance checks', () => {
  it('templates: placeholders match one segment, {team} only the owner team', () => {
    assert.ok(templateRegex('svc-{team}-{name}', ['payments-core']).test('svc-payments-core-sync'))
    assert.ok(!templateRegex('svc-{team}-{name}', ['sre']).test('svc-payments-core-sync'))
    assert.ok(!templateRegex('/ns/{ns}/sa/{name}').test('/ns/a/b/sa/c'))
  })

  it('SPIFFE ID templates per team, with * for the others', () => {
    const p = parsePolicy(
      "version: 1\nspiffeIds:\n  pay: ['/ns/payments/sa/{name}']\n  '*': ['/ns/{team}/sa/{name}']\n",
    )
    assert.equal(checkSpiffeIdTemplates(p, 'spiffe://td/ns/payments/sa/api', ['pay']), undefined)
    assert.equal(
      checkSpiffeIdTemplates(p, 'spiffe://td/ns/other/sa/api', ['pay'])?.rule,
      'policy.spiffe-id',
    )
    assert.equal(checkSpiffeIdTemplates(p, 'spiffe://td/ns/sre/sa/api', ['sre']), undefined)
    assert.match(
      checkSpiffeIdTemplates(p, 'spiffe://td/ns/x/sa/api', ['sre'])!.fix,
      /\/ns\/\{team\}\/sa\/\{name\}/,
    )
  })

  it('registration: the longest covering prefix decides; default deny refuses the uncovered', () => {
    const p = parsePolicy(
      "version: 1\nregistration:\n  default: deny\n  rules:\n    - name: pay\n      spiffeIdPrefixes: ['spiffe://td/ns/payments/']\n      teams: [pay]\n    - name: ops\n      spiffeIdPrefixes: ['spiffe://td/']\n      actors: ['cli:root']\n",
    )
    assert.equal(
      checkRegistration(p, 'spiffe://td/ns/payments/sa/a', { owner: 'x', ownerTeams: ['pay'] }),
      undefined,
    )
    assert.equal(
      checkRegistration(p, 'spiffe://td/ns/payments/sa/a', {
        owner: 'x',
        ownerTeams: [],
        actor: 'cli:root',
      }),
      undefined,
    )
    assert.equal(
      checkRegistration(p, 'spiffe://td/other', { owner: 'x', ownerTeams: [], actor: 'cli:bob' })
        ?.rule,
      'policy.registration',
    )
    assert.equal(
      checkRegistration(p, 'spiffe://elsewhere/a', { owner: 'x', ownerTeams: ['pay'] })?.rule,
      'policy.registration',
    )
  })

  it('CODEOWNERS: the last matching rule wins, gitignore-style anchoring', () => {
    const rules = parseCodeowners(
      '* @org/all\n/deploy/ @ops # comment\n*.env @sec\ndocs/** @docs\n',
    )
    assert.deepEqual(codeownersFor(rules, 'src/a.ts')?.owners, ['@org/all'])
    assert.deepEqual(codeownersFor(rules, 'deploy/x.yaml')?.owners, ['@ops'])
    assert.deepEqual(codeownersFor(rules, 'deploy/prod.env')?.owners, ['@sec'])
    assert.deepEqual(codeownersFor(rules, 'sub/deploy/x')?.owners, ['@org/all'])
    assert.deepEqual(codeownersFor(rules, 'docs/a/b.md')?.owners, ['@docs'])
  })
})
