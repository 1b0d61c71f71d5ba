export const gatePolicy = `version: 1
naming:
  workload:
    pattern: '^spiffe://example\\.org/ns/[a-z0-9-]+/sa/[a-z0-9-]+$'
    example: spiffe://example.org/ns/payments/sa/api
spiffeIds:
  payments-core: ['/ns/payments/sa/{name}']
maxTtl:
  workload: 1h
  ci_pipeline: 10m
required:
  owner: true
registration:
  rules:
    - name: payments
      spiffeIdPrefixes: ['spiffe://example.org/ns/payments/']
      teams: [payments-core]
      pipelines: ['spiffe://example.org/ci/acme/payments-*']
`

export const gateOwnersCsv = `type,ref,name,email,status,team
team,payments-core,Payments Core,,active,
team,sre,SRE,,active,
person,,Ana Costa,ana@acme.example,active,payments-core
person,,Amir Haddad,amir@acme.example,departed,payments-core
`

/** Entries that break the gate policy, each with the rule that refuses it. */
export const badEntries: Array<{ rule: string; entry: Record<string, unknown> }> = [
  {
    rule: 'policy.naming',
    entry: { spiffeId: 'spiffe://example.org/api', owner: 'payments-core' },
  },
  {
    rule: 'policy.max-ttl',
    entry: {
      spiffeId: 'spiffe://example.org/ns/payments/sa/api',
      owner: 'payments-core',
      x509SvidTtl: 86400,
    },
  },
  {
    rule: 'policy.required-owner',
    entry: { spiffeId: 'spiffe://example.org/ns/payments/sa/api', owner: 'amir@acme.example' },
  },
  {
    rule: 'policy.registration',
    entry: { spiffeId: 'spiffe://example.org/ns/payments/sa/api', owner: 'sre' },
  },
  {
    rule: 'policy.spiffe-id',
    entry: { spiffeId: 'spiffe://example.org/ns/other/sa/api', owner: 'payments-core' },
  },
  {
    rule: 'policy.required-owner',
    entry: { spiffeId: 'spiffe://example.org/ns/x/sa/api', owner: 'nobody' },
  },
]
