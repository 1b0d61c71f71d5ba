import type { Observation } from '../../inventory/observation.js'
import { createCollector, isoDate, latest, ownerKeys, type Collector } from '../collector.js'
import type { Connector, ConnectorFactory, DiscoverContext, FileReader } from '../connector.js'
import { withDocuments } from '../live/live-source.js'
import { fetchAwsIam, type AwsLiveConfig } from './aws-api.js'
import { OptionReader } from '../options.js'
import { parseCsv } from '../parse/csv.js'
import { inputError } from '../parse/input-error.js'
import { formatPath, parseJsonInput } from '../parse/json.js'
import { awsPrincipalRef, decodePolicyDocument, parseArn, type Statement } from './policy.js'

/**
 * AWS IAM from two exports: `aws iam get-account-authorization-details` (users, groups, roles and
 * managed policies with their versions) and the IAM credential report CSV
 * (`aws iam generate-credential-report` + `get-credential-report`, base64-decoded). Either file
 * alone works; together they describe the same users once.
 */
export const createAwsConnector: ConnectorFactory = (config) => {
  const o = new OptionReader(config)
  const authorizationDetails = o.path('authorizationDetails')
  const credentialReport = o.path('credentialReport')
  const live = o.boolean('live') ?? false
  const endpoint = o.string('endpoint')
  const region = o.string('region') ?? 'us-east-1'
  const reportTimeout = o.int('reportTimeoutSeconds', 1, 3600)
  const haveFiles = authorizationDetails !== undefined || credentialReport !== undefined
  if (haveFiles && live)
    o.problems.push('authorizationDetails/credentialReport or live: give one, not both')
  else if (!haveFiles && !live && o.problems.length === 0) {
    o.problems.push(
      'authorizationDetails or credentialReport (export files), or live: true (the IAM API)',
    )
  }
  if (!live && (endpoint !== undefined || reportTimeout !== undefined)) {
    o.problems.push('endpoint and reportTimeoutSeconds: only with live')
  }
  if (endpoint !== undefined && !/^https?:\/\//.test(endpoint))
    o.problems.push('endpoint: an http(s) URL')
  const problems = o.finish()
  if (problems.length > 0) return { ok: false, problems }
  const env = config.env
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          accessKeyId: env.AWS_ACCESS_KEY_ID,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
          ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
        }
      : undefined
  const liveConfig: AwsLiveConfig = {
    region,
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    reportTimeoutMs: (reportTimeout ?? 60) * 1000,
  }
  const connector: Connector = {
    kind: 'aws',
    name: config.name,
    scope: config.scope ?? 'full',
    discover: (ctx) =>
      live
        ? discoverAwsLive(ctx, config.name, liveConfig)
        : discoverAws(ctx, config.name, { authorizationDetails, credentialReport }),
  }
  return { ok: true, connector }
}

/** The IAM API, read into the two exports (credentials: the environment, else the SDK's chain). */
async function* discoverAwsLive(
  ctx: DiscoverContext,
  source: string,
  config: AwsLiveConfig,
): AsyncGenerator<Observation> {
  const fetched = await fetchAwsIam(ctx, config)
  const label = `aws-iam:${config.endpoint ?? config.region}`
  const files = new Map<string, unknown>([
    [`${label}/authorization-details`, fetched.authorizationDetails],
  ])
  const reportName = `${label}/credential-report.csv`
  const live: FileReader = {
    readFile: async (path) => {
      if (path === reportName && fetched.credentialReport) return fetched.credentialReport
      return ctx.files.readFile(path)
    },
    listFiles: (path) => ctx.files.listFiles(path),
  }
  yield* discoverAws(withDocuments({ ...ctx, files: live }, files), source, {
    authorizationDetails: `${label}/authorization-details`,
    credentialReport: fetched.credentialReport ? reportName : undefined,
  })
}

interface AwsFiles {
  authorizationDetails: string | undefined
  credentialReport: string | undefined
}

type Json = Record<string, unknown>

async function* discoverAws(
  ctx: DiscoverContext,
  source: string,
  files: AwsFiles,
): AsyncGenerator<Observation> {
  const c = createCollector(source)
  if (files.authorizationDetails) {
    const file = files.authorizationDetails
    ctx.progress?.(`reading ${file}`)
    const parsed = parseJsonInput(await ctx.files.readFile(file), file)
    if (parsed.error) ctx.report(parsed.error)
    if (parsed.value !== undefined) readAuthorizationDetails(ctx, c, file, parsed.value)
  }
  if (files.credentialReport) {
    const file = files.credentialReport
    ctx.progress?.(`reading ${file}`)
    readCredentialReport(ctx, c, file, await ctx.files.readFile(file))
  }
  yield* c.drain()
}

const objects = (v: unknown): Json[] =>
  Array.isArray(v)
    ? v.filter((x): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x))
    : []
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)

function tagOwner(c: Collector, tags: unknown): string | undefined {
  const byKey = new Map(objects(tags).map((t) => [String(t.Key), str(t.Value)]))
  for (const k of ownerKeys) {
    const v = byKey.get(k)
    if (v) return c.owner(v)
  }
  return undefined
}

function readAuthorizationDetails(
  ctx: DiscoverContext,
  c: Collector,
  file: string,
  doc: unknown,
): void {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    ctx.report(
      inputError(file, 'expected the get-account-authorization-details object', { path: '$' }),
    )
    return
  }
  const d = doc as Json
  const known = ['UserDetailList', 'GroupDetailList', 'RoleDetailList', 'Policies']
  if (!known.some((k) => k in d)) {
    ctx.report(
      inputError(file, `none of ${known.join(', ')} found: not an authorization details export`, {
        path: '$',
      }),
    )
    return
  }
  // Managed policy ARN → statements of its default version.
  const policies = new Map<string, Statement[]>()
  objects(d.Policies).forEach((p, i) => {
    const arn = str(p.Arn)
    if (!arn) return
    const versions = objects(p.PolicyVersionList)
    const vi = versions.findIndex((v) => v.IsDefaultVersion === true)
    if (vi === -1) return
    const decoded = decodePolicyDocument(versions[vi]!.Document)
    if (!decoded.ok) {
      ctx.report(
        inputError(file, decoded.reason, {
          path: formatPath(['Policies', i, 'PolicyVersionList', vi, 'Document']),
        }),
      )
      return
    }
    policies.set(arn, decoded.statements)
  })

  const grantFrom = (identity: string, statements: Statement[], via: string, through?: string) => {
    for (const s of statements) {
      if (s.effect !== 'Allow') continue
      const actions = s.notAction ? s.actions.map((a) => `!${a}`) : s.actions
      const resources = s.notResource ? s.resources.map((r) => `!${r}`) : s.resources
      for (const resource of resources) {
        if (!resource.startsWith('!')) addResource(c, resource)
        c.grant(identity, resource, actions, via, {
          ...(s.conditional ? { conditional: true } : {}),
          ...(through ? { through: [through] } : {}),
        })
      }
    }
  }
  const grantManaged = (identity: string, attached: unknown, through?: string) => {
    for (const p of objects(attached)) {
      const arn = str(p.PolicyArn)
      if (!arn) continue
      const statements = policies.get(arn)
      if (statements) grantFrom(identity, statements, arn, through)
      else {
        // The export left this policy out (e.g. --filter LocalManagedPolicy): record the attachment.
        c.grant(identity, arn, ['iam:AttachedPolicy'], arn, {
          unresolved: true,
          ...(through ? { through: [through] } : {}),
        })
      }
    }
  }
  const inline = (
    identity: string,
    list: unknown,
    owner: string,
    at: (string | number)[],
    through?: string,
  ) => {
    objects(list).forEach((p, i) => {
      const name = str(p.PolicyName) ?? `#${i}`
      const decoded = decodePolicyDocument(p.PolicyDocument)
      if (!decoded.ok) {
        ctx.report(
          inputError(file, decoded.reason, { path: formatPath([...at, i, 'PolicyDocument']) }),
        )
        return
      }
      grantFrom(identity, decoded.statements, `${owner}#inline:${name}`, through)
    })
  }

  const accounts = new Set(
    [...objects(d.UserDetailList), ...objects(d.RoleDetailList)]
      .map((x) => parseArn(str(x.Arn) ?? '')?.account)
      .filter((a): a is string => a !== undefined),
  )
  const groups = new Map<string, Json>()
  for (const g of objects(d.GroupDetailList)) {
    const name = str(g.GroupName)
    if (name) groups.set(name, g)
  }
  const groupIndex = new Map(objects(d.GroupDetailList).map((g, i) => [g, i]))

  objects(d.UserDetailList).forEach((u, i) => {
    const arn = str(u.Arn)
    const name = str(u.UserName)
    if (!arn || !name) {
      ctx.report(
        inputError(file, 'user without Arn or UserName', {
          path: formatPath(['UserDetailList', i]),
        }),
      )
      return
    }
    const groupNames = Array.isArray(u.GroupList)
      ? u.GroupList.filter((g): g is string => typeof g === 'string')
      : []
    const owner = tagOwner(c, u.Tags)
    c.identity({
      ref: arn,
      kind: 'iam_user',
      name,
      state: 'active',
      ...(owner ? { owner } : {}),
      ...(isoDate(u.CreateDate) ? { createdAt: isoDate(u.CreateDate)! } : {}),
      attributes: {
        userId: str(u.UserId) ?? null,
        path: str(u.Path) ?? '/',
        account: parseArn(arn)?.account ?? null,
        groups: groupNames,
        ...(u.PermissionsBoundary
          ? {
              permissionsBoundary:
                str((u.PermissionsBoundary as Json).PermissionsBoundaryArn) ?? null,
            }
          : {}),
      },
    })
    grantManaged(arn, u.AttachedManagedPolicies)
    inline(arn, u.UserPolicyList, arn, ['UserDetailList', i, 'UserPolicyList'])
    for (const gname of groupNames) {
      const g = groups.get(gname)
      if (!g) continue
      const garn = str(g.Arn) ?? gname
      grantManaged(arn, g.AttachedManagedPolicies, garn)
      inline(
        arn,
        g.GroupPolicyList,
        garn,
        ['GroupDetailList', groupIndex.get(g)!, 'GroupPolicyList'],
        garn,
      )
    }
  })

  objects(d.RoleDetailList).forEach((r, i) => {
    const arn = str(r.Arn)
    const name = str(r.RoleName)
    if (!arn || !name) {
      ctx.report(
        inputError(file, 'role without Arn or RoleName', {
          path: formatPath(['RoleDetailList', i]),
        }),
      )
      return
    }
    const owner = tagOwner(c, r.Tags)
    const lastUsed = (r.RoleLastUsed ?? {}) as Json
    const trust = decodePolicyDocument(r.AssumeRolePolicyDocument)
    let publicTrust = false
    if (!trust.ok) {
      ctx.report(
        inputError(file, trust.reason, {
          path: formatPath(['RoleDetailList', i, 'AssumeRolePolicyDocument']),
        }),
      )
    } else {
      for (const s of trust.statements) {
        if (s.effect !== 'Allow') continue
        const actions = s.actions.filter((a) => /^sts:(AssumeRole|\*)/.test(a) || a === '*')
        if (actions.length === 0) continue
        for (const p of s.principals) {
          if (p.type === 'Any') {
            publicTrust = true
            continue
          }
          if (p.type === 'CanonicalUser') continue
          const from = principalIdentity(c, p.type, p.value, accounts)
          c.edge(
            'can_assume',
            { type: 'identity', ref: from },
            { type: 'identity', ref: arn },
            {
              actions,
              ...(s.condition ? { conditions: [s.condition] } : {}),
            },
          )
        }
      }
    }
    c.identity({
      ref: arn,
      kind: 'iam_role',
      name,
      state: 'active',
      ...(owner ? { owner } : {}),
      ...(isoDate(r.CreateDate) ? { createdAt: isoDate(r.CreateDate)! } : {}),
      ...(isoDate(lastUsed.LastUsedDate) ? { lastUsedAt: isoDate(lastUsed.LastUsedDate)! } : {}),
      attributes: {
        roleId: str(r.RoleId) ?? null,
        path: str(r.Path) ?? '/',
        account: parseArn(arn)?.account ?? null,
        ...(str(lastUsed.Region) ? { lastUsedRegion: str(lastUsed.Region) } : {}),
        instanceProfiles: objects(r.InstanceProfileList)
          .map((p) => str(p.InstanceProfileName))
          .filter(Boolean),
        ...(publicTrust ? { publicTrust: true } : {}),
        ...(r.PermissionsBoundary
          ? {
              permissionsBoundary:
                str((r.PermissionsBoundary as Json).PermissionsBoundaryArn) ?? null,
            }
          : {}),
      },
    })
    grantManaged(arn, r.AttachedManagedPolicies)
    inline(arn, r.RolePolicyList, arn, ['RoleDetailList', i, 'RolePolicyList'])
  })
}

/**
 * A trust-policy principal as an identity ref. A user or role of an account in this export that the
 * export does not list is still this source's to describe (mentioned, kept only if nothing else
 * describes it); another account's principals, AWS services and identity providers are only the far
 * end of the `can_assume` edge.
 */
function principalIdentity(
  c: Collector,
  type: 'AWS' | 'Service' | 'Federated',
  value: string,
  accounts: ReadonlySet<string>,
): string {
  if (type === 'Service') return `aws-service:${value}`
  if (type === 'Federated') return value.startsWith('arn:') ? value : `aws-federated:${value}`
  const ref = awsPrincipalRef(value)
  const arn = parseArn(ref)
  if (arn && accounts.has(arn.account) && arn.resource !== 'root') {
    const kind = arn.resource.startsWith('role/') ? 'iam_role' : 'iam_user'
    c.mentionedIdentity({
      ref,
      kind,
      name: arn.resource.replace(/^.*\//, ''),
      attributes: { account: arn.account, notInExport: true },
    })
  }
  return ref
}

function addResource(c: Collector, resource: string): void {
  if (resource === '*') return
  const arn = parseArn(resource)
  if (!arn) return
  c.resource({
    ref: resource,
    resourceType: `aws_${arn.service.toLowerCase().replace(/[^a-z0-9._:-]/g, '_')}`,
    name: arn.resource,
  })
}

const reportColumns = ['user', 'arn', 'user_creation_time'] as const

function readCredentialReport(
  ctx: DiscoverContext,
  c: Collector,
  file: string,
  bytes: Buffer,
): void {
  const csv = parseCsv(bytes, file)
  for (const e of csv.errors) ctx.report(e)
  const missing = reportColumns.filter((k) => !csv.header.includes(k))
  if (missing.length > 0) {
    ctx.report(
      inputError(file, `not an IAM credential report: missing column ${missing.join(', ')}`, {
        line: 1,
      }),
    )
    return
  }
  const flag = (v: string | undefined) => v === 'true'
  for (const { line, record: r } of csv.rows) {
    const arn = r.arn!
    if (!parseArn(arn)) {
      ctx.report(inputError(file, 'arn column is not an ARN', { line }))
      continue
    }
    const root = r.user === '<root_account>'
    const used: (string | undefined)[] = [isoDate(r.password_last_used)]
    const creds: Parameters<Collector['credential']>[0][] = []
    if (flag(r.password_enabled)) {
      creds.push({
        ref: `aws-password:${arn}`,
        identity: arn,
        credentialType: 'password',
        state: 'active',
        ...opt('lastRotatedAt', isoDate(r.password_last_changed)),
        ...opt('lastUsedAt', isoDate(r.password_last_used)),
        ...opt('expiresAt', isoDate(r.password_next_rotation)),
        attributes: { console: true, mfa: flag(r.mfa_active) },
      })
    }
    for (const n of [1, 2]) {
      const active = r[`access_key_${n}_active`]
      const rotated = isoDate(r[`access_key_${n}_last_rotated`])
      // A slot that never held a key reads false / N/A.
      if (active === undefined || (active !== 'true' && rotated === undefined)) continue
      const lastUsed = isoDate(r[`access_key_${n}_last_used_date`])
      used.push(lastUsed)
      const region = r[`access_key_${n}_last_used_region`]
      const service = r[`access_key_${n}_last_used_service`]
      creds.push({
        // The report names keys by slot, not by id (ids are in `list-access-keys`).
        ref: `aws-key:${arn}#${n}`,
        identity: arn,
        credentialType: 'access_key',
        state: active === 'true' ? 'active' : 'inactive',
        ...opt('createdAt', rotated),
        ...opt('lastRotatedAt', rotated),
        ...opt('lastUsedAt', lastUsed),
        attributes: {
          slot: n,
          ...(region && region !== 'N/A' ? { lastUsedRegion: region } : {}),
          ...(service && service !== 'N/A' ? { lastUsedService: service } : {}),
        },
      })
    }
    for (const n of [1, 2]) {
      if (r[`cert_${n}_active`] !== 'true') continue
      creds.push({
        ref: `aws-signing-cert:${arn}#${n}`,
        identity: arn,
        credentialType: 'certificate',
        state: 'active',
        ...opt('lastRotatedAt', isoDate(r[`cert_${n}_last_rotated`])),
        attributes: { slot: n, signingCertificate: true },
      })
    }
    const lastUsedAt = latest(...used)
    c.identity({
      ref: arn,
      kind: 'iam_user',
      name: root ? `account ${parseArn(arn)!.account} (root)` : r.user!,
      state: 'active',
      ...opt('createdAt', isoDate(r.user_creation_time)),
      ...opt('lastUsedAt', lastUsedAt),
      attributes: {
        account: parseArn(arn)!.account,
        mfa: flag(r.mfa_active),
        ...(root ? { root: true } : {}),
      },
    })
    mergeReportIntoUser(c, arn, flag(r.mfa_active), lastUsedAt)
    for (const cred of creds) c.credential(cred)
  }
}

/** When the authorization details already described the user, add what only the report knows. */
function mergeReportIntoUser(
  c: Collector,
  arn: string,
  mfa: boolean,
  lastUsedAt: string | undefined,
): void {
  c.update(arn, (u) => {
    u.attributes = { ...u.attributes, mfa }
    const l = latest(u.lastUsedAt, lastUsedAt)
    if (l) u.lastUsedAt = l
  })
}

function opt<K extends string>(key: K, v: string | undefined): { [P in K]?: string } {
  return (v === undefined ? {} : { [key]: v }) as { [P in K]?: string }
}
