import type { Observation } from '../../inventory/observation.js'
import { createCollector, isoDate, type Collector } from '../collector.js'
import type { Connector, ConnectorFactory, DiscoverContext } from '../connector.js'
import { isObj, str, type Json } from '../json-export.js'
import { OptionReader } from '../options.js'
import {
  openLiveClient,
  readLiveApi,
  requireOneInput,
  withDocuments,
  type LiveApiConfig,
} from '../live/live-source.js'
import { fetchGithubOrg } from './github-api.js'
import { inputError } from '../parse/input-error.js'
import { formatPath, parseJsonInput } from '../parse/json.js'
import { parseAuthorizedKeyLine, SshKeyError } from '../ssh/ssh-keys.js'

/**
 * A GitHub organisation from an export file that holds REST API responses keyed by their path, as
 * `gh api PATH` prints them:
 *
 * - `orgs/{org}/installations`: GitHub App installations (app, permissions, repository selection)
 * - `orgs/{org}/actions/secrets`, `repos/{owner}/{repo}/actions/secrets`: Actions secrets
 *   (names and dates only: the API never returns values)
 * - `repos/{owner}/{repo}/keys`: deploy keys (public keys)
 * - `orgs/{org}/personal-access-tokens`: fine-grained personal access tokens approved for the org
 */
export const createGithubConnector: ConnectorFactory = (config) => {
  const o = new OptionReader(config)
  const file = o.path('file')
  const live = readLiveApi(o, { tokenEnv: 'GITHUB_TOKEN', env: config.env })
  const org = o.string('org')
  requireOneInput(o, file !== undefined, live, 'file')
  if (live && org === undefined) o.problems.push('org: required with api')
  const problems = o.finish()
  if (problems.length > 0) return { ok: false, problems }
  const connector: Connector = {
    kind: 'github',
    name: config.name,
    scope: config.scope ?? 'full',
    discover: (ctx) =>
      live
        ? discoverGithubLive(ctx, config.name, live, org!)
        : discoverGithub(ctx, config.name, file!),
  }
  return { ok: true, connector }
}

/** The live API, read into the export document and parsed as one. */
async function* discoverGithubLive(
  ctx: DiscoverContext,
  source: string,
  live: LiveApiConfig,
  org: string,
): AsyncGenerator<Observation> {
  const client = await openLiveClient(ctx, live, {
    headers: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
  })
  const doc = await fetchGithubOrg(ctx, client, org)
  const label = `${client.baseUrl}orgs/${org}`
  yield* discoverGithub(withDocuments(ctx, new Map([[label, doc]])), source, label)
}

async function* discoverGithub(
  ctx: DiscoverContext,
  source: string,
  file: string,
): AsyncGenerator<Observation> {
  ctx.progress?.(`reading ${file}`)
  const parsed = parseJsonInput(await ctx.files.readFile(file), file)
  if (parsed.error) ctx.report(parsed.error)
  const doc = parsed.value
  const c = createCollector(source)
  if (!isObj(doc)) {
    if (doc !== undefined)
      ctx.report(
        inputError(file, 'expected an object of API responses keyed by path', { path: '$' }),
      )
    yield* c.drain()
    return
  }
  let known = 0
  for (const [key, value] of Object.entries(doc)) {
    const path = formatPath([key])
    let m: RegExpExecArray | null
    if ((m = /^orgs\/([^/]+)\/installations$/.exec(key))) {
      known++
      installations(ctx, c, file, path, m[1]!, value)
    } else if ((m = /^(?:orgs\/([^/]+)|repos\/([^/]+\/[^/]+))\/actions\/secrets$/.exec(key))) {
      known++
      secrets(ctx, c, file, path, (m[1] ?? m[2])!, value)
    } else if ((m = /^repos\/([^/]+\/[^/]+)\/keys$/.exec(key))) {
      known++
      deployKeys(ctx, c, file, path, m[1]!, value)
    } else if ((m = /^orgs\/([^/]+)\/personal-access-tokens$/.exec(key))) {
      known++
      tokens(ctx, c, file, path, m[1]!, value)
    }
  }
  if (known === 0)
    ctx.report(inputError(file, 'no known GitHub API path among the keys', { path: '$' }))
  yield* c.drain()
}

function list(
  ctx: DiscoverContext,
  file: string,
  path: string,
  value: unknown,
  field?: string,
): { item: Json; path: string }[] {
  const arr = field && isObj(value) ? value[field] : value
  if (!Array.isArray(arr)) {
    ctx.report(
      inputError(file, field ? `expected an object with ${field}` : 'expected an array', { path }),
    )
    return []
  }
  const out: { item: Json; path: string }[] = []
  arr.forEach((item, i) => {
    const p = `${path}${field ? `.${field}` : ''}[${i}]`
    if (isObj(item)) out.push({ item, path: p })
    else ctx.report(inputError(file, 'expected an object', { path: p }))
  })
  return out
}

function permissionGrants(
  c: Collector,
  identity: string,
  resource: string,
  perms: unknown,
  via: string,
  attributes?: Record<string, unknown>,
): void {
  if (!isObj(perms)) return
  const actions = Object.entries(perms)
    .filter(([, level]) => typeof level === 'string')
    .map(([name, level]) => `${name}:${String(level)}`)
  if (actions.length > 0) c.grant(identity, resource, actions, via, attributes)
}

function installations(
  ctx: DiscoverContext,
  c: Collector,
  file: string,
  path: string,
  org: string,
  value: unknown,
): void {
  const orgRef = `github://${org}`
  c.resource({ ref: orgRef, resourceType: 'github_org', name: org })
  for (const { item, path: p } of list(ctx, file, path, value, 'installations')) {
    const id = item.id
    const slug = str(item.app_slug)
    if (typeof id !== 'number' || !slug) {
      ctx.report(inputError(file, 'installation without id or app_slug', { path: p }))
      continue
    }
    const ref = `github:installation:${id}`
    c.identity({
      ref,
      kind: 'bot',
      name: `${slug}[bot] on ${org}`,
      state: item.suspended_at ? 'disabled' : 'active',
      ...(isoDate(item.created_at) ? { createdAt: isoDate(item.created_at)! } : {}),
      attributes: {
        appId: typeof item.app_id === 'number' ? item.app_id : null,
        appSlug: slug,
        repositorySelection: str(item.repository_selection) ?? null,
        targetType: str(item.target_type) ?? null,
        events: Array.isArray(item.events) ? item.events.filter((e) => typeof e === 'string') : [],
      },
    })
    permissionGrants(c, ref, orgRef, item.permissions, `github-app:${slug}`, {
      repositorySelection: str(item.repository_selection) ?? null,
    })
  }
}

function secrets(
  ctx: DiscoverContext,
  c: Collector,
  file: string,
  path: string,
  scope: string,
  value: unknown,
): void {
  for (const { item, path: p } of list(ctx, file, path, value, 'secrets')) {
    const name = str(item.name)
    if (!name) {
      ctx.report(inputError(file, 'secret without name', { path: p }))
      continue
    }
    const ref = `github-secret:${scope}/${name}`
    c.credential({
      ref,
      credentialType: 'api_key',
      state: 'active',
      ...(isoDate(item.created_at) ? { createdAt: isoDate(item.created_at)! } : {}),
      ...(isoDate(item.updated_at) ? { lastRotatedAt: isoDate(item.updated_at)! } : {}),
      attributes: {
        secretName: name,
        ...(str(item.visibility) ? { visibility: str(item.visibility) } : {}),
      },
    })
    c.location({
      credential: ref,
      locationType: 'ci_secret',
      ...(scope.includes('/') ? { repository: `github.com/${scope}` } : {}),
      path: `${scope}#${name}`,
    })
  }
}

function deployKeys(
  ctx: DiscoverContext,
  c: Collector,
  file: string,
  path: string,
  repo: string,
  value: unknown,
): void {
  const repoRef = `github://${repo}`
  c.resource({ ref: repoRef, resourceType: 'github_repository', name: repo })
  for (const { item, path: p } of list(ctx, file, path, value)) {
    const id = item.id
    const key = str(item.key)
    if (typeof id !== 'number' || !key) {
      ctx.report(inputError(file, 'deploy key without id or key', { path: p }))
      continue
    }
    let parsed
    try {
      parsed = parseAuthorizedKeyLine(key)
    } catch (err) {
      if (!(err instanceof SshKeyError)) throw err
      ctx.report(inputError(file, `deploy key: ${err.message}`, { path: `${p}.key` }))
      continue
    }
    if (!parsed) continue
    const identity = `github:deploy-key:${repo}#${id}`
    const readOnly = item.read_only !== false
    c.identity({
      ref: identity,
      kind: 'api_client',
      name: `${repo} deploy key ${str(item.title) ?? id}`,
      state: 'active',
      ...(str(item.added_by) ? { createdBy: str(item.added_by)! } : {}),
      ...(isoDate(item.created_at) ? { createdAt: isoDate(item.created_at)! } : {}),
      ...(isoDate(item.last_used) ? { lastUsedAt: isoDate(item.last_used)! } : {}),
      attributes: { repository: repo, readOnly, verified: item.verified === true },
    })
    c.credential({
      ref: `github-deploy-key:${repo}#${id}`,
      identity,
      credentialType: 'ssh_key',
      // The same hash as the ssh connector's for the same key, so a key also found on a host links up.
      fingerprint: `sha256:${parsed.key.sha256Hex}`,
      state: 'active',
      ...(isoDate(item.created_at) ? { createdAt: isoDate(item.created_at)! } : {}),
      ...(isoDate(item.last_used) ? { lastUsedAt: isoDate(item.last_used)! } : {}),
      attributes: {
        keyType: parsed.key.type,
        bits: parsed.key.bits,
        sshFingerprint: parsed.key.fingerprint,
      },
    })
    c.grant(
      identity,
      repoRef,
      readOnly ? ['contents:read'] : ['contents:read', 'contents:write'],
      `deploy-key:${id}`,
    )
  }
}

function tokens(
  ctx: DiscoverContext,
  c: Collector,
  file: string,
  path: string,
  org: string,
  value: unknown,
): void {
  const orgRef = `github://${org}`
  c.resource({ ref: orgRef, resourceType: 'github_org', name: org })
  for (const { item, path: p } of list(ctx, file, path, value)) {
    const id = item.id
    const owner = str((item.owner as Json | undefined)?.login)
    if (typeof id !== 'number' || !owner) {
      ctx.report(inputError(file, 'token grant without id or owner', { path: p }))
      continue
    }
    const identity = `github:pat:${org}/${id}`
    const expired = item.token_expired === true
    const name = str(item.token_name) ?? `token ${String(item.token_id ?? id)}`
    c.identity({
      ref: identity,
      kind: 'api_client',
      name: `${owner}: ${name}`,
      state: expired ? 'disabled' : 'active',
      owner,
      createdBy: owner,
      ...(isoDate(item.access_granted_at) ? { createdAt: isoDate(item.access_granted_at)! } : {}),
      ...(isoDate(item.token_last_used_at)
        ? { lastUsedAt: isoDate(item.token_last_used_at)! }
        : {}),
      attributes: {
        tokenId: item.token_id ?? null,
        repositorySelection: str(item.repository_selection) ?? null,
      },
    })
    c.credential({
      ref: `github-pat:${org}/${String(item.token_id ?? id)}`,
      identity,
      credentialType: 'token',
      state: expired ? 'expired' : 'active',
      ...(isoDate(item.access_granted_at) ? { createdAt: isoDate(item.access_granted_at)! } : {}),
      ...(isoDate(item.token_expires_at) ? { expiresAt: isoDate(item.token_expires_at)! } : {}),
      ...(isoDate(item.token_last_used_at)
        ? { lastUsedAt: isoDate(item.token_last_used_at)! }
        : {}),
      attributes: { fineGrained: true, tokenName: name },
    })
    const perms = isObj(item.permissions) ? item.permissions : {}
    const selection = str(item.repository_selection) ?? null
    permissionGrants(c, identity, orgRef, perms.organization, `pat-grant:${id}`)
    permissionGrants(
      c,
      identity,
      selection === 'all' ? `${orgRef}/*` : `${orgRef}/(selected)`,
      perms.repository,
      `pat-grant:${id}`,
      {
        repositorySelection: selection,
      },
    )
  }
}
