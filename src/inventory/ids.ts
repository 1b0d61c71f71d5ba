import { hash } from 'node:crypto'
import { canonicalJson } from '../runtime/canonical-json.js'
import type { EdgeType } from '../store/schema.js'
import type { LocationObservation, NodeType } from './observation.js'

/** The kinds of fact whose ids are derived: the node types plus grants and edges. */
export type FactType = NodeType | 'grant' | 'edge'

/**
 * The stable id of a fact: a UUID (version 8, RFC 9562 §5.8) made from sha256(type NUL key). Every
 * store, every run and every process derives the same id from the same natural key, so references
 * between facts resolve without lookups.
 */
export function entityId(type: FactType, key: string): string {
  const h = hash('sha256', type + '\0' + key, 'buffer')
  h[6] = (h[6]! & 0x0f) | 0x80
  h[8] = (h[8]! & 0x3f) | 0x80
  const x = h.toString('hex', 0, 16)
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function isUuid(value: string): boolean {
  return uuidPattern.test(value)
}

/**
 * A location has no ref of its own; its natural key (credential ref, location type, repository, file,
 * line, commit, host, path) serialised as a JSON array is its ref. Edges to a location use this ref.
 */
export function locationRef(
  loc: Pick<
    LocationObservation,
    'credential' | 'locationType' | 'repository' | 'file' | 'line' | 'commit' | 'host' | 'path'
  >,
): string {
  return JSON.stringify([
    loc.credential,
    loc.locationType,
    loc.repository ?? null,
    loc.file ?? null,
    loc.line ?? null,
    loc.commit ?? null,
    loc.host ?? null,
    loc.path ?? null,
  ])
}

/** A grant's ref: identity ref, resource ref and the policy it comes through, as a JSON array. */
export function grantRef(
  identity: string,
  resource: string,
  via: string | undefined | null,
): string {
  return JSON.stringify([identity, resource, via ?? null])
}

/** An edge's ref: its type and both ends, as a JSON array. */
export function edgeRef(
  edgeType: EdgeType,
  from: { type: NodeType; ref: string },
  to: { type: NodeType; ref: string },
): string {
  return JSON.stringify([edgeType, from.type, from.ref, to.type, to.ref])
}

export { canonicalJson }

/** sha256 of a fact's descriptive content: its source, column values and attributes. */
export function contentHash(
  source: string,
  columns: readonly unknown[],
  attributes: Record<string, unknown>,
): string {
  const attrs = Object.keys(attributes).length === 0 ? '{}' : canonicalJson(attributes)
  return hash('sha256', JSON.stringify([source, columns]) + '\n' + attrs, 'base64url')
}
