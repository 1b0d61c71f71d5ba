import type { StoredAuditEvent } from '../audit/event-sink.js'
import {
  countOf,
  hourOfWeek,
  hourShare,
  type Baseline,
  type Dimension,
  type Features,
} from './baseline.js'

/** What the detector needs from an audit event. */
export interface DetectionEvent {
  identity: string
  action: string
  resource?: string
  /** Milliseconds since the epoch. */
  at: number
  /** The node (agent, host) the request came through. */
  node?: string
  /** The network address it came from. */
  address?: string
  /** The peer group (same workload); derived from the identity when absent. */
  peerGroup?: string
  seq?: number
}

export interface DetectionConfig {
  /** An identity's own baseline is trusted after this many events… */
  learningEvents: number
  /** …spread over at least this long (ms). Before that, its peers' baseline is the prior. */
  learningPeriodMs: number
  /** Events scoring at or above this raise a finding. */
  alertThreshold: number
  /** How much a flagged event teaches the baseline (1 = fully), so an attack is not learnt at once. */
  flaggedWeight: number
  /** Hour-of-week rarity is judged only with this much history. */
  minHourHistory: number
  /** An hour holding less than this share of past activity (with its neighbours) is rare. */
  rareHourShare: number
  /** A minute with fewer events than this is never a burst. */
  burstMin: number
  /** A burst is above mean + burstSigma × sd and above burstFactor × mean of active minutes. */
  burstSigma: number
  burstFactor: number
  /** Active minutes of history needed before rate is judged. */
  minRateMinutes: number
}

export const defaultDetectionConfig: DetectionConfig = {
  learningEvents: 200,
  learningPeriodMs: 24 * 3_600_000,
  alertThreshold: 0.6,
  flaggedWeight: 0.34,
  minHourHistory: 200,
  rareHourShare: 0.002,
  burstMin: 30,
  burstSigma: 6,
  burstFactor: 4,
  minRateMinutes: 30,
}

export type ReasonFeature =
  'action' | 'resource' | 'pair' | 'spread' | 'address' | 'node' | 'hour' | 'rate'

export interface Reason {
  feature: ReasonFeature
  /** This reason's contribution, 0..1; reasons combine as 1 − Π(1 − weight). */
  weight: number
  text: string
}

export interface ScoreResult {
  score: number
  reasons: Reason[]
  /** Neither the identity nor its peers have a mature baseline yet: no judgement. */
  learning: boolean
  /** Whose baseline was the reference: the identity's own, or its peers' (cold start). */
  reference: 'identity' | 'peers' | 'none'
  /** The event touched an action or resource the reference never saw. */
  novel: boolean
}

const days = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']

/**
 * The peer group of an identity when the event names none: a SPIFFE ID without its last path
 * segment (`spiffe://td/ns/prod/web/web-3` → `spiffe://td/ns/prod/web`), so replicas and
 * instances of one workload share a prior. Other refs have no implicit peers.
 */
export function defaultPeerOf(identity: string): string | undefined {
  if (!identity.startsWith('spiffe://')) return undefined
  const cut = identity.lastIndexOf('/')
  if (cut <= 'spiffe://'.length) return undefined
  const prefix = identity.slice(0, cut)
  // spiffe://td alone is the whole trust domain, not a workload.
  return prefix.indexOf('/', 'spiffe://'.length) === -1 ? undefined : prefix
}

/** The audit events the detector scores: acts of an identity (decisions, usage, exchanges…). */
export function detectionEventOf(e: StoredAuditEvent): DetectionEvent | undefined {
  if (!e.subject || !e.action) return undefined
  if (e.type.startsWith('detection.') || e.type.startsWith('responder.')) return undefined
  const d = e.data ?? {}
  const s = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined)
  const node = s(d.node) ?? s(d.sourceNode) ?? s(d.agentId)
  const address = s(d.sourceAddress) ?? s(d.address) ?? s(d.ip)
  const peerGroup = s(d.peerGroup)
  return {
    identity: e.subject,
    action: e.action,
    at: e.at.getTime(),
    seq: e.seq,
    ...(e.resource ? { resource: e.resource } : {}),
    ...(node ? { node } : {}),
    ...(address ? { address } : {}),
    ...(peerGroup ? { peerGroup } : {}),
  }
}

/** The values of an event along the baseline's dimensions. */
export function featuresOf(e: DetectionEvent): Features {
  const f: Features = { action: e.action }
  if (e.resource !== undefined) {
    f.resource = e.resource
    f.pair = e.action + '\u001f' + e.resource
  }
  if (e.node !== undefined) f.node = e.node
  if (e.address !== undefined) {
    f.address = e.address
    const nets = cachedNetworks(e.address)
    if (nets) {
      f.net16 = nets[0]
      f.net24 = nets[1]
    }
  }
  return f
}

/**
 * Coarse networks of an address, as a stand-in for its ASN: IPv4 /16 and /24, IPv6 /32 and /48.
 * A new /16 is a new provider more often than not; a new host in a known /24 is routine.
 */
export function networksOf(address: string): [string, string] | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address)
  if (v4) return [`${v4[1]}.${v4[2]}.0.0/16`, `${v4[1]}.${v4[2]}.${v4[3]}.0/24`]
  if (address.includes(':')) {
    const groups = address.toLowerCase().split(':')
    if (groups.length < 3) return undefined
    return [`${groups[0]}:${groups[1]}::/32`, `${groups[0]}:${groups[1]}:${groups[2]}::/48`]
  }
  return undefined
}

function othersDid(
  own: Baseline | undefined,
  peers: Baseline | undefined,
  ref: Baseline,
  d: Dimension,
  v: string | undefined,
): boolean {
  if (peers === undefined || v === undefined) return false
  const mine = peers === ref || own === undefined ? 0 : countOf(own, d, v)
  return countOf(peers, d, v) - mine >= 1
}

const networkCache = new Map<string, [string, string] | undefined>()

function cachedNetworks(address: string): [string, string] | undefined {
  let n = networkCache.get(address)
  if (n === undefined && !networkCache.has(address)) {
    n = networksOf(address)
    if (networkCache.size >= 10_000) networkCache.clear()
    networkCache.set(address, n)
  }
  return n
}

export function isMature(b: Baseline | undefined, cfg: DetectionConfig): boolean {
  return (
    b !== undefined &&
    b.events >= cfg.learningEvents &&
    b.lastSeen - b.firstSeen >= cfg.learningPeriodMs
  )
}

/**
 * Scores one event against the identity's baseline (or, during its learning period, its peers'),
 * before the event is learnt. Cheap: a handful of map look-ups and no allocation beyond reasons.
 */
export function scoreEvent(
  own: Baseline | undefined,
  peers: Baseline | undefined,
  e: DetectionEvent,
  f: Features,
  cfg: DetectionConfig,
): ScoreResult {
  const ownMature = isMature(own, cfg)
  const ref = ownMature ? own : isMature(peers, cfg) ? peers : undefined
  if (ref === undefined)
    return { score: 0, reasons: [], learning: true, reference: 'none', novel: false }
  const reference = ref === own ? 'identity' : 'peers'
  // What the other members of the peer group have done (the identity's own share removed).
  const peersDo = (d: Dimension) => othersDid(own, peers, ref, d, f[d])
  const known = (d: Dimension) => ref.saturated.has(d) || countOf(ref, d, f[d]) >= 1
  const who = reference === 'identity' ? 'never' : 'is new, and its peers never'
  const reasons: Reason[] = []
  const on = e.resource !== undefined ? ` on ${e.resource}` : ''

  if (!known('action')) {
    const peer = reference === 'identity' && (peersDo('pair') || peersDo('action'))
    reasons.push({
      feature: 'action',
      weight: peer ? 0.3 : 0.75,
      text:
        reference === 'identity'
          ? `never called ${e.action}${on}; peers ${peer ? 'do' : 'never do'}`
          : `is new, and its peers never call ${e.action}${on}`,
    })
  } else if (f.resource !== undefined && !known('resource')) {
    const peer = reference === 'identity' && peersDo('resource')
    reasons.push({
      feature: 'resource',
      weight: peer ? 0.15 : 0.5,
      text:
        reference === 'identity'
          ? `never touched ${e.resource}; peers ${peer ? 'do' : 'never do'}`
          : `is new, and its peers never touch ${e.resource}`,
    })
  } else if (f.pair !== undefined && !known('pair')) {
    const peer = reference === 'identity' && peersDo('pair')
    reasons.push({
      feature: 'pair',
      weight: peer ? 0.1 : 0.3,
      text: `${who === 'never' ? 'never' : who} called ${e.action}${on}${
        reference === 'identity' ? `; peers ${peer ? 'do' : 'never do'}` : ''
      }`,
    })
  }

  // Many first-time resources in one hour is how exfiltration and enumeration look.
  const novel = reasons.length > 0 && reasons[0]!.feature !== 'pair'
  if (novel && own !== undefined) {
    const earlier = Math.floor(e.at / 3_600_000) === own.epochHour ? own.noveltyCount : 0
    if (earlier >= 2) {
      reasons.push({
        feature: 'spread',
        weight: 0.5,
        text: `${earlier + 1} first-time actions or resources within the hour`,
      })
    }
  }

  if (
    f.address !== undefined &&
    !ref.saturated.has('address') &&
    countOf(ref, 'address', f.address) < 1
  ) {
    const newNet16 = f.net16 !== undefined && countOf(ref, 'net16', f.net16) < 1
    const newNet24 = f.net24 !== undefined && countOf(ref, 'net24', f.net24) < 1
    const peer = reference === 'identity' && peersDo('net24')
    const base = newNet16 ? 0.65 : newNet24 ? 0.25 : 0.05
    reasons.push({
      feature: 'address',
      weight: peer ? base * 0.3 : base,
      text: `first request from ${f.address}${
        newNet16
          ? ` (a network never seen: ${f.net16})`
          : newNet24
            ? ` (new subnet ${f.net24})`
            : ''
      }${peer ? '; peers use that subnet' : ''}`,
    })
  }

  if (f.node !== undefined && !known('node')) {
    const peer = reference === 'identity' && peersDo('node')
    reasons.push({
      feature: 'node',
      weight: peer ? 0.05 : 0.3,
      text: `first time on node ${f.node}${peer ? '; peers run there' : '; peers never do'}`,
    })
  }

  if (ref.hourTotal >= cfg.minHourHistory) {
    const share = hourShare(ref, e.at)
    if (share < cfg.rareHourShare) {
      const h = hourOfWeek(e.at)
      reasons.push({
        feature: 'hour',
        weight: 0.4,
        text: `active ${days[Math.floor(h / 24)]} ${String(h % 24).padStart(2, '0')}:00 UTC, when ${
          reference === 'identity' ? 'it' : 'its peers'
        } almost never ${reference === 'identity' ? 'is' : 'are'} (${(share * 100).toFixed(2)}% of activity)`,
      })
    }
  }

  // Rate is the identity's own: a peer group's combined rate says nothing about one member.
  if (own !== undefined && own.activeMinutes >= cfg.minRateMinutes) {
    const current = Math.floor(e.at / 60_000) === own.minute ? own.minuteCount + 1 : 1
    const sd = Math.sqrt(own.rateVar)
    const limit = Math.max(
      cfg.burstMin,
      own.rateMean + cfg.burstSigma * sd,
      cfg.burstFactor * own.rateMean,
    )
    if (current > limit) {
      reasons.push({
        feature: 'rate',
        weight: 0.5,
        text: `${current} events this minute; usually about ${own.rateMean.toFixed(1)} in an active minute`,
      })
    }
  }

  let keep = 1
  for (const r of reasons) keep *= 1 - r.weight
  return { score: 1 - keep, reasons, learning: false, reference, novel }
}
