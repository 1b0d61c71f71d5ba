import type { Observation } from '../inventory/observation.js'
import type { EntryDelta, RegistrationEntry } from '../spiffe/types.js'
import { formatSelector } from '../entries/entry-validate.js'
import type { AgentView } from './agents.js'

/**
 * The SPIFFE control plane as inventory observations: every registration entry is a `workload`
 * identity (ref = its SPIFFE ID, owned by the entry's owner), every agent a `workload` identity with
 * `role: agent`, and every agent SVID a certificate credential of its agent. So "which identity held
 * SPIFFE ID X at time T, on which node" is answered by the inventory's history.
 */
export const entrySource = 'tessera:entries'
export const agentSource = 'tessera:agents'

const name = (spiffeId: string) =>
  spiffeId.length <= 512 ? spiffeId : spiffeId.slice(0, 511) + '…'

export function entryObservation(
  delta: EntryDelta,
  deleted?: RegistrationEntry,
): Observation | undefined {
  const entry = delta.op === 'upsert' ? delta.entry : deleted
  if (!entry) return undefined
  return {
    type: 'identity',
    source: entrySource,
    ref: entry.spiffeId,
    kind: 'workload',
    name: name(entry.spiffeId),
    owner: entry.owner,
    createdBy: entry.parentId,
    state: delta.op === 'delete' ? 'deleted' : 'active',
    attributes: {
      role: 'workload',
      entryId: entry.id,
      revision: delta.revision,
      parentId: entry.parentId,
      selectors: entry.selectors.map(formatSelector),
      ...(entry.expiresAt ? { entryExpiresAt: entry.expiresAt.toISOString() } : {}),
    },
  }
}

export function agentObservations(
  agent: AgentView,
  svid?: { serial: string; notBefore: Date; notAfter: Date; trustDomain: string },
): Observation[] {
  const out: Observation[] = [
    {
      type: 'identity',
      source: agentSource,
      ref: agent.spiffeId,
      kind: 'workload',
      name: name(agent.spiffeId),
      state: agent.banned ? 'disabled' : 'active',
      createdAt: agent.createdAt,
      attributes: {
        role: 'agent',
        agentId: agent.id,
        attestationType: agent.attestationType,
        selectors: agent.selectors.map(formatSelector),
      },
    },
  ]
  if (svid) {
    out.push({
      type: 'credential',
      source: agentSource,
      ref: `x509-svid:${svid.trustDomain}:${svid.serial}`,
      identity: agent.spiffeId,
      credentialType: 'certificate',
      issuer: `spiffe://${svid.trustDomain}`,
      createdAt: svid.notBefore.toISOString(),
      expiresAt: svid.notAfter.toISOString(),
      state: 'active',
    })
  }
  return out
}
