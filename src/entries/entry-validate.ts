import { TesseraError } from '../errors.js'
import type { Selector } from '../spiffe/types.js'
import { isTrustDomainName, parseSpiffeId, parseWorkloadSpiffeId } from './spiffe-id.js'

/** Limits on entry fields: generous for real use, small enough that one entry cannot be a DoS. */
export const entryLimits = {
  selectors: 32,
  selectorValueBytes: 1024,
  dnsNames: 64,
  federatesWith: 64,
  hintBytes: 1024,
  ownerLength: 320,
  /** 30 days. */
  maxX509TtlSeconds: 30 * 86_400,
  /** 1 day. */
  maxJwtTtlSeconds: 86_400,
} as const

const selectorTypePattern = /^[a-z0-9_-]{1,64}$/
// Labels of letters, digits and hyphens; a leading `*.` wildcard is allowed.
const dnsNamePattern =
  /^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
// eslint-disable-next-line no-control-regex
const controlChars = /[\u0000-\u001f\u007f]/

function invalid(field: string, message: string): TesseraError {
  return new TesseraError('TSR_VALIDATION', `${field}: ${message}`, { details: { field } })
}

/** Parses `type:value` (the value may hold more colons: `unix:uid:1000`). */
export function parseSelector(text: string, field = 'selector'): Selector {
  if (typeof text !== 'string') throw invalid(field, 'must be a string TYPE:VALUE')
  const colon = text.indexOf(':')
  if (colon <= 0) {
    throw invalid(field, `${JSON.stringify(text)} must be TYPE:VALUE, e.g. unix:uid:1000`)
  }
  return checkSelector({ type: text.slice(0, colon), value: text.slice(colon + 1) }, field)
}

export function formatSelector(s: Selector): string {
  return `${s.type}:${s.value}`
}

export function checkSelector(s: Selector, field = 'selector'): Selector {
  if (typeof s !== 'object' || s === null) throw invalid(field, 'must be {type, value}')
  if (typeof s.type !== 'string' || !selectorTypePattern.test(s.type)) {
    throw invalid(field, 'type must be 1-64 characters of a-z 0-9 _ -')
  }
  if (typeof s.value !== 'string' || s.value.length === 0) {
    throw invalid(field, `selector ${s.type} needs a value`)
  }
  if (Buffer.byteLength(s.value, 'utf8') > entryLimits.selectorValueBytes) {
    throw invalid(field, `value is longer than ${entryLimits.selectorValueBytes} bytes`)
  }
  if (controlChars.test(s.value)) throw invalid(field, 'value holds a control character')
  return { type: s.type, value: s.value }
}

/** Checked, de-duplicated and sorted, so equal sets compare equal. */
export function normaliseSelectors(selectors: unknown, field = 'selectors'): Selector[] {
  if (!Array.isArray(selectors) || selectors.length === 0) {
    throw invalid(field, 'at least one selector is required, e.g. unix:uid:1000')
  }
  if (selectors.length > entryLimits.selectors) {
    throw invalid(field, `at most ${entryLimits.selectors} selectors`)
  }
  const byKey = new Map<string, Selector>()
  for (const s of selectors) {
    const checked = typeof s === 'string' ? parseSelector(s, field) : checkSelector(s as Selector)
    byKey.set(formatSelector(checked), checked)
  }
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, s]) => s)
}

export function checkOwner(owner: unknown): string {
  if (owner === undefined || owner === null || (typeof owner === 'string' && !owner.trim())) {
    throw invalid('owner', 'an owner is required (a person or team responsible for this identity)')
  }
  if (typeof owner !== 'string') throw invalid('owner', 'must be a string')
  const trimmed = owner.trim()
  if (trimmed.length > entryLimits.ownerLength || controlChars.test(trimmed)) {
    throw invalid('owner', `must be at most ${entryLimits.ownerLength} printable characters`)
  }
  return trimmed
}

export function checkTtl(value: unknown, field: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw invalid(field, `must be a whole number of seconds from 1 to ${max}`)
  }
  return value
}

export function checkDnsNames(value: unknown): string[] {
  if (!Array.isArray(value)) throw invalid('dnsNames', 'must be a list')
  if (value.length > entryLimits.dnsNames) {
    throw invalid('dnsNames', `at most ${entryLimits.dnsNames} names`)
  }
  const out = new Set<string>()
  for (const name of value) {
    if (typeof name !== 'string') throw invalid('dnsNames', 'names must be strings')
    const lower = name.toLowerCase()
    if (lower.length > 253 || !dnsNamePattern.test(lower)) {
      throw invalid('dnsNames', `${JSON.stringify(name)} is not a DNS name`)
    }
    out.add(lower)
  }
  return [...out]
}

export function checkFederatesWith(value: unknown, ownTrustDomain?: string): string[] {
  if (!Array.isArray(value)) throw invalid('federatesWith', 'must be a list')
  if (value.length > entryLimits.federatesWith) {
    throw invalid('federatesWith', `at most ${entryLimits.federatesWith} trust domains`)
  }
  const out = new Set<string>()
  for (const raw of value) {
    if (typeof raw !== 'string') throw invalid('federatesWith', 'trust domains must be strings')
    // Accept `example.org` or `spiffe://example.org`.
    const td = raw.startsWith('spiffe://') ? parseSpiffeId(raw, 'federatesWith').trustDomain : raw
    if (!isTrustDomainName(td)) {
      throw invalid('federatesWith', `${JSON.stringify(raw)} is not a trust domain name`)
    }
    if (td === ownTrustDomain) {
      throw invalid('federatesWith', `${td} is this server's own trust domain`)
    }
    out.add(td)
  }
  return [...out].sort()
}

export function checkHint(value: unknown): string {
  if (typeof value !== 'string') throw invalid('hint', 'must be a string')
  if (Buffer.byteLength(value, 'utf8') > entryLimits.hintBytes || controlChars.test(value)) {
    throw invalid('hint', `must be at most ${entryLimits.hintBytes} bytes of printable text`)
  }
  return value
}

/** SPIFFE ID of the entry: a path is required, and the trust domain must be ours when known. */
export function checkEntrySpiffeId(value: unknown, field: string, trustDomain?: string): string {
  const parsed = parseWorkloadSpiffeId(value, field)
  if (trustDomain !== undefined && parsed.trustDomain !== trustDomain) {
    throw invalid(field, `trust domain ${parsed.trustDomain} is not this server's (${trustDomain})`)
  }
  return value as string
}
