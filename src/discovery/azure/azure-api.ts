import type { DiscoverContext } from '../connector.js'
import type { HttpJsonClient } from '../live/http-client.js'
import { tryFetch } from '../live/live-source.js'
import { maxPages } from '../live/pagination.js'

type Json = Record<string, unknown>
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Reads app registrations and service principals through Microsoft Graph (`/v1.0/applications`,
 * `/v1.0/servicePrincipals`, following `@odata.nextLink`): the objects `az ad app list` and
 * `az ad sp list` print. The token is a Graph access token with `Application.Read.All`. Graph never
 * returns client secret values, only their metadata and 3-character hint.
 */
export async function fetchEntra(
  ctx: DiscoverContext,
  graph: HttpJsonClient,
): Promise<{ apps?: unknown[]; servicePrincipals?: unknown[] }> {
  ctx.progress?.('Entra ID: app registrations')
  const apps = await tryFetch(ctx, () => odataPages(graph, 'v1.0/applications'))
  ctx.progress?.('Entra ID: service principals')
  const servicePrincipals = await tryFetch(ctx, () => odataPages(graph, 'v1.0/servicePrincipals'))
  return {
    ...(apps ? { apps } : {}),
    ...(servicePrincipals ? { servicePrincipals } : {}),
  }
}

async function odataPages(client: HttpJsonClient, path: string): Promise<unknown[]> {
  const out: unknown[] = []
  let res = await client.request(path, { query: { $top: 999 } })
  for (let page = 1; ; page++) {
    const body = isObj(res.body) ? res.body : {}
    if (Array.isArray(body.value)) out.push(...(body.value as unknown[]))
    const next = body['@odata.nextLink']
    if (typeof next !== 'string' || next === '' || page >= maxPages) break
    res = await client.request(next)
  }
  return out
}
