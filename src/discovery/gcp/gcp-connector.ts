import type { Observation } from '../../inventory/observation.js'
import { createCollector, isoDate } from '../collector.js'
import type { Connector, ConnectorFactory, DiscoverContext } from '../connector.js'
import { isObj, readJsonArray, str } from '../json-export.js'
import { OptionReader } from '../options.js'
import {
  openLiveClient,
  readLiveApi,
  requireOneInput,
  withDocuments,
  type LiveApiConfig,
} from '../live/live-source.js'
import { fetchGcpProject } from './gcp-api.js'
import { inputError } from '../parse/input-error.js'
import { parseJsonInput, formatPath } from '../parse/json.js'

/**
 * GCP service accounts from `gcloud iam service-accounts list --format=json`, their keys from
 * `gcloud iam service-accounts keys list --iam-account=… --format=json` (one file per account, or
 * several arrays), and optionally the project's `gcloud projects get-iam-policy --format=json`
 * (role bindings of service accounts become grants on the project).
 */
export const createGcpConnector: ConnectorFactory = (config) => {
  const o = new OptionReader(config)
  const serviceAccounts = o.path('serviceAccounts')
  const keys = o.paths('keys')
  const iamPolicy = o.path('iamPolicy')
  const project = o.string('project')
  const live = readLiveApi(o, { tokenEnv: 'GOOGLE_OAUTH_ACCESS_TOKEN', env: config.env })
  const resourceManagerApi = o.string('resourceManagerApi')
  const readIamPolicy = o.boolean('readIamPolicy') ?? true
  requireOneInput(o, serviceAccounts !== undefined, live, 'serviceAccounts')
  if (live && (keys.length > 0 || iamPolicy))
    o.problems.push('keys and iamPolicy: files, not with api')
  if (!live && keys.length > 0 && !serviceAccounts) o.problems.push('keys: needs serviceAccounts')
  if ((iamPolicy || live) && !project)
    o.problems.push(`project: required with ${live ? 'api' : 'iamPolicy'}`)
  if (!live && resourceManagerApi) o.problems.push('resourceManagerApi: only with api')
  const problems = o.finish()
  if (problems.length > 0) return { ok: false, problems }
  const connector: Connector = {
    kind: 'gcp',
    name: config.name,
    scope: config.scope ?? 'full',
    discover: (ctx) =>
      live
        ? discoverGcpLive(
            ctx,
            config.name,
            live,
            project!,
            readIamPolicy
              ? (resourceManagerApi ?? 'https://cloudresourcemanager.googleapis.com')
              : undefined,
          )
        : discoverGcp(ctx, config.name, {
            serviceAccounts: serviceAccounts!,
            keys,
            iamPolicy,
            project,
          }),
  }
  return { ok: true, connector }
}

/** The IAM and Resource Manager APIs, read into the three documents gcloud would print. */
async function* discoverGcpLive(
  ctx: DiscoverContext,
  source: string,
  live: LiveApiConfig,
  project: string,
  resourceManagerApi: string | undefined,
): AsyncGenerator<Observation> {
  const iam = await openLiveClient(ctx, live)
  const resourceManager = resourceManagerApi
    ? await openLiveClient(ctx, { ...live, url: resourceManagerApi })
    : undefined
  const docs = await fetchGcpProject(ctx, iam, resourceManager, project)
  const base = `${iam.baseUrl}v1/projects/${project}`
  const files = new Map<string, unknown>([
    [`${base}/serviceAccounts`, docs.serviceAccounts],
    [`${base}/serviceAccounts/-/keys`, docs.keys],
  ])
  if (docs.iamPolicy !== undefined)
    files.set(`${resourceManager!.baseUrl}v1/projects/${project}:getIamPolicy`, docs.iamPolicy)
  yield* discoverGcp(withDocuments(ctx, files), source, {
    serviceAccounts: `${base}/serviceAccounts`,
    keys: [`${base}/serviceAccounts/-/keys`],
    ...(docs.iamPolicy !== undefined
      ? { iamPolicy: `${resourceManager!.baseUrl}v1/projects/${project}:getIamPolicy` }
      : {}),
    project,
  })
}

async function* discoverGcp(
  ctx: DiscoverContext,
  source: string,
  o: {
    serviceAccounts: string
    keys: string[]
    iamPolicy?: string | undefined
    project?: string | undefined
  },
): AsyncGenerator<Observation> {
  const c = createCollector(source)
  const known = new Set<string>()
  for (const { item, path } of await readJsonArray(ctx, o.serviceAccounts, 'service accounts')) {
    const email = str(item.email)
    if (!email) {
      ctx.report(inputError(o.serviceAccounts, 'service account without email', { path }))
      continue
    }
    known.add(email)
    c.identity({
      ref: email,
      kind: 'service_account',
      name: email,
      state: item.disabled === true ? 'disabled' : 'active',
      attributes: {
        project: str(item.projectId) ?? email.split('@')[1]?.split('.')[0] ?? null,
        uniqueId: str(item.uniqueId) ?? null,
        ...(str(item.displayName) ? { displayName: str(item.displayName) } : {}),
        ...(str(item.description) ? { description: str(item.description) } : {}),
      },
    })
  }
  for (const file of o.keys) {
    for (const { item, path } of await readJsonArray(ctx, file, 'service account keys')) {
      const m = /^projects\/([^/]+)\/serviceAccounts\/([^/]+)\/keys\/([0-9a-f]+)$/i.exec(
        str(item.name) ?? '',
      )
      if (!m) {
        ctx.report(
          inputError(file, 'key name is not projects/…/serviceAccounts/…/keys/…', {
            path: `${path}.name`,
          }),
        )
        continue
      }
      const [, , account, keyId] = m
      const userManaged = item.keyType !== 'SYSTEM_MANAGED'
      const notAfter = isoDate(item.validBeforeTime)
      c.credential({
        ref: `gcp-key:${keyId!.toLowerCase()}`,
        identity: account!,
        credentialType: 'private_key',
        state: item.disabled === true ? 'inactive' : 'active',
        ...(isoDate(item.validAfterTime) ? { createdAt: isoDate(item.validAfterTime)! } : {}),
        // 9999-12-31 is how GCP says "never".
        ...(notAfter && !notAfter.startsWith('9999') ? { expiresAt: notAfter } : {}),
        attributes: {
          keyType: str(item.keyType) ?? 'USER_MANAGED',
          keyAlgorithm: str(item.keyAlgorithm) ?? null,
          keyOrigin: str(item.keyOrigin) ?? null,
          ...(userManaged ? {} : { managedByGoogle: true }),
        },
      })
    }
  }
  if (o.iamPolicy && o.project) {
    const parsed = parseJsonInput(await ctx.files.readFile(o.iamPolicy), o.iamPolicy)
    if (parsed.error) ctx.report(parsed.error)
    const bindings =
      isObj(parsed.value) && Array.isArray(parsed.value.bindings) ? parsed.value.bindings : []
    const resource = `//cloudresourcemanager.googleapis.com/projects/${o.project}`
    c.resource({ ref: resource, resourceType: 'gcp_project', name: o.project })
    bindings.forEach((b, i) => {
      const role = isObj(b) ? str(b.role) : undefined
      if (!isObj(b) || !role || !Array.isArray(b.members)) {
        ctx.report(
          inputError(o.iamPolicy!, 'binding without role or members', {
            path: formatPath(['bindings', i]),
          }),
        )
        return
      }
      for (const m of b.members) {
        if (typeof m !== 'string' || !m.startsWith('serviceAccount:')) continue
        const email = m.slice('serviceAccount:'.length)
        // Only this project's accounts are this source's; others get the grant as the far end.
        c.grant(email, resource, [role], `${resource}/iamPolicy`, {
          ...(isObj(b.condition) ? { condition: str(b.condition.title) ?? true } : {}),
          ...(known.has(email) ? {} : { external: true }),
        })
      }
    })
  }
  yield* c.drain()
}
