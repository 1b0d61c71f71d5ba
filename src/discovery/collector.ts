import type {
  CredentialObservation,
  EdgeObservation,
  GrantObservation,
  IdentityObservation,
  LocationObservation,
  NodeType,
  Observation,
  ResourceObservation,
} from '../inventory/observation.js'
import type { EdgeType } from '../store/schema.js'

type Omit2<T> = Omit<T, 'type' | 'source'>

/**
 * Gathers a connector's facts so that each is emitted once, in an order the inventory can follow
 * (resources, identities, credentials, locations, grants, edges): grants of one identity on one
 * resource through one policy merge their actions, edges between the same two nodes merge their
 * attributes, and the first identity with a ref wins over later mentions.
 *
 * A connector describes only what its source owns. A principal of another account or platform that
 * it merely names (a trust policy's principal, an IRSA role) is the far end of an edge, never an
 * identity fact: the inventory keys facts by ref, and two sources writing one fact would take it
 * from each other on every run.
 */
export function createCollector(source: string) {
  const resources = new Map<string, ResourceObservation>()
  const identities = new Map<string, IdentityObservation>()
  const mentioned = new Map<string, IdentityObservation>()
  const credentials = new Map<string, CredentialObservation>()
  const locations: LocationObservation[] = []
  const grants = new Map<string, GrantObservation & { actionSet: Set<string> }>()
  const edges = new Map<string, EdgeObservation>()

  return {
    identity(o: Omit2<IdentityObservation>): void {
      if (!identities.has(o.ref)) identities.set(o.ref, { type: 'identity', source, ...o })
    },
    /**
     * An identity only mentioned (a trust policy's principal, a binding's subject): emitted only
     * when no input describes it, whatever the order they are read in.
     */
    mentionedIdentity(o: Omit2<IdentityObservation>): void {
      if (!mentioned.has(o.ref)) mentioned.set(o.ref, { type: 'identity', source, ...o })
    },
    hasIdentity(ref: string): boolean {
      return identities.has(ref)
    },
    /** Changes an identity already collected (e.g. what a second export adds). */
    update(ref: string, fn: (identity: IdentityObservation) => void): void {
      const i = identities.get(ref)
      if (i) fn(i)
    },
    /**
     * An owner named by a tag or label. Only the ref goes on the identity: owner facts come from the
     * people and team sources (HR, SCIM, CSV). A connector that also wrote the owner would fight
     * any other source naming the same team, since a fact belongs to the source that last wrote it.
     */
    owner(ref: string): string {
      return ref
    },
    resource(o: Omit2<ResourceObservation>): void {
      if (!resources.has(o.ref)) resources.set(o.ref, { type: 'resource', source, ...o })
    },
    credential(o: Omit2<CredentialObservation>): void {
      if (!credentials.has(o.ref)) credentials.set(o.ref, { type: 'credential', source, ...o })
    },
    location(o: Omit2<LocationObservation>): void {
      locations.push({ type: 'location', source, ...o })
    },
    grant(
      identity: string,
      resource: string,
      actions: readonly string[],
      via: string | undefined,
      attributes?: Record<string, unknown>,
    ): void {
      const key = JSON.stringify([identity, resource, via ?? null])
      let g = grants.get(key)
      if (!g) {
        g = {
          type: 'grant',
          source,
          identity,
          resource,
          actions: [],
          ...(via === undefined ? {} : { via }),
          actionSet: new Set(),
        }
        grants.set(key, g)
      }
      for (const a of actions) g.actionSet.add(a)
      if (attributes) g.attributes = { ...g.attributes, ...attributes }
    },
    edge(
      edgeType: EdgeType,
      from: { type: NodeType; ref: string },
      to: { type: NodeType; ref: string },
      attributes?: Record<string, unknown>,
    ): void {
      const key = JSON.stringify([edgeType, from.type, from.ref, to.type, to.ref])
      const e = edges.get(key)
      if (!e) {
        edges.set(key, {
          type: 'edge',
          source,
          edgeType,
          from,
          to,
          ...(attributes ? { attributes } : {}),
        })
      } else if (attributes) e.attributes = mergeAttributes(e.attributes ?? {}, attributes)
    },
    *drain(): Generator<Observation> {
      yield* resources.values()
      yield* identities.values()
      for (const [ref, i] of mentioned) if (!identities.has(ref)) yield i
      yield* credentials.values()
      yield* locations
      for (const { actionSet, ...g } of grants.values()) {
        yield { ...g, actions: [...actionSet].sort() }
      }
      yield* edges.values()
    },
  }
}

export type Collector = ReturnType<typeof createCollector>

/** Lists merge as sorted sets; other values: the later one wins. */
function mergeAttributes(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
): Record<string, unknown> {
  const out = { ...a }
  for (const [k, v] of Object.entries(b)) {
    const old = out[k]
    if (Array.isArray(old) && Array.isArray(v)) {
      const seen = new Map<string, unknown>()
      for (const x of [...old, ...v]) seen.set(JSON.stringify(x), x)
      out[k] = [...seen.entries()]
        .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
        .map(([, x]) => x)
    } else out[k] = v
  }
  return out
}

/** The later of ISO instants (undefined ones ignored). */
export function latest(...dates: (string | undefined)[]): string | undefined {
  let best: string | undefined
  let bestMs = -Infinity
  for (const d of dates) {
    if (d === undefined) continue
    const ms = Date.parse(d)
    if (!Number.isNaN(ms) && ms > bestMs) {
      best = new Date(ms).toISOString()
      bestMs = ms
    }
  }
  return best
}

/** An ISO instant from a provider's date text, or undefined for `N/A`, `no_information` and junk. */
export function isoDate(v: unknown): string | undefined {
  if (typeof v !== 'string' || v === '') return undefined
  const ms = Date.parse(v)
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString()
}

/** An owner from tags or labels: the first of the usual keys that has a value. */
export const ownerKeys = ['owner', 'Owner', 'team', 'Team', 'tessera.dev/owner', 'owner-email']
