import type { DiscoverContext } from '../connector.js'
import type { HttpJsonClient } from '../live/http-client.js'
import { tryFetch } from '../live/live-source.js'
import { maxPages } from '../live/pagination.js'

type Json = Record<string, unknown>
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

export interface GcpDocuments {
  serviceAccounts: unknown[]
  keys: unknown[]
  iamPolicy?: unknown
}

/**
 * Reads a project's service accounts, their keys and the project IAM policy through the IAM and
 * Resource Manager REST APIs: the same objects `gcloud … --format=json` prints, so the file parser
 * reads them unchanged. The token is an OAuth access token (`gcloud auth print-access-token`, or
 * the metadata server's) with `iam.serviceAccounts.list`, `iam.serviceAccountKeys.list` and
 * `resourcemanager.projects.getIamPolicy`.
 */
export async function fetchGcpProject(
  ctx: DiscoverContext,
  iam: HttpJsonClient,
  resourceManager: HttpJsonClient | undefined,
  project: string,
): Promise<GcpDocuments> {
  const p = encodeURIComponent(project)
  ctx.progress?.(`GCP ${project}: service accounts`)
  const serviceAccounts = await tokenPages(iam, `v1/projects/${p}/serviceAccounts`, 'accounts')
  const keys: unknown[] = []
  let done = 0
  for (const account of serviceAccounts) {
    if (ctx.signal?.aborted) break
    const name = isObj(account) && typeof account.name === 'string' ? account.name : undefined
    if (!name || !/^projects\/[^/]+\/serviceAccounts\/[^/]+$/.test(name)) continue
    ctx.progress?.(`GCP ${project}: keys of account ${++done}/${serviceAccounts.length}`)
    const res = await tryFetch(ctx, () =>
      iam.request(`v1/${name.split('/').map(encodeURIComponent).join('/')}/keys`),
    )
    const list = res && isObj(res.body) && Array.isArray(res.body.keys) ? res.body.keys : []
    keys.push(...list)
  }
  let iamPolicy: unknown
  if (resourceManager) {
    ctx.progress?.(`GCP ${project}: IAM policy`)
    const res = await tryFetch(ctx, () =>
      resourceManager.request(`v1/projects/${p}:getIamPolicy`, {
        method: 'POST',
        body: { options: { requestedPolicyVersion: 3 } },
      }),
    )
    iamPolicy = res?.body
  }
  return { serviceAccounts, keys, ...(iamPolicy === undefined ? {} : { iamPolicy }) }
}

/** Google's paging: `pageToken` in, `nextPageToken` out. */
async function tokenPages(client: HttpJsonClient, path: string, field: string): Promise<unknown[]> {
  const out: unknown[] = []
  let token: string | undefined
  for (let page = 0; page < maxPages; page++) {
    const res = await client.request(path, {
      query: { pageSize: 100, ...(token ? { pageToken: token } : {}) },
    })
    const body = isObj(res.body) ? res.body : {}
    if (Array.isArray(body[field])) out.push(...(body[field] as unknown[]))
    token =
      typeof body.nextPageToken === 'string' && body.nextPageToken !== ''
        ? body.nextPageToken
        : undefined
    if (!token) break
  }
  return out
}
