import type { Selector } from '../spiffe/types.js'
import type { WorkloadPeer } from '../workload-api/backend.js'

/**
 * The `WorkloadAttestor` seam: from the caller's peer credentials to selectors. The agent runs every
 * configured attestor and unions their selectors; an attestor that does not apply (e.g. `k8s` for a
 * process outside any pod) returns no selectors; one that cannot decide throws.
 */
export interface WorkloadAttestor {
  readonly name: string
  attest(peer: WorkloadPeer): Promise<Selector[]>
}

/** Runs the attestors in order and unions their selectors (deduplicated). */
export async function attestWith(
  attestors: readonly WorkloadAttestor[],
  peer: WorkloadPeer,
): Promise<Selector[]> {
  const seen = new Set<string>()
  const out: Selector[] = []
  for (const a of attestors) {
    for (const s of await a.attest(peer)) {
      const k = `${s.type}:${s.value}`
      if (!seen.has(k)) {
        seen.add(k)
        out.push(s)
      }
    }
  }
  return out
}
