import { TesseraError } from '../errors.js'
import { createJoinTokenAttestor } from './join-token-attestor.js'
import type { NodeAttestor } from './node-attestor.js'
import {
  createOidcAttestor,
  type OidcAttestorDeps,
  type OidcIssuerConfig,
} from './oidc-attestor.js'
import { createX509PopAttestor, type X509PopConfig } from './x509pop-attestor.js'

/** Node attestor configuration: each built-in type validates its own slice. */
export interface NodeAttestorsConfig {
  /** On unless false. */
  join_token?: boolean
  oidc?: OidcIssuerConfig[]
  x509pop?: X509PopConfig
}

export const nodeAttestorTypes = ['join_token', 'oidc', 'x509pop'] as const
export type NodeAttestorType = (typeof nodeAttestorTypes)[number]

export interface NodeAttestorRegistry {
  readonly types: readonly string[]
  get(type: unknown): NodeAttestor
}

export function createNodeAttestorRegistry(
  attestors: readonly NodeAttestor[],
): NodeAttestorRegistry {
  const byType = new Map<string, NodeAttestor>()
  for (const a of attestors) {
    if (byType.has(a.type)) {
      throw new TesseraError('TSR_CONFIG', `node attestor ${a.type} is configured twice`)
    }
    byType.set(a.type, a)
  }
  return {
    types: [...byType.keys()],
    get(type) {
      const found = typeof type === 'string' ? byType.get(type) : undefined
      if (!found) {
        throw new TesseraError(
          'TSR_ATTESTATION_FAILED',
          `nodeattestor(${typeof type === 'string' ? type.slice(0, 40) : '?'}): not configured on this server (configured: ${[...byType.keys()].join(', ') || 'none'})`,
          { details: { reason: 'type' } },
        )
      }
      return found
    },
  }
}

/** Builds the configured built-ins (zero or more of each type). */
export function createNodeAttestors(
  config: NodeAttestorsConfig = {},
  deps: OidcAttestorDeps = {},
): NodeAttestor[] {
  const out: NodeAttestor[] = []
  if (config.join_token !== false) out.push(createJoinTokenAttestor())
  if (config.oidc && config.oidc.length > 0) out.push(createOidcAttestor(config.oidc, deps))
  if (config.x509pop) out.push(createX509PopAttestor(config.x509pop))
  return out
}
