import type { Observation } from '../../src/inventory/index.js'

/**
 * A small identity graph with a known answer for every posture rule (see rules.test.ts). Built
 * through the inventory's observation ingestion, as discovery would.
 */
export const now = '2026-11-20T12:00:00.000Z'
const src = 'aws:prod'
const recent = '2026-11-19T10:00:00.000Z'
const created = '2026-01-01T00:00:00.000Z'

export const refs = {
  admin: 'arn:aws:iam::1:role/admin',
  reader: 'arn:aws:iam::1:user/reader',
  old: 'k8s:svc-old',
  never: 'k8s:svc-never',
  orphan: 'k8s:svc-orphan',
  bobs: 'k8s:svc-bob',
  bobsBacked: 'k8s:svc-bob-backed',
  web: 'spiffe://acme.example/web',
  ci: 'github:acme/app/.github/workflows/deploy.yml',
  deployer: 'arn:aws:iam::1:user/deployer',
  secretsReader: 'arn:aws:iam::1:role/secrets-reader',
  oauth: 'github-oauth:Iv1.abc',
  prodData: 'arn:aws:s3:::prod-data',
  stagingData: 'arn:aws:s3:::staging-data',
  jewel: 'arn:aws:secretsmanager:eu-west-1:1:secret:prod/db',
  repo: 'github.com/acme/app',
} as const

function identity(
  ref: string,
  kind: Extract<Observation, { type: 'identity' }>['kind'],
  owner: string | undefined,
  lastUsedAt: string | null = recent,
): Observation {
  return {
    type: 'identity',
    source: src,
    ref,
    kind,
    name: ref.split(/[/:]/).pop()!,
    ...(owner ? { owner } : {}),
    createdAt: created,
    ...(lastUsedAt ? { lastUsedAt } : {}),
  }
}

export function postureGraph(): Observation[] {
  const r = refs
  return [
    { type: 'owner', source: 'hr', ref: 'payments', ownerType: 'team', name: 'Payments' },
    {
      type: 'owner',
      source: 'hr',
      ref: 'ann@acme.example',
      ownerType: 'person',
      name: 'Ann',
      team: 'payments',
    },
    {
      type: 'owner',
      source: 'hr',
      ref: 'bob@acme.example',
      ownerType: 'person',
      name: 'Bob',
      status: 'departed',
      team: 'payments',
    },
    ...[
      [r.prodData, 's3_bucket', 'prod'],
      [r.stagingData, 's3_bucket', 'staging'],
      [r.jewel, 'secretsmanager_secret', 'prod'],
      [r.repo, 'repository', 'prod'],
    ].map(([ref, resourceType, environment]): Observation => ({
      type: 'resource',
      source: src,
      ref: ref!,
      resourceType: resourceType!,
      name: ref!,
      environment: environment!,
    })),
    identity(r.admin, 'iam_role', 'payments'),
    identity(r.reader, 'iam_user', 'ann@acme.example'),
    identity(r.old, 'service_account', 'ann@acme.example', '2026-05-01T00:00:00.000Z'),
    identity(r.never, 'service_account', 'ann@acme.example', null),
    identity(r.orphan, 'service_account', undefined),
    identity(r.bobs, 'service_account', 'bob@acme.example'),
    identity(r.bobsBacked, 'service_account', 'bob@acme.example'),
    {
      type: 'edge',
      source: 'hr',
      edgeType: 'owns',
      from: { type: 'owner', ref: 'ann@acme.example' },
      to: { type: 'identity', ref: r.bobsBacked },
    },
    identity(r.web, 'workload', 'payments'),
    identity(r.ci, 'ci_pipeline', 'payments'),
    identity(r.deployer, 'iam_user', 'ann@acme.example'),
    identity(r.secretsReader, 'iam_role', 'payments'),
    identity(r.oauth, 'oauth_app', 'payments'),
    // admin: AdministratorAccess wildcard on prod-data, used only for GetObject.
    {
      type: 'grant',
      source: src,
      identity: r.admin,
      resource: r.prodData,
      actions: ['*'],
      via: 'arn:aws:iam::aws:policy/AdministratorAccess',
    },
    usage(r.admin, r.prodData, 's3:GetObject', recent),
    // reader: three actions granted, two used in the window, PutObject only long ago.
    {
      type: 'grant',
      source: src,
      identity: r.reader,
      resource: r.prodData,
      actions: ['s3:GetObject', 's3:ListBucket', 's3:PutObject'],
      via: 'policy/reader',
    },
    usage(r.reader, r.prodData, 's3:GetObject', recent),
    usage(r.reader, r.prodData, 's3:ListBucket', '2026-11-01T08:00:00.000Z'),
    usage(r.reader, r.prodData, 's3:PutObject', '2026-06-01T08:00:00.000Z'),
    credential('k1', r.reader, 'access_key', { createdAt: created, fingerprint: 'fp-shared' }),
    credential('k-rotated', r.reader, 'access_key', {
      createdAt: '2025-01-01T00:00:00.000Z',
      lastRotatedAt: '2026-11-01T00:00:00.000Z',
    }),
    credential('k2', r.old, 'access_key', {
      createdAt: '2026-10-01T00:00:00.000Z',
      fingerprint: 'fp-shared',
    }),
    credential('k3', r.orphan, 'api_key', {
      createdAt: '2026-11-01T00:00:00.000Z',
      fingerprint: 'fp-two-places',
    }),
    {
      type: 'location',
      source: 'scanner',
      credential: 'k3',
      locationType: 'env_var',
      host: 'h1',
      path: 'API_KEY',
    },
    {
      type: 'location',
      source: 'k8s',
      credential: 'k3',
      locationType: 'k8s_secret',
      path: 'pay/app#api-key',
    },
    // web: certificates expired, expiring in 11 days, fine, and one with a 881-day lifetime.
    credential('cert-expired', r.web, 'certificate', {
      createdAt: created,
      expiresAt: '2026-11-01T00:00:00.000Z',
    }),
    credential('cert-soon', r.web, 'certificate', {
      createdAt: '2026-06-01T00:00:00.000Z',
      expiresAt: '2026-12-01T00:00:00.000Z',
    }),
    credential('cert-ok', r.web, 'certificate', {
      createdAt: '2026-06-01T00:00:00.000Z',
      expiresAt: '2027-06-01T00:00:00.000Z',
    }),
    credential('cert-long', r.web, 'certificate', {
      createdAt: '2025-01-01T00:00:00.000Z',
      expiresAt: '2027-06-01T00:00:00.000Z',
    }),
    // A secret the scanner found in the repository, introduced by carl's commit.
    {
      type: 'credential',
      source: 'scanner',
      ref: 'fp:hmac-aaa',
      credentialType: 'api_key',
      fingerprint: 'hmac-aaa',
      preview: 'sk_l…9f2a',
      attributes: { rule: 'stripe-secret-key' },
    },
    {
      type: 'location',
      source: 'scanner',
      credential: 'fp:hmac-aaa',
      locationType: 'git',
      repository: r.repo,
      file: 'config.yml',
      line: 3,
      commit: 'c1',
    },
    {
      type: 'owner',
      source: 'scanner',
      ref: 'carl@acme.example',
      ownerType: 'person',
      name: 'Carl',
    },
    {
      type: 'edge',
      source: 'scanner',
      edgeType: 'created',
      from: { type: 'owner', ref: 'carl@acme.example' },
      to: { type: 'credential', ref: 'fp:hmac-aaa' },
    },
    // The trust path: ci →grant→ repo →holds→ AKIALEAK →authenticates→ deployer
    //   →can_assume→ secrets-reader →grant→ the crown jewel.
    {
      type: 'grant',
      source: 'github',
      identity: r.ci,
      resource: r.repo,
      actions: ['contents:read'],
    },
    {
      type: 'grant',
      source: src,
      identity: r.ci,
      resource: r.prodData,
      actions: ['s3:PutObject'],
    },
    {
      type: 'grant',
      source: src,
      identity: r.ci,
      resource: r.stagingData,
      actions: ['s3:PutObject'],
    },
    credential('aws-key:AKIALEAK', r.deployer, 'access_key', {
      createdAt: '2026-11-10T00:00:00.000Z',
    }),
    {
      type: 'location',
      source: 'scanner',
      credential: 'aws-key:AKIALEAK',
      locationType: 'git',
      repository: r.repo,
      file: 'deploy.sh',
      line: 9,
      commit: 'c2',
    },
    {
      type: 'edge',
      source: 'scanner',
      edgeType: 'credential_found_in',
      from: { type: 'credential', ref: 'aws-key:AKIALEAK' },
      to: { type: 'resource', ref: r.repo },
    },
    {
      type: 'edge',
      source: src,
      edgeType: 'can_assume',
      from: { type: 'identity', ref: r.deployer },
      to: { type: 'identity', ref: r.secretsReader },
    },
    {
      type: 'grant',
      source: src,
      identity: r.secretsReader,
      resource: r.jewel,
      actions: ['secretsmanager:GetSecretValue'],
    },
    usage(r.secretsReader, r.jewel, 'secretsmanager:GetSecretValue', recent),
    // oauth app: one token that never expires, one that does.
    credential('tok-forever', r.oauth, 'oauth_token', { createdAt: '2026-10-01T00:00:00.000Z' }),
    credential('tok-exp', r.oauth, 'oauth_token', {
      createdAt: '2026-10-01T00:00:00.000Z',
      expiresAt: '2027-01-01T00:00:00.000Z',
    }),
  ]
}

function usage(identity: string, resource: string, action: string, hour: string): Observation {
  return { type: 'usage', source: src, identity, resource, action, hour, count: 5 }
}

function credential(
  ref: string,
  identity: string,
  credentialType: Extract<Observation, { type: 'credential' }>['credentialType'],
  extra: { createdAt?: string; expiresAt?: string; lastRotatedAt?: string; fingerprint?: string },
): Observation {
  return { type: 'credential', source: src, ref, identity, credentialType, ...extra }
}
