import type { Kysely } from 'kysely'
import type { Selector } from '../spiffe/types.js'
import type { Database } from '../store/schema.js'

/**
 * The node attestation seam (DESIGN §3). The server side checks the evidence an agent sends and
 * says who the node is; the agent side produces that evidence. One attestation may take one
 * challenge round (x509pop): the server answers `challenge`, the agent calls `answer` and sends the
 * evidence again with its response. Challenges are stateless (MAC'd by the server), so any replica
 * can finish an attestation another one started.
 */

export interface AttestationInput {
  /** Type-specific evidence, untrusted: every attestor validates its shape. */
  evidence: unknown
  /** The agent's answer to this attestor's challenge, on the second round. */
  challengeResponse?: unknown
  /** SPKI DER of the key the agent SVID will certify; challenges bind to it. */
  publicKeyDer: Buffer
  /** A fresh id for the agent, for attestors whose nodes have no stable identity (join_token). */
  newAgentId: string
  /** The attestation transaction: what the attestor consumes commits with the agent row. */
  db: Kysely<Database>
  now: Date
}

export type AttestationOutcome =
  | { kind: 'challenge'; challenge: unknown }
  | {
      kind: 'attested'
      /** Path segments after `/spire/agent/<type>/`, valid SPIFFE path characters only. */
      agentPath: string
      selectors: Selector[]
      /** Whether the same node can attest again as the same agent (join_token: no). */
      canReattest: boolean
    }

/** Server side. Failures throw TSR_ATTESTATION_FAILED with a `nodeattestor(<type>): …` message. */
export interface NodeAttestor {
  readonly type: string
  attest(input: AttestationInput): Promise<AttestationOutcome>
}

/** Agent side: what the agent sends for its attestor type. */
export interface AgentNodeAttestor {
  readonly type: string
  /** A spent join token cannot attest again; OIDC and x509pop can, with fresh evidence. */
  readonly canReattest: boolean
  evidence(): Promise<unknown>
  answer?(challenge: unknown, publicKeyDer: Buffer): Promise<unknown>
}
