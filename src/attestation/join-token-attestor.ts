import { TesseraError } from '../errors.js'
import { consumeJoinToken } from './join-tokens.js'
import type { AgentNodeAttestor, NodeAttestor } from './node-attestor.js'

const reasons = {
  malformed: 'the token is malformed',
  unknown: 'unknown token',
  used: 'the token was used already (join tokens are single use)',
  expired: 'the token expired',
} as const

/** `join_token`: a single-use token from `tessera token create`, consumed in the attestation. */
export function createJoinTokenAttestor(): NodeAttestor {
  return {
    type: 'join_token',
    async attest({ evidence, db, newAgentId, now }) {
      const token =
        typeof evidence === 'object' && evidence !== null
          ? (evidence as { token?: unknown }).token
          : undefined
      if (typeof token !== 'string') {
        throw new TesseraError(
          'TSR_ATTESTATION_FAILED',
          'nodeattestor(join_token): evidence must be {"token": "<join token>"}',
        )
      }
      const result = await consumeJoinToken(db, token, newAgentId, now)
      if (!result.ok) {
        throw new TesseraError(
          'TSR_ATTESTATION_FAILED',
          `nodeattestor(join_token): ${reasons[result.reason]}`,
          { details: { reason: result.reason } },
        )
      }
      // A join token names no node: the agent is a new one, identified by its fresh id.
      return { kind: 'attested', agentPath: newAgentId, selectors: [], canReattest: false }
    },
  }
}

export function joinTokenEvidence(token: string): AgentNodeAttestor {
  return { type: 'join_token', canReattest: false, evidence: async () => ({ token }) }
}
