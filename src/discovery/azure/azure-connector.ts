import type { Observation } from '../../inventory/observation.js'
import { createCollector, isoDate, type Collector } from '../collector.js'
import type { Connector, ConnectorFactory, DiscoverContext } from '../connector.js'
import { readJsonArray, str, type Json } from '../json-export.js'
import { OptionReader } from '../options.js'
import {
  openLiveClient,
  readLiveApi,
  requireOneInput,
  withDocuments,
  type LiveApiConfig,
} from '../live/live-source.js'
import { fetchEntra } from './azure-api.js'
import { inputError } from '../parse/input-error.js'

/**
 * Entra ID (Azure AD) from `az ad app list --all` (app registrations) and `az ad sp list --all`
 * (service principals, managed identities included), with their client secrets
 * (`passwordCredentials`: metadata and the 3-character `hint` only; the CLI never returns the
 * secret) and certificates (`keyCredentials`: thumbprint and validity).
 */
export const createAzureConnector: ConnectorFactory = (config) => {
  const o = new OptionReader(config)
  const apps = o.path('apps')
  const servicePrincipals = o.path('servicePrincipals')
  const live = readLiveApi(o, { tokenEnv: 'AZURE_GRAPH_TOKEN', env: config.env })
  requireOneInput(
    o,
    apps !== undefined || servicePrincipals !== undefined,
    live,
    'apps/servicePrincipals',
  )
  const problems = o.finish()
  if (problems.length > 0) return { ok: false, problems }
  const connector: Connector = {
    kind: 'azure',
    name: config.name,
    scope: config.scope ?? 'full',
    discover: (ctx) =>
      live
        ? discoverAzureLive(ctx, config.name, live)
        : discoverAzure(ctx, config.name, { apps, servicePrincipals }),
  }
  return { ok: true, connector }
}

/** Microsoft Graph, read into the two lists the az CLI would print. */
async function* discoverAzureLive(
  ctx: DiscoverContext,
  source: string,
  live: LiveApiConfig,
): AsyncGenerator<Observation> {
  const graph = await openLiveClient(ctx, live)
  const docs = await fetchEntra(ctx, graph)
  const files = new Map<string, unknown>()
  const label = (p: string) => `${graph.baseUrl}v1.0/${p}`
  if (docs.apps) files.set(label('applications'), docs.apps)
  if (docs.servicePrincipals) files.set(label('servicePrincipals'), docs.servicePrincipals)
  yield* discoverAzure(withDocuments(ctx, files), source, {
    apps: docs.apps ? label('applications') : undefined,
    servicePrincipals: docs.servicePrincipals ? label('servicePrincipals') : undefined,
  })
}

const objects = (v: unknown): Json[] =>
  Array.isArray(v)
    ? v.filter((x): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x))
    : []

/** `owner:payments-core` or `owner=payments-core` among an object's string tags. */
function tagOwner(tags: unknown): string | undefined {
  if (!Array.isArray(tags)) return undefined
  for (const t of tags) {
    const m = typeof t === 'string' ? /^(?:owner|team)[:=](.+)$/i.exec(t) : null
    if (m) return m[1]!.trim()
  }
  return undefined
}

function credentials(c: Collector, owner: Json, identity: string, scope: string): void {
  for (const p of objects(owner.passwordCredentials)) {
    const keyId = str(p.keyId)
    if (!keyId) continue
    const hint = str(p.hint)
    const end = isoDate(p.endDateTime)
    c.credential({
      ref: `azure-secret:${scope}/${keyId}`,
      identity,
      credentialType: 'client_secret',
      // The hint is the secret's first three characters, which is what a redacted preview shows.
      ...(hint && hint.length <= 4 ? { preview: `${hint}…` } : {}),
      ...(isoDate(p.startDateTime) ? { createdAt: isoDate(p.startDateTime)! } : {}),
      ...(end ? { expiresAt: end } : {}),
      state: 'active',
      attributes: { keyId, ...(str(p.displayName) ? { displayName: str(p.displayName) } : {}) },
    })
  }
  for (const k of objects(owner.keyCredentials)) {
    const keyId = str(k.keyId)
    if (!keyId) continue
    const thumb = str(k.customKeyIdentifier)
    const end = isoDate(k.endDateTime)
    c.credential({
      ref: `azure-cert:${scope}/${keyId}`,
      identity,
      credentialType: 'certificate',
      // customKeyIdentifier is the certificate's SHA-1 thumbprint (public).
      ...(thumb && /^[0-9A-Fa-f]{40}$/.test(thumb)
        ? { fingerprint: `sha1:${thumb.toLowerCase()}` }
        : {}),
      ...(isoDate(k.startDateTime) ? { createdAt: isoDate(k.startDateTime)! } : {}),
      ...(end ? { expiresAt: end } : {}),
      state: 'active',
      attributes: {
        keyId,
        type: str(k.type) ?? null,
        usage: str(k.usage) ?? null,
        ...(str(k.displayName) ? { displayName: str(k.displayName) } : {}),
      },
    })
  }
}

async function* discoverAzure(
  ctx: DiscoverContext,
  source: string,
  o: { apps: string | undefined; servicePrincipals: string | undefined },
): AsyncGenerator<Observation> {
  const c = createCollector(source)
  const appIds = new Set<string>()
  if (o.apps) {
    for (const { item, path } of await readJsonArray(ctx, o.apps, 'app registrations')) {
      const appId = str(item.appId)
      if (!appId) {
        ctx.report(inputError(o.apps, 'app registration without appId', { path }))
        continue
      }
      appIds.add(appId)
      const ref = `azure:app:${appId}`
      const owner = tagOwner(item.tags)
      c.identity({
        ref,
        kind: 'oauth_app',
        name: str(item.displayName) ?? appId,
        state: 'active',
        ...(owner ? { owner } : {}),
        ...(isoDate(item.createdDateTime) ? { createdAt: isoDate(item.createdDateTime)! } : {}),
        attributes: {
          objectId: str(item.id) ?? null,
          signInAudience: str(item.signInAudience) ?? null,
          apiPermissions: objects(item.requiredResourceAccess).reduce(
            (n, r) => n + objects(r.resourceAccess).length,
            0,
          ),
        },
      })
      credentials(c, item, ref, appId)
    }
  }
  if (o.servicePrincipals) {
    for (const { item, path } of await readJsonArray(
      ctx,
      o.servicePrincipals,
      'service principals',
    )) {
      const id = str(item.id)
      if (!id) {
        ctx.report(inputError(o.servicePrincipals, 'service principal without id', { path }))
        continue
      }
      const ref = `azure:sp:${id}`
      const type = str(item.servicePrincipalType) ?? 'Application'
      const owner = tagOwner(item.tags)
      const appId = str(item.appId)
      c.identity({
        ref,
        kind: type === 'ManagedIdentity' ? 'service_account' : 'api_client',
        name: str(item.displayName) ?? id,
        state: item.accountEnabled === false ? 'disabled' : 'active',
        ...(owner ? { owner } : {}),
        ...(isoDate(item.createdDateTime) ? { createdAt: isoDate(item.createdDateTime)! } : {}),
        attributes: {
          servicePrincipalType: type,
          appId: appId ?? null,
          appOwnerOrganizationId: str(item.appOwnerOrganizationId) ?? null,
        },
      })
      credentials(c, item, ref, id)
      // The tenant's instance of an app registration described by this same source.
      if (appId && appIds.has(appId)) {
        c.edge(
          'depends_on',
          { type: 'identity', ref },
          { type: 'identity', ref: `azure:app:${appId}` },
        )
      }
    }
  }
  yield* c.drain()
}
