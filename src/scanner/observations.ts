import type { Observation } from '../inventory/observation.js'
import type { Finding } from './types.js'

export interface ObservationOptions {
  /** Connector instance, default `scanner`. */
  source?: string
  /** Repository of the scan (a redacted URL or a path), for git locations. */
  repository?: string
}

/** The credential ref of a secret: its keyed fingerprint. */
export function credentialRef(fingerprint: string): string {
  return `fp:${fingerprint}`
}

/**
 * Findings as inventory observations: one credential per secret (fingerprint and preview only),
 * one location per place, and the author of the commit that introduced it as a person with a
 * `created` edge to the credential. Deterministic, so ingesting the same scan twice changes
 * nothing.
 */
export function findingsToObservations(
  findings: readonly Finding[],
  options: ObservationOptions = {},
): Observation[] {
  const source = options.source ?? 'scanner'
  const out: Observation[] = []
  const credentials = new Set<string>()
  const locations = new Set<string>()
  const owners = new Set<string>()
  const edges = new Set<string>()
  // The earliest commit that holds a secret introduced it.
  const introduced = new Map<string, Finding>()
  for (const f of findings) {
    if (!f.commit || !f.date) continue
    const prev = introduced.get(f.fingerprint)
    if (!prev || (prev.date ?? '') > f.date) introduced.set(f.fingerprint, f)
  }
  for (const f of findings) {
    const ref = credentialRef(f.fingerprint)
    if (!credentials.has(ref)) {
      credentials.add(ref)
      out.push({
        type: 'credential',
        source,
        ref,
        credentialType: f.credentialType,
        fingerprint: f.fingerprint,
        preview: f.preview,
        attributes: { rule: f.rule, title: f.title, severity: f.severity },
      })
    }
    const locKey = `${ref}|${f.file}|${f.line}|${f.commit ?? ''}`
    if (!locations.has(locKey)) {
      locations.add(locKey)
      out.push({
        type: 'location',
        source,
        credential: ref,
        locationType: options.repository !== undefined || f.commit ? 'git' : 'file',
        ...(options.repository !== undefined ? { repository: options.repository } : {}),
        file: f.file,
        line: f.line,
        ...(f.commit ? { commit: f.commit } : {}),
      })
    }
  }
  for (const [fingerprint, f] of introduced) {
    const person = (f.email ?? '').toLowerCase()
    if (person === '') continue
    if (!owners.has(person)) {
      owners.add(person)
      out.push({
        type: 'owner',
        source,
        ref: person,
        ownerType: 'person',
        name: f.author ?? person,
        email: person,
      })
    }
    const edgeKey = `${person}|${fingerprint}`
    if (!edges.has(edgeKey)) {
      edges.add(edgeKey)
      out.push({
        type: 'edge',
        source,
        edgeType: 'created',
        from: { type: 'owner', ref: person },
        to: { type: 'credential', ref: credentialRef(fingerprint) },
      })
    }
  }
  return out
}
