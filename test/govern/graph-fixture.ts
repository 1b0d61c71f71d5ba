import type { Observation } from '../../src/inventory/index.js'

/** A small graph whose owners are known: each identity exercises one ownership step. */
export const ownersCsv = `type,ref,name,email,status,team,github,cost_center
team,payments-core,Payments Core,payments-core@acme.example,active,,acme/payments-core,CC-410
team,sre,SRE,sre@acme.example,active,,acme/sre,CC-100
person,,Ana Costa,ana@acme.example,active,payments-core;sre,anacosta,
person,,Amir Haddad,amir@acme.example,departed,payments-core,amirh,
person,,Wei Santos,wei@acme.example,active,sre,wei-s,
`

export const ids = {
  explicit: 'arn:aws:iam::1:user/explicit',
  source: 'arn:aws:iam::1:role/source',
  tagTeam: 'arn:aws:iam::1:role/tag-team',
  costCenter: 'k8s:prod:cost-center',
  codeowners: 'app:codeowners',
  commit: 'app:commit',
  createdBy: 'arn:aws:iam::1:role/created-by',
  parent: 'spiffe://acme.example/ns/pay/sa/parent',
  departed: 'arn:aws:iam::1:user/departed',
  none: 'arn:aws:iam::1:user/none',
  agent: 'spiffe://acme.example/agent/helper',
  subAgent: 'spiffe://acme.example/agent/helper/sub',
  unknown: 'arn:aws:iam::1:user/unknown',
} as const

export const codeowners = `# acme/api
*            @acme/payments-core
/deploy/     @wei-s
docs/**      ana@acme.example
`

export const graph: Observation[] = [
  {
    type: 'identity',
    source: 'aws',
    ref: ids.explicit,
    kind: 'iam_user',
    name: 'explicit',
    owner: 'amir@acme.example',
  },
  {
    type: 'identity',
    source: 'aws',
    ref: ids.source,
    kind: 'iam_role',
    name: 'source',
    owner: 'sre',
  },
  {
    type: 'identity',
    source: 'aws',
    ref: ids.tagTeam,
    kind: 'iam_role',
    name: 'tag-team',
    attributes: { tags: [{ Key: 'team', Value: 'payments-core' }] },
  },
  {
    type: 'identity',
    source: 'k8s',
    ref: ids.costCenter,
    kind: 'service_account',
    name: 'cost-center',
    attributes: { labels: { 'cost-center': 'CC-410' } },
  },
  {
    type: 'identity',
    source: 'scanner',
    ref: ids.codeowners,
    kind: 'api_client',
    name: 'codeowners',
  },
  {
    type: 'credential',
    source: 'scanner',
    ref: 'fp:co',
    identity: ids.codeowners,
    credentialType: 'api_key',
    fingerprint: 'hmac-sha256:' + 'c0'.repeat(32),
  },
  {
    type: 'location',
    source: 'scanner',
    credential: 'fp:co',
    locationType: 'git',
    repository: 'github.com/acme/api',
    file: 'deploy/prod.env',
    line: 3,
  },
  { type: 'identity', source: 'scanner', ref: ids.commit, kind: 'api_client', name: 'commit' },
  {
    type: 'credential',
    source: 'scanner',
    ref: 'fp:cm',
    identity: ids.commit,
    credentialType: 'api_key',
    fingerprint: 'hmac-sha256:' + 'c1'.repeat(32),
  },
  {
    type: 'location',
    source: 'scanner',
    credential: 'fp:cm',
    locationType: 'git',
    repository: 'github.com/acme/unowned',
    file: 'config/.env',
    line: 1,
  },
  {
    type: 'edge',
    source: 'scanner',
    edgeType: 'created',
    from: { type: 'owner', ref: 'ana@acme.example' },
    to: { type: 'credential', ref: 'fp:cm' },
  },
  {
    type: 'identity',
    source: 'aws',
    ref: ids.createdBy,
    kind: 'iam_role',
    name: 'created-by',
    createdBy: 'wei@acme.example',
  },
  { type: 'identity', source: 'spire', ref: ids.parent, kind: 'workload', name: 'parent' },
  {
    type: 'edge',
    source: 'k8s',
    edgeType: 'runs_as',
    from: { type: 'identity', ref: ids.parent },
    to: { type: 'identity', ref: ids.source },
  },
  {
    type: 'identity',
    source: 'aws',
    ref: ids.departed,
    kind: 'iam_user',
    name: 'departed',
    owner: 'amir@acme.example',
    createdBy: 'wei@acme.example',
  },
  { type: 'identity', source: 'aws', ref: ids.none, kind: 'iam_user', name: 'none' },
  { type: 'identity', source: 'spire', ref: ids.agent, kind: 'ai_agent', name: 'helper' },
  { type: 'identity', source: 'spire', ref: ids.subAgent, kind: 'ai_agent', name: 'helper-sub' },
  {
    type: 'edge',
    source: 'spire',
    edgeType: 'delegated_to',
    from: { type: 'owner', ref: 'ana@acme.example' },
    to: { type: 'identity', ref: ids.agent },
  },
  {
    type: 'edge',
    source: 'spire',
    edgeType: 'delegated_to',
    from: { type: 'identity', ref: ids.agent },
    to: { type: 'identity', ref: ids.subAgent },
  },
  {
    type: 'identity',
    source: 'aws',
    ref: ids.unknown,
    kind: 'iam_user',
    name: 'unknown',
    owner: 'ghost-team',
  },
]
