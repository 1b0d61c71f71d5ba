import { TesseraError } from '../errors.js'
import { canonicalJson } from '../runtime/canonical-json.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import { parseSpiffeId, parseTrustDomain } from '../spiffe/id.js'
import type { TrustBundle } from '../spiffe/types.js'
import type { Store } from '../store/store.js'

/**
 * SPIFFE federation relationships: which foreign trust domains this one trusts, where their
 * bundles come from (a bundle endpoint, `https_web` or `https_spiffe`), and the bundles fetched.
 * Each relationship is polled at the bundle's own refresh hint; every new bundle version is kept
 * and the one before it closed, so past trust is answerable. Agents deliver a foreign bundle only
 * to workloads whose entry `federates_with` that trust domain.
 */

export const bundleEndpointProfiles = ['https_web', 'https_spiffe'] as const
export type BundleEndpointProfile = (typeof bundleEndpointProfiles)[number]

export interface FederationRelationship {
  trustDomain: string
  bundleEndpointUrl: string
  profile: BundleEndpointProfile
  /** https_spiffe: the SPIFFE ID the endpoint's server certificate must carry. */
  endpointSpiffeId?: string
}

export interface FederationInput extends FederationRelationship {
  /**
   * The foreign trust domain's bundle document (SPIFFE bundle JSON), to start trust. Required for
   * https_spiffe when the endpoint belongs to the foreign trust domain: its certificate is checked
   * against this bundle, and afterwards against each newer bundle fetched.
   */
  trustBundle?: string
  createdBy?: string
}

export interface FederationView extends FederationRelationship {
  createdAt: string
  createdBy: string | null
  nextPollAt: string
  lastPolledAt: string | null
  lastSuccessAt: string | null
  lastError: string | null
  consecutiveFailures: number
  /** The current bundle's sequence and when it was fetched, if any. */
  bundleSequence: number | null
  bundleFetchedAt: string | null
}

export type PollOutcome =
  | { trustDomain: string; outcome: 'updated'; sequence: number }
  | { trustDomain: string; outcome: 'unchanged'; sequence: number }
  | { trustDomain: string; outcome: 'failed'; error: string }

/** Reads a SPIFFE bundle document strictly (duplicate keys refused) for `trustDomain`. */
export type BundleParser = (json: string, trustDomain: string) => TrustBundle

/**
 * Fetches a relationship's bundle document. `anchors` are the X.509 roots the endpoint's
 * certificate must chain to under https_spiffe (the latest bundle of the endpoint's trust domain).
 */
export type BundleFetcher = (
  relationship: FederationRelationship,
  anchors: readonly Buffer[] | undefined,
) => Promise<string>

export interface FederationDeps {
  store: Store
  ownTrustDomain: string
  parseBundle: BundleParser
  fetchBundle: BundleFetcher
  /** Our own bundle: the anchors for an https_spiffe endpoint inside our own trust domain. */
  ownBundle?: () => Promise<TrustBundle>
  clock?: Clock
}

export interface Federation {
  add(input: FederationInput): Promise<FederationView>
  list(): Promise<FederationView[]>
  get(trustDomain: string): Promise<FederationView | undefined>
  /** Ends the relationship; the fetched bundles stay in history, none is current any more. */
  remove(trustDomain: string): Promise<void>
  /** Polls one relationship now, whatever its schedule. */
  refresh(trustDomain: string): Promise<PollOutcome>
  /** Polls every relationship that is due; what a server's timer calls. */
  pollDue(limit?: number): Promise<PollOutcome[]>
  /** The current foreign bundles, by trust domain. */
  bundles(): Promise<Map<string, TrustBundle>>
}

/** Refresh hints are honoured within these bounds (seconds). */
export const minRefreshSeconds = 30
export const maxRefreshSeconds = 86_400
/** When a bundle gives no hint (SPIRE's default is 5 minutes). */
export const defaultRefreshSeconds = 300

/** A trust domain name (`partner.org` or `spiffe://partner.org`), as TSR_VALIDATION when bad. */
export function checkTrustDomain(value: string, field = 'trust domain'): string {
  try {
    return parseTrustDomain(value.trim())
  } catch (err) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `${field} "${value}" is not a trust domain name (${(err as Error).message})`,
      { cause: err },
    )
  }
}

function checkEndpointUrl(value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new TesseraError('TSR_VALIDATION', `bundle endpoint "${value}" is not a URL`)
  }
  if (url.protocol !== 'https:') {
    throw new TesseraError('TSR_VALIDATION', 'a bundle endpoint URL must use https')
  }
  if (url.username || url.password) {
    throw new TesseraError('TSR_VALIDATION', 'a bundle endpoint URL must not hold credentials')
  }
  return url.toString()
}

function spiffeIdTrustDomain(id: string): string {
  try {
    return parseSpiffeId(id).trustDomain
  } catch (err) {
    throw new TesseraError('TSR_VALIDATION', `"${id}" is not a SPIFFE ID`, { cause: err })
  }
}

/** Next poll after a success: the hint, within bounds. After failures: back off, at most the hint. */
export function nextPollDelaySeconds(hint: number | null, failures: number): number {
  const base = Math.min(
    maxRefreshSeconds,
    Math.max(minRefreshSeconds, hint ?? defaultRefreshSeconds),
  )
  if (failures === 0) return base
  return Math.min(base, 10 * 2 ** Math.min(failures - 1, 16))
}

export function createFederation(deps: FederationDeps): Federation {
  const db = deps.store.db
  const clock = deps.clock ?? systemClock
  const ownTd = deps.ownTrustDomain

  async function currentBundleRow(trustDomain: string) {
    return db
      .selectFrom('federated_bundle')
      .selectAll()
      .where('trust_domain', '=', trustDomain)
      .where('valid_to', 'is', null)
      .executeTakeFirst()
  }

  async function anchorsFor(rel: FederationRelationship): Promise<Buffer[] | undefined> {
    if (rel.profile !== 'https_spiffe') return undefined
    const td = spiffeIdTrustDomain(rel.endpointSpiffeId!)
    if (td === ownTd) {
      if (!deps.ownBundle) return undefined
      return (await deps.ownBundle()).x509Authorities
    }
    const row = await currentBundleRow(td)
    if (!row) return undefined
    return deps.parseBundle(JSON.stringify(row.bundle), td).x509Authorities
  }

  /** Stores `json` as the current bundle of `trustDomain` unless it is what we have already. */
  async function storeBundle(
    trustDomain: string,
    json: string,
    source: 'endpoint' | 'operator',
  ): Promise<{ changed: boolean; sequence: number; hint: number }> {
    const bundle = deps.parseBundle(json, trustDomain)
    const document = JSON.parse(json) as unknown
    return deps.store.transaction(async ({ db: tx }) => {
      const current = await tx
        .selectFrom('federated_bundle')
        .selectAll()
        .where('trust_domain', '=', trustDomain)
        .where('valid_to', 'is', null)
        .forUpdate()
        .executeTakeFirst()
      const now = clock.now()
      if (current) {
        const same = canonicalJson(current.bundle) === canonicalJson(document)
        if (same) {
          return { changed: false, sequence: Number(current.sequence), hint: hintOf(bundle) }
        }
        if (source === 'endpoint' && bundle.sequence < Number(current.sequence)) {
          throw new TesseraError(
            'TSR_VALIDATION',
            `the bundle's spiffe_sequence ${bundle.sequence} is older than the one held (${current.sequence}); refused as a possible rollback`,
          )
        }
        await tx
          .updateTable('federated_bundle')
          .set({ valid_to: now })
          .where('version_id', '=', current.version_id)
          .execute()
      }
      await tx
        .insertInto('federated_bundle')
        .values({
          trust_domain: trustDomain,
          sequence: bundle.sequence,
          bundle: JSON.stringify(document),
          refresh_hint_seconds: bundle.refreshHintSeconds || null,
          source,
          fetched_at: now,
        })
        .execute()
      return { changed: true, sequence: bundle.sequence, hint: hintOf(bundle) }
    })
  }

  async function poll(rel: FederationRelationship): Promise<PollOutcome> {
    const now = clock.now()
    const row = await db
      .selectFrom('federation_relationship')
      .select('consecutive_failures')
      .where('trust_domain', '=', rel.trustDomain)
      .executeTakeFirst()
    try {
      const anchors = await anchorsFor(rel)
      if (rel.profile === 'https_spiffe' && (!anchors || anchors.length === 0)) {
        throw new TesseraError(
          'TSR_VALIDATION',
          `no bundle to check ${rel.endpointSpiffeId} against: add the relationship with --trust-bundle`,
        )
      }
      const json = await deps.fetchBundle(rel, anchors)
      const stored = await storeBundle(rel.trustDomain, json, 'endpoint')
      await db
        .updateTable('federation_relationship')
        .set({
          last_polled_at: now,
          last_success_at: now,
          last_error: null,
          consecutive_failures: 0,
          next_poll_at: new Date(now.getTime() + nextPollDelaySeconds(stored.hint, 0) * 1000),
        })
        .where('trust_domain', '=', rel.trustDomain)
        .execute()
      return {
        trustDomain: rel.trustDomain,
        outcome: stored.changed ? 'updated' : 'unchanged',
        sequence: stored.sequence,
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      const failures = (row?.consecutive_failures ?? 0) + 1
      const current = await currentBundleRow(rel.trustDomain)
      await db
        .updateTable('federation_relationship')
        .set({
          last_polled_at: now,
          last_error: message.slice(0, 1000),
          consecutive_failures: failures,
          next_poll_at: new Date(
            now.getTime() +
              nextPollDelaySeconds(current?.refresh_hint_seconds ?? null, failures) * 1000,
          ),
        })
        .where('trust_domain', '=', rel.trustDomain)
        .execute()
      return { trustDomain: rel.trustDomain, outcome: 'failed', error: message }
    }
  }

  async function views(trustDomain?: string): Promise<FederationView[]> {
    let q = db
      .selectFrom('federation_relationship as r')
      .leftJoin('federated_bundle as b', (join) =>
        join.onRef('b.trust_domain', '=', 'r.trust_domain').on('b.valid_to', 'is', null),
      )
      .select([
        'r.trust_domain',
        'r.bundle_endpoint_url',
        'r.profile',
        'r.endpoint_spiffe_id',
        'r.created_at',
        'r.created_by',
        'r.next_poll_at',
        'r.last_polled_at',
        'r.last_success_at',
        'r.last_error',
        'r.consecutive_failures',
        'b.sequence',
        'b.fetched_at',
      ])
      .orderBy('r.trust_domain')
    if (trustDomain !== undefined) q = q.where('r.trust_domain', '=', trustDomain)
    const rows = await q.execute()
    const iso = (d: Date | string | null | undefined) =>
      d === null || d === undefined ? null : new Date(d).toISOString()
    return rows.map((r) => ({
      trustDomain: r.trust_domain,
      bundleEndpointUrl: r.bundle_endpoint_url,
      profile: r.profile,
      ...(r.endpoint_spiffe_id ? { endpointSpiffeId: r.endpoint_spiffe_id } : {}),
      createdAt: iso(r.created_at)!,
      createdBy: r.created_by,
      nextPollAt: iso(r.next_poll_at)!,
      lastPolledAt: iso(r.last_polled_at),
      lastSuccessAt: iso(r.last_success_at),
      lastError: r.last_error,
      consecutiveFailures: Number(r.consecutive_failures),
      bundleSequence: r.sequence === null ? null : Number(r.sequence),
      bundleFetchedAt: iso(r.fetched_at),
    }))
  }

  async function relationship(trustDomain: string): Promise<FederationRelationship> {
    const td = checkTrustDomain(trustDomain)
    const row = await db
      .selectFrom('federation_relationship')
      .selectAll()
      .where('trust_domain', '=', td)
      .executeTakeFirst()
    if (!row) throw new TesseraError('TSR_NOT_FOUND', `no federation with ${td}`)
    return {
      trustDomain: row.trust_domain,
      bundleEndpointUrl: row.bundle_endpoint_url,
      profile: row.profile,
      ...(row.endpoint_spiffe_id ? { endpointSpiffeId: row.endpoint_spiffe_id } : {}),
    }
  }

  return {
    async add(input) {
      const trustDomain = checkTrustDomain(input.trustDomain)
      if (trustDomain === ownTd) {
        throw new TesseraError('TSR_VALIDATION', 'a trust domain does not federate with itself')
      }
      const url = checkEndpointUrl(input.bundleEndpointUrl)
      if (!(bundleEndpointProfiles as readonly string[]).includes(input.profile)) {
        throw new TesseraError('TSR_VALIDATION', 'profile is https_web or https_spiffe')
      }
      let endpointSpiffeId: string | undefined
      if (input.profile === 'https_spiffe') {
        if (!input.endpointSpiffeId) {
          throw new TesseraError(
            'TSR_VALIDATION',
            'https_spiffe needs the endpoint SPIFFE ID (the ID its certificate carries)',
          )
        }
        const endpointTd = spiffeIdTrustDomain(input.endpointSpiffeId)
        if (endpointTd !== ownTd && endpointTd !== trustDomain) {
          throw new TesseraError(
            'TSR_VALIDATION',
            `the endpoint SPIFFE ID must belong to ${trustDomain} or to this trust domain`,
          )
        }
        if (endpointTd === trustDomain && input.trustBundle === undefined) {
          throw new TesseraError(
            'TSR_VALIDATION',
            `https_spiffe needs ${trustDomain}'s bundle to start trust (--trust-bundle FILE)`,
          )
        }
        endpointSpiffeId = input.endpointSpiffeId
      } else if (input.endpointSpiffeId) {
        throw new TesseraError(
          'TSR_VALIDATION',
          'an endpoint SPIFFE ID goes with https_spiffe only',
        )
      }
      // Check the bundle before anything is written.
      if (input.trustBundle !== undefined) deps.parseBundle(input.trustBundle, trustDomain)
      const existing = await db
        .selectFrom('federation_relationship')
        .select('trust_domain')
        .where('trust_domain', '=', trustDomain)
        .executeTakeFirst()
      if (existing) {
        throw new TesseraError('TSR_CONFLICT', `a federation with ${trustDomain} exists already`)
      }
      await db
        .insertInto('federation_relationship')
        .values({
          trust_domain: trustDomain,
          bundle_endpoint_url: url,
          profile: input.profile,
          endpoint_spiffe_id: endpointSpiffeId ?? null,
          created_at: clock.now(),
          created_by: input.createdBy ?? null,
          next_poll_at: clock.now(),
        })
        .execute()
      if (input.trustBundle !== undefined) {
        await storeBundle(trustDomain, input.trustBundle, 'operator')
      }
      return (await views(trustDomain))[0]!
    },

    list: () => views(),

    async get(trustDomain) {
      return (await views(checkTrustDomain(trustDomain)))[0]
    },

    async remove(trustDomain) {
      const td = checkTrustDomain(trustDomain)
      await deps.store.transaction(async ({ db: tx }) => {
        const gone = await tx
          .deleteFrom('federation_relationship')
          .where('trust_domain', '=', td)
          .returning('trust_domain')
          .executeTakeFirst()
        if (!gone) throw new TesseraError('TSR_NOT_FOUND', `no federation with ${td}`)
        await tx
          .updateTable('federated_bundle')
          .set({ valid_to: clock.now() })
          .where('trust_domain', '=', td)
          .where('valid_to', 'is', null)
          .execute()
      })
    },

    async refresh(trustDomain) {
      return poll(await relationship(trustDomain))
    },

    async pollDue(limit = 100) {
      const due = await db
        .selectFrom('federation_relationship')
        .select('trust_domain')
        .where('next_poll_at', '<=', clock.now())
        .orderBy('next_poll_at')
        .limit(limit)
        .execute()
      const out: PollOutcome[] = []
      for (const { trust_domain } of due) out.push(await poll(await relationship(trust_domain)))
      return out
    },

    async bundles() {
      const rows = await db
        .selectFrom('federated_bundle as b')
        .innerJoin('federation_relationship as r', 'r.trust_domain', 'b.trust_domain')
        .select(['b.trust_domain', 'b.bundle'])
        .where('b.valid_to', 'is', null)
        .execute()
      const out = new Map<string, TrustBundle>()
      for (const row of rows) {
        out.set(row.trust_domain, deps.parseBundle(JSON.stringify(row.bundle), row.trust_domain))
      }
      return out
    },
  }
}

function hintOf(bundle: TrustBundle): number {
  return bundle.refreshHintSeconds > 0 ? bundle.refreshHintSeconds : defaultRefreshSeconds
}
