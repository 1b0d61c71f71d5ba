import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { byType, collect, make, memoryFiles } from '../testing/collect.js'
import { createAwsConnector } from './aws-connector.js'

const dir = new URL('../../../examples/aws/', import.meta.url).pathname
const details = dir + 'authorization-details.json'
const report = dir + 'credential-report.csv'
const A = '210987654321'

describe('aws connector on the sample exports', () => {
  it('maps users, roles, keys, grants and trust edges', async () => {
    const r = await collect(
      make(
        createAwsConnector,
        { authorizationDetails: details, credentialReport: report },
        { name: 'aws:prod' },
      ),
    )
    assert.deepEqual(r.errors, [])
    assert.deepEqual(r.invalid, [])
    const ids = new Map(byType(r.observations, 'identity').map((i) => [i.ref, i]))
    const billing = ids.get(`arn:aws:iam::${A}:user/service/svc-billing-sync`)!
    assert.equal(billing.kind, 'iam_user')
    assert.equal(billing.owner, 'billing-core')
    assert.equal(billing.createdAt, '2021-03-14T09:26:53.000Z')
    assert.equal(billing.lastUsedAt, '2026-11-20T06:15:00.000Z')
    assert.deepEqual(billing.attributes?.groups, ['ci-deployers'])
    assert.equal(billing.attributes?.mfa, false)
    assert.equal(ids.get(`arn:aws:iam::${A}:user/deploy-bot`)!.owner, 'ana.costa@acme.example')
    // The root account appears only in the report.
    assert.equal(ids.get(`arn:aws:iam::${A}:root`)!.attributes?.root, true)
    const role = ids.get(`arn:aws:iam::${A}:role/service-role/payments-api`)!
    assert.equal(role.kind, 'iam_role')
    assert.equal(role.lastUsedAt, '2026-11-19T22:41:15.000Z')
    // Principals outside the export are only the far end of their edge, never facts of this source.
    assert.equal(ids.get('aws-service:ec2.amazonaws.com'), undefined)
    assert.equal(ids.get('arn:aws:iam::100000000001:root'), undefined)
    assert.deepEqual(byType(r.observations, 'owner'), [])

    const creds = new Map(byType(r.observations, 'credential').map((c) => [c.ref, c]))
    const key1 = creds.get(`aws-key:arn:aws:iam::${A}:user/service/svc-billing-sync#1`)!
    assert.equal(key1.credentialType, 'access_key')
    assert.equal(key1.state, 'active')
    assert.equal(key1.createdAt, '2021-03-14T09:31:02.000Z')
    assert.equal(key1.lastUsedAt, '2026-11-20T06:15:00.000Z')
    assert.equal(key1.attributes?.lastUsedService, 's3')
    assert.equal(
      creds.get(`aws-key:arn:aws:iam::${A}:user/service/svc-billing-sync#2`)!.state,
      'inactive',
    )
    assert.equal(
      creds.get(`aws-password:arn:aws:iam::${A}:user/legacy-reporting`)!.credentialType,
      'password',
    )
    assert.ok(creds.has(`aws-signing-cert:arn:aws:iam::${A}:user/legacy-reporting#1`))
    assert.ok(
      !creds.has(`aws-key:arn:aws:iam::${A}:user/deploy-bot#2`),
      'an empty key slot is no key',
    )

    const grants = byType(r.observations, 'grant')
    const g = (identity: string, resource: string) =>
      grants.filter((x) => x.identity === identity && x.resource === resource)
    // Inline, URL-encoded role policy.
    assert.deepEqual(
      g(role.ref, `arn:aws:dynamodb:eu-west-1:${A}:table/payments-ledger`)[0]?.actions,
      ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'],
    )
    // Deny statements grant nothing.
    assert.equal(g(role.ref, '*').length, 0)
    // A group's managed policy (default version v2 only) reaches its members, through the group.
    const viaGroup = g(billing.ref, `arn:aws:ecs:eu-west-1:${A}:service/prod/payments-api`)[0]!
    assert.equal(viaGroup.via, `arn:aws:iam::${A}:policy/ci-deploy`)
    assert.deepEqual(viaGroup.attributes?.through, [`arn:aws:iam::${A}:group/ci-deployers`])
    assert.equal(g(billing.ref, '*').length, 0, 'v1 (ecs:* on *) is not the default version')
    const admin = g(`arn:aws:iam::${A}:role/OrganizationAccountAccessRole`, '*')[0]!
    assert.deepEqual(admin.actions, ['*'])
    assert.equal(admin.via, 'arn:aws:iam::aws:policy/AdministratorAccess')
    assert.equal(
      g(`arn:aws:iam::${A}:role/data-pipeline`, 'arn:aws:s3:::acme-data-lake')[0]?.attributes
        ?.conditional,
      true,
    )
    const resources = new Map(byType(r.observations, 'resource').map((x) => [x.ref, x]))
    assert.equal(
      resources.get(`arn:aws:dynamodb:eu-west-1:${A}:table/payments-ledger`)?.resourceType,
      'aws_dynamodb',
    )

    const assume = byType(r.observations, 'edge').filter((e) => e.edgeType === 'can_assume')
    const pairs = assume.map((e) => `${e.from.ref} -> ${e.to.ref}`).sort()
    assert.deepEqual(pairs, [
      `arn:aws:iam::100000000001:root -> arn:aws:iam::${A}:role/OrganizationAccountAccessRole`,
      `arn:aws:iam::${A}:oidc-provider/token.actions.githubusercontent.com -> arn:aws:iam::${A}:role/github-actions-deploy`,
      `arn:aws:iam::${A}:role/service-role/payments-api -> arn:aws:iam::${A}:role/data-pipeline`,
      `arn:aws:iam::${A}:user/service/svc-billing-sync -> arn:aws:iam::${A}:role/data-pipeline`,
      `aws-service:ec2.amazonaws.com -> arn:aws:iam::${A}:role/service-role/payments-api`,
      `aws-service:lambda.amazonaws.com -> arn:aws:iam::${A}:role/data-pipeline`,
    ])
    const oidc = assume.find((e) => e.to.ref.endsWith('github-actions-deploy'))!
    assert.deepEqual(oidc.attributes?.actions, ['sts:AssumeRoleWithWebIdentity'])
    assert.ok(JSON.stringify(oidc.attributes?.conditions).includes('repo:acme/payments'))
    // The same ARN described by the export and named in a trust policy is described once, fully.
    assert.equal(
      ids.get(`arn:aws:iam::${A}:role/service-role/payments-api`)!.attributes?.notInExport,
      undefined,
    )
  })

  it('is deterministic: two reads give the same observations', async () => {
    const c = make(createAwsConnector, { authorizationDetails: details, credentialReport: report })
    assert.deepEqual((await collect(c)).observations, (await collect(c)).observations)
  })

  it('keeps the valid users of a truncated export and names the JSON path and byte offset', async () => {
    const full = readFileSync(details, 'utf8')
    const cut = full.indexOf('"UserName": "legacy-reporting"')
    const files = memoryFiles({ '/x/auth.json': full.slice(0, cut) })
    const r = await collect(make(createAwsConnector, { authorizationDetails: '/x/auth.json' }), {
      files,
    })
    assert.equal(r.errors.length, 1)
    const e = r.errors[0]!
    assert.equal(e.code, 'TSR_DISCOVERY_INPUT')
    assert.match(
      e.message,
      /^\/x\/auth\.json at \$\.UserDetailList\[2\] \(line \d+, column \d+, byte \d+\): invalid JSON: unexpected end of input/,
    )
    assert.equal(e.details?.offset, Buffer.byteLength(full.slice(0, cut)))
    const users = byType(r.observations, 'identity').map((i) => i.name)
    assert.deepEqual(users.sort(), ['deploy-bot', 'svc-billing-sync'])
    assert.ok(byType(r.observations, 'grant').length > 0, 'grants of the kept users are kept')
  })

  it('reports a malformed document by JSON path and goes on', async () => {
    const doc = JSON.parse(readFileSync(details, 'utf8')) as {
      RoleDetailList: { AssumeRolePolicyDocument: unknown }[]
    }
    doc.RoleDetailList[1]!.AssumeRolePolicyDocument = '%7B%22Statement'
    const files = memoryFiles({ '/x/auth.json': JSON.stringify(doc) })
    const r = await collect(make(createAwsConnector, { authorizationDetails: '/x/auth.json' }), {
      files,
    })
    assert.equal(r.errors.length, 1)
    assert.match(
      r.errors[0]!.message,
      /\$\.RoleDetailList\[1\]\.AssumeRolePolicyDocument: policy document/,
    )
    assert.equal(byType(r.observations, 'identity').filter((i) => i.kind === 'iam_role').length, 4)
  })

  it('reports a truncated credential report row by line and keeps the others', async () => {
    const text = readFileSync(report, 'utf8').trimEnd()
    const files = memoryFiles({
      '/x/report.csv': text.slice(0, text.lastIndexOf(',2019-06-20T11:50')),
    })
    const r = await collect(make(createAwsConnector, { credentialReport: '/x/report.csv' }), {
      files,
    })
    assert.equal(r.errors.length, 1)
    assert.match(r.errors[0]!.message, /^\/x\/report\.csv at \(line 5\): expected 22 fields, got 9/)
    assert.deepEqual(
      byType(r.observations, 'identity')
        .map((i) => i.name)
        .sort(),
      ['account 210987654321 (root)', 'deploy-bot', 'svc-billing-sync'],
    )
  })

  it('refuses a CSV that is not a credential report, and bad options, with every problem', async () => {
    const files = memoryFiles({ '/x/other.csv': 'name,email\nx,y\n' })
    const r = await collect(make(createAwsConnector, { credentialReport: '/x/other.csv' }), {
      files,
    })
    assert.match(r.errors[0]!.message, /missing column user, arn, user_creation_time/)
    const bad = createAwsConnector({
      name: 'a',
      options: { credentialReprot: 'x', authorizationDetails: 3 },
      baseDir: '/',
      env: {},
    })
    assert.equal(bad.ok, false)
    assert.deepEqual(!bad.ok && bad.problems, [
      'authorizationDetails: must be a non-empty string',
      'credentialReprot: unknown option',
    ])
  })
})
