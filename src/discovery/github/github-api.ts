import type { DiscoverContext } from '../connector.js'
import type { HttpJsonClient } from '../live/http-client.js'
import { tryFetch } from '../live/live-source.js'
import { field, linkPages } from '../live/pagination.js'

/**
 * Reads an organisation through the GitHub REST API into the export document the file connector
 * parses (responses keyed by path, pages merged). Needs a token that can read the org's apps,
 * Actions secrets, repositories' deploy keys and, for fine-grained PAT approvals, a GitHub App
 * installation token with `organization_personal_access_tokens: read`. An endpoint the token may
 * not read is reported and skipped; the rest is still discovered.
 */
export async function fetchGithubOrg(
  ctx: DiscoverContext,
  client: HttpJsonClient,
  org: string,
): Promise<Record<string, unknown>> {
  const doc: Record<string, unknown> = {}
  const o = encodeURIComponent(org)
  ctx.progress?.(`GitHub ${org}: app installations`)
  const installations = await tryFetch(ctx, () =>
    linkPages(client, `orgs/${o}/installations`, field('installations')),
  )
  if (installations) {
    doc[`orgs/${org}/installations`] = {
      total_count: installations.items.length,
      installations: installations.items,
    }
  }
  ctx.progress?.(`GitHub ${org}: Actions secrets`)
  const orgSecrets = await tryFetch(ctx, () =>
    linkPages(client, `orgs/${o}/actions/secrets`, field('secrets')),
  )
  if (orgSecrets) {
    doc[`orgs/${org}/actions/secrets`] = {
      total_count: orgSecrets.items.length,
      secrets: orgSecrets.items,
    }
  }
  ctx.progress?.(`GitHub ${org}: fine-grained personal access tokens`)
  const pats = await tryFetch(ctx, () =>
    linkPages(client, `orgs/${o}/personal-access-tokens`, field()),
  )
  if (pats) doc[`orgs/${org}/personal-access-tokens`] = pats.items
  const repos = await tryFetch(ctx, () => linkPages(client, `orgs/${o}/repos`, field()))
  const names = (repos?.items ?? [])
    .map((r) =>
      typeof r === 'object' && r !== null ? (r as Record<string, unknown>).full_name : undefined,
    )
    .filter((n): n is string => typeof n === 'string' && /^[^/]+\/[^/]+$/.test(n))
  let done = 0
  for (const full of names) {
    if (ctx.signal?.aborted) break
    ctx.progress?.(`GitHub ${org}: repository ${++done}/${names.length} ${full}`)
    const [owner, repo] = full.split('/').map(encodeURIComponent) as [string, string]
    const keys = await tryFetch(ctx, () =>
      linkPages(client, `repos/${owner}/${repo}/keys`, field()),
    )
    if (keys && keys.items.length > 0) doc[`repos/${full}/keys`] = keys.items
    const secrets = await tryFetch(ctx, () =>
      linkPages(client, `repos/${owner}/${repo}/actions/secrets`, field('secrets')),
    )
    if (secrets && secrets.items.length > 0) {
      doc[`repos/${full}/actions/secrets`] = {
        total_count: secrets.items.length,
        secrets: secrets.items,
      }
    }
  }
  return doc
}
