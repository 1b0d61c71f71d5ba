import type { DiscoverContext } from '../connector.js'
import type { HttpJsonClient } from '../live/http-client.js'
import { tryFetch } from '../live/live-source.js'
import { maxPages } from '../live/pagination.js'

type Json = Record<string, unknown>
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/** What the connector reads, by list path; list items from the API carry no `kind`, so it is set here. */
export const kubernetesLists: readonly { path: string; kind: string }[] = [
  { path: 'api/v1/serviceaccounts', kind: 'ServiceAccount' },
  { path: 'api/v1/secrets', kind: 'Secret' },
  { path: 'apis/rbac.authorization.k8s.io/v1/roles', kind: 'Role' },
  { path: 'apis/rbac.authorization.k8s.io/v1/clusterroles', kind: 'ClusterRole' },
  { path: 'apis/rbac.authorization.k8s.io/v1/rolebindings', kind: 'RoleBinding' },
  { path: 'apis/rbac.authorization.k8s.io/v1/clusterrolebindings', kind: 'ClusterRoleBinding' },
  { path: 'api/v1/pods', kind: 'Pod' },
]

/**
 * Reads the cluster through the API server into the `List` a `kubectl get … -A -o json` dump holds,
 * in pages of `limit` with the `continue` token. Secrets are listed (the API has no way to list
 * their types without the values) and their `data` and `stringData` are dropped from each page
 * before anything else sees it. The token needs `list` on these resources cluster-wide (a
 * read-only ClusterRole; docs/connectors.md gives one); a list it may not read is reported.
 */
export async function fetchKubernetes(
  ctx: DiscoverContext,
  client: HttpJsonClient,
  pageSize = 500,
): Promise<Json> {
  const items: Json[] = []
  for (const { path, kind } of kubernetesLists) {
    ctx.progress?.(`Kubernetes: ${kind}s`)
    await tryFetch(ctx, async () => {
      let cont: string | undefined
      for (let page = 0; page < maxPages; page++) {
        const res = await client.request(path, {
          query: { limit: pageSize, ...(cont ? { continue: cont } : {}) },
        })
        const body = isObj(res.body) ? res.body : {}
        for (const item of Array.isArray(body.items) ? body.items : []) {
          if (!isObj(item)) continue
          if (kind === 'Secret') {
            delete item.data
            delete item.stringData
          }
          items.push({ apiVersion: apiVersionOf(path), kind, ...item })
        }
        const meta = isObj(body.metadata) ? body.metadata : {}
        cont = typeof meta.continue === 'string' && meta.continue !== '' ? meta.continue : undefined
        if (!cont) break
      }
    })
  }
  return { apiVersion: 'v1', kind: 'List', items }
}

function apiVersionOf(path: string): string {
  return path.startsWith('api/v1/') ? 'v1' : path.split('/').slice(1, 3).join('/')
}
