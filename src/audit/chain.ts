import { createHash } from 'node:crypto'
import { TesseraError } from '../errors.js'
import { canonicalJson } from '../runtime/canonical-json.js'
import type { AuditEventInput, StoredAuditEvent } from './event-sink.js'

/**
 * The hash chain. Each event's hash is SHA-256 over the previous event's hash and a canonical
 * encoding of the event's own fields (seq included), so editing, removing or moving any row breaks
 * the chain at that row. The first event links to `genesisHash`.
 */
export const genesisHash = '0'.repeat(64)

/** An event in the chain, as stored in the `event` table. */
export interface ChainedEvent extends StoredAuditEvent {
  prevHash: string
  hash: string
}

/** An event checked and normalised for sealing: text columns clean, `data` canonical JSON. */
export interface PreparedEvent {
  at: Date
  type: string
  actor: string | null
  subject: string | null
  resource: string | null
  action: string | null
  decision: string | null
  requestId: string | null
  /** Canonical JSON of the event's data (an object); what is stored and hashed. */
  dataJson: string
}

const typePattern = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/
const maxText = 4096
const maxData = 64 * 1024
// JSON text a PostgreSQL jsonb refuses: NUL, and lone UTF-16 surrogates escaped by JSON.stringify.
const jsonbHostile = /\\u0000|\\ud[89a-f][0-9a-f]{2}/i

/** Checks one event and puts it in the form that is stored and hashed. */
export function prepareEvent(event: AuditEventInput, now: () => Date): PreparedEvent {
  if (typeof event !== 'object' || event === null) {
    throw new TesseraError('TSR_VALIDATION', 'an audit event must be an object')
  }
  const type = event.type
  if (typeof type !== 'string' || type.length > 64 || !typePattern.test(type)) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `audit event type ${JSON.stringify(type)} must be dotted lower-case words (e.g. entry.created), at most 64 characters`,
    )
  }
  let at = now()
  if (event.at !== undefined) {
    if (!(event.at instanceof Date) || Number.isNaN(event.at.getTime())) {
      throw new TesseraError('TSR_VALIDATION', 'audit event `at` must be a valid Date')
    }
    at = event.at
  }
  let dataJson = '{}'
  if (event.data !== undefined && event.data !== null) {
    if (typeof event.data !== 'object' || Array.isArray(event.data)) {
      throw new TesseraError('TSR_VALIDATION', 'audit event `data` must be an object')
    }
    dataJson = canonicalJson(event.data)
    if (jsonbHostile.test(dataJson)) dataJson = canonicalJson(cleanJson(JSON.parse(dataJson)))
    if (dataJson.length > maxData) {
      throw new TesseraError('TSR_VALIDATION', `audit event data is larger than ${maxData} bytes`)
    }
  }
  return {
    at,
    type,
    actor: text(event.actor, 'actor'),
    subject: text(event.subject, 'subject'),
    resource: text(event.resource, 'resource'),
    action: text(event.action, 'action'),
    decision: text(event.decision, 'decision'),
    requestId: text(event.requestId, 'requestId'),
    dataJson,
  }
}

function text(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null
  if (typeof value !== 'string') {
    throw new TesseraError('TSR_VALIDATION', `audit event ${field} must be a string`)
  }
  if (value.length > maxText) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `audit event ${field} is longer than ${maxText} characters`,
    )
  }
  return cleanText(value)
}

/** PostgreSQL text holds neither NUL nor lone surrogates: replace them, so what is hashed is stored. */
function cleanText(value: string): string {
  let out = value
  if (out.includes('\0')) out = out.replaceAll('\0', '\ufffd')
  if (anySurrogate.test(out) && loneSurrogate.test(out)) {
    out = out.replace(loneSurrogates, '\ufffd')
  }
  return out
}

const anySurrogate = /[\ud800-\udfff]/
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const loneSurrogates = new RegExp(loneSurrogate.source, 'g')

function cleanJson(value: unknown): unknown {
  if (typeof value === 'string') return cleanText(value)
  if (Array.isArray(value)) return value.map(cleanJson)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[cleanText(k)] = cleanJson(v)
    return out
  }
  return value
}

/**
 * The canonical encoding that is hashed: a JSON array of the fields in a fixed order, absent
 * fields as null, `at` in ISO 8601 with milliseconds (what timestamptz gives back), data as
 * canonical JSON (keys sorted).
 */
export function encodeForHash(seq: number, e: PreparedEvent): string {
  return (
    '[' +
    seq +
    ',' +
    JSON.stringify(e.at.toISOString()) +
    ',' +
    JSON.stringify(e.type) +
    ',' +
    JSON.stringify(e.actor) +
    ',' +
    JSON.stringify(e.subject) +
    ',' +
    JSON.stringify(e.resource) +
    ',' +
    JSON.stringify(e.action) +
    ',' +
    JSON.stringify(e.decision) +
    ',' +
    JSON.stringify(e.requestId) +
    ',' +
    e.dataJson +
    ']'
  )
}

export function chainHash(prevHash: string, seq: number, e: PreparedEvent): string {
  return createHash('sha256')
    .update(prevHash)
    .update('\n')
    .update(encodeForHash(seq, e))
    .digest('hex')
}

/** The prepared form of an event read back from the store (for verification). */
export function preparedFromStored(e: StoredAuditEvent): PreparedEvent {
  return {
    at: e.at,
    type: e.type,
    actor: e.actor ?? null,
    subject: e.subject ?? null,
    resource: e.resource ?? null,
    action: e.action ?? null,
    decision: e.decision ?? null,
    requestId: e.requestId ?? null,
    dataJson: canonicalJson(e.data ?? {}),
  }
}

/** A row of the `event` table as Kysely returns it. */
export interface EventRow {
  seq: number | string
  at: Date | string
  event_type: string
  actor: string | null
  subject: string | null
  resource: string | null
  action: string | null
  decision: string | null
  request_id: string | null
  data: unknown
  prev_hash: string
  hash: string
}

export function rowToEvent(row: EventRow): ChainedEvent {
  const data =
    typeof row.data === 'string'
      ? (JSON.parse(row.data) as Record<string, unknown>)
      : ((row.data ?? {}) as Record<string, unknown>)
  return {
    seq: Number(row.seq),
    at: row.at instanceof Date ? row.at : new Date(row.at),
    type: row.event_type,
    ...(row.actor === null ? {} : { actor: row.actor }),
    ...(row.subject === null ? {} : { subject: row.subject }),
    ...(row.resource === null ? {} : { resource: row.resource }),
    ...(row.action === null ? {} : { action: row.action }),
    ...(row.decision === null ? {} : { decision: row.decision }),
    ...(row.request_id === null ? {} : { requestId: row.request_id }),
    data,
    prevHash: row.prev_hash,
    hash: row.hash,
  }
}

/** The JSON form of an event (API, JSON Lines export). */
export interface EventJson {
  seq: number
  at: string
  type: string
  actor: string | null
  subject: string | null
  resource: string | null
  action: string | null
  decision: string | null
  requestId: string | null
  data: Record<string, unknown>
  prevHash: string
  hash: string
}

export function eventJson(e: ChainedEvent): EventJson {
  return {
    seq: e.seq,
    at: e.at.toISOString(),
    type: e.type,
    actor: e.actor ?? null,
    subject: e.subject ?? null,
    resource: e.resource ?? null,
    action: e.action ?? null,
    decision: e.decision ?? null,
    requestId: e.requestId ?? null,
    data: e.data ?? {},
    prevHash: e.prevHash,
    hash: e.hash,
  }
}
