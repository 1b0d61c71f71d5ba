import {
  connectorFactories,
  type Connector,
  type ConnectorKind,
} from '../../src/discovery/index.js'

export const examplesDir = new URL('../../examples/', import.meta.url).pathname

/** Every connector over its sample export, as a sources file would configure it. */
export const sampleSources: {
  name: string
  type: ConnectorKind
  options: Record<string, unknown>
}[] = [
  {
    name: 'aws:prod',
    type: 'aws',
    options: {
      authorizationDetails: 'aws/authorization-details.json',
      credentialReport: 'aws/credential-report.csv',
    },
  },
  { name: 'k8s:prod-eu', type: 'kubernetes', options: { file: 'kubernetes/cluster-dump.json' } },
  {
    name: 'certs:edge',
    type: 'certificates',
    options: { paths: 'certificates', passwordEnv: 'SAMPLE_P12_PASSWORD' },
  },
  {
    name: 'ssh:bastion-1.prod.acme.example',
    type: 'ssh',
    options: { paths: ['ssh/bastion', 'ssh/keys'] },
  },
  {
    name: 'gcp:data',
    type: 'gcp',
    options: {
      serviceAccounts: 'gcp/service-accounts.json',
      keys: ['gcp/keys-payments-etl.json', 'gcp/keys-legacy-airflow.json'],
      iamPolicy: 'gcp/iam-policy.json',
      project: 'acme-data',
    },
  },
  {
    name: 'azure:corp',
    type: 'azure',
    options: { apps: 'azure/apps.json', servicePrincipals: 'azure/service-principals.json' },
  },
  { name: 'github:acme', type: 'github', options: { file: 'github/acme-org.json' } },
  { name: 'vault:main', type: 'vault', options: { file: 'vault/acme-vault.json' } },
]

/** The sample PKCS#12 password (documented in examples/README.md). */
export const sampleEnv = { SAMPLE_P12_PASSWORD: 'changeit-sample' }

export function sampleConnectors(): Connector[] {
  return sampleSources.map((s) => {
    const made = connectorFactories[s.type]({
      name: s.name,
      options: s.options,
      baseDir: examplesDir,
      env: sampleEnv,
    })
    if (!made.ok) throw new Error(`${s.name}: ${made.problems.join('; ')}`)
    return made.connector
  })
}
