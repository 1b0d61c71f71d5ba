import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { collect, make } from '../testing/collect.js'
import { startFakeIam } from '../testing/fake-iam.js'
import { createAwsConnector } from './aws-connector.js'

const example = (p: string) => new URL(`../../../examples/aws/${p}`, import.meta.url).pathname
const authorizationDetails = JSON.parse(readFileSync(example('authorization-details.json'), 'utf8'))
const credentialReportCsv = readFileSync(example('credential-report.csv'), 'utf8')
const env = {
  AWS_ACCESS_KEY_ID: 'AKIAFAKEDISCOVERY01',
  AWS_SECRET_ACCESS_KEY: 'fake/secret/for/the/test/only/0000000000',
}
const canonical = (list: readonly unknown[]) => list.map((o) => JSON.stringify(o)).sort()

describe('aws connector, live IAM API through the AWS SDK', () => {
  it('pages authorization details, waits for the credential report, and yields the same facts as the exports', async () => {
    const iam = await startFakeIam({
      authorizationDetails,
      credentialReportCsv,
      pageSize: 3,
      reportDelayPolls: 1,
    })
    try {
      const fromFile = await collect(
        make(
          createAwsConnector,
          {
            authorizationDetails: example('authorization-details.json'),
            credentialReport: example('credential-report.csv'),
          },
          { name: 'aws:prod' },
        ),
      )
      const connector = make(
        createAwsConnector,
        { live: true, endpoint: iam.url },
        { name: 'aws:prod', env },
      )
      const live = await collect(connector)
      assert.deepEqual(live.errors, [])
      assert.deepEqual(live.invalid, [])
      assert.ok(live.observations.length > 20)
      assert.deepEqual(canonical(live.observations), canonical(fromFile.observations))
      const actions = iam.requests.map((r) => r.action)
      assert.ok(actions.filter((a) => a === 'GetAccountAuthorizationDetails').length > 2)
      assert.equal(actions.filter((a) => a === 'GenerateCredentialReport').length, 2)
      // Signed with SigV4 for the credentials from the source's environment.
      assert.match(
        String(iam.requests[0]!.headers.authorization),
        /^AWS4-HMAC-SHA256 Credential=AKIAFAKEDISCOVERY01\//,
      )
    } finally {
      await iam.close()
    }
  })

  it("reports AWS's error code and message, never the secret key", async () => {
    const iam = await startFakeIam({
      authorizationDetails,
      credentialReportCsv,
      error: {
        status: 403,
        code: 'AccessDenied',
        message: 'User is not authorized to perform: iam:GetAccountAuthorizationDetails',
      },
    })
    try {
      const r = await collect(make(createAwsConnector, { live: true, endpoint: iam.url }, { env }))
      assert.equal(r.errors.length, 1)
      assert.equal(r.errors[0]!.code, 'TSR_DISCOVERY_SOURCE')
      assert.match(r.errors[0]!.message, /AccessDenied \(HTTP 403\): User is not authorized/)
      assert.ok(!r.errors[0]!.message.includes(env.AWS_SECRET_ACCESS_KEY))
    } finally {
      await iam.close()
    }
  })

  it('refuses files and live together, and live options without live', () => {
    const problems = (options: Record<string, unknown>) => {
      const made = createAwsConnector({ name: 'aws:x', options, baseDir: '/', env: {} })
      return made.ok ? '' : made.problems.join()
    }
    assert.match(problems({ live: true, credentialReport: 'x.csv' }), /give one, not both/)
    assert.match(problems({ credentialReport: 'x.csv', endpoint: 'http://x' }), /only with live/)
    assert.match(problems({}), /live: true/)
  })
})
