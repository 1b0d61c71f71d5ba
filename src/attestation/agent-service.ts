import { createPublicKey, randomUUID, X509Certificate, type KeyObject } from 'node:crypto'
import { compactVerify, decodeProtectedHeader } from 'jose'
import type { CertificateAuthority, JwtSvidResult, X509SvidResult } from '../ca/ca-types.js'
import type { EntryIndex } from '../entries/entry-index.js'
import { agentSpiffeId, parseSpiffeId } from '../entries/spiffe-id.js'
import { TesseraError } from '../errors.js'
import type { Clock } from '../runtime/clock.js'
import type { RegistrationEntry, Selector, TrustBundle } from '../spiffe/types.js'
import type { Store } from '../store/store.js'
import { agentView, parseSelectors, type AgentView } from './agents.js'
import type { NodeAttestorRegistry } from './node-attestor-registry.js'
import { parseCertChain, uriSans, verifyChain } from './x509-chain.js'

/** The `typ` of an agent proof JWS. */
export const agentProofType = 'tessera-agent+jwt'

export interface AgentServiceDeps {
  store: Pick<Store, 'db' | 'transaction'>
  clock: Clock
  ca: CertificateAuthority
  attestors: NodeAttestorRegistry
  index: EntryIndex
  /** Agent SVID lifetime (default 3600 s, SPIRE's default). */
  agentSvidTtlSeconds?: number
  /** How old (or early) a proof's `iat` may be (default 60 s). */
  proofMaxAgeSeconds?: number
  /** Largest X509-SVID batch (default 500). */
  maxBatch?: number
  /** After an attestation or a renewal (the inventory hook). Errors are ignored. */
  onAgent?: (agent: AgentView, svid: X509SvidResult) => void
}

export interface AuthenticatedAgent {
  id: string
  spiffeId: string
  selectors: Selector[]
  serial: string
  svidNotAfter: Date
}

export interface AttestRequest {
  attestationType: unknown
  evidence: unknown
  challengeResponse?: unknown
  /** base64 SPKI DER of the key the agent SVID certifies. */
  publicKey: string
}

export type AttestResponse =
  { challenge: unknown } | { agent: AgentView; svid: X509SvidResult; reattestable: boolean }

export interface AgentSync {
  revision: number
  /** Every entry id the agent may serve now: anything else it caches is gone. */
  ids: string[]
  /** Entries changed after `since`. */
  upserts: RegistrationEntry[]
}

export interface AgentService {
  attest(request: AttestRequest): Promise<AttestResponse>
  /** Checks a proof for `method` + `pathAndQuery`; throws TSR_AGENT_UNAUTHENTICATED/BANNED. */
  authenticate(
    proof: string | undefined,
    method: string,
    pathAndQuery: string,
  ): Promise<AuthenticatedAgent>
  renew(agent: AuthenticatedAgent, publicKey: string): Promise<X509SvidResult>
  sync(agent: AuthenticatedAgent, since: number): AgentSync
  signX509Svids(
    agent: AuthenticatedAgent,
    requests: readonly { entryId: string; publicKey: string }[],
  ): Promise<X509SvidResult[]>
  mintJwtSvid(
    agent: AuthenticatedAgent,
    request: { entryId: string; audience: readonly string[] },
  ): Promise<JwtSvidResult>
  bundle(): Promise<TrustBundle>
  /** Whether the agent is banned now (the store's answer). */
  isBanned(agentId: string): Promise<boolean>
}

/** Parses a base64 SPKI DER ECDSA P-256 public key (the only kind SVIDs are issued for). */
export function parsePublicKey(b64: unknown, field = 'publicKey'): KeyObject {
  const bad = (why: string) =>
    new TesseraError('TSR_VALIDATION', `${field}: ${why}`, { details: { field } })
  if (typeof b64 !== 'string' || b64.length === 0 || b64.length > 2048) {
    throw bad('must be a base64 SPKI DER public key')
  }
  let key: KeyObject
  try {
    key = createPublicKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'spki' })
  } catch {
    throw bad('is not an SPKI DER public key')
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw bad('must be an ECDSA P-256 key')
  }
  return key
}

function normaliseSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '')
}

function unauthenticated(why: string): TesseraError {
  return new TesseraError('TSR_AGENT_UNAUTHENTICATED', `agent proof: ${why}`)
}

export function createAgentService(deps: AgentServiceDeps): AgentService {
  const { store, clock, ca, attestors, index } = deps
  const ttl = deps.agentSvidTtlSeconds ?? 3600
  const maxAgeMs = (deps.proofMaxAgeSeconds ?? 60) * 1000
  const maxBatch = deps.maxBatch ?? 500
  const agentPrefix = `spiffe://${ca.trustDomain}/spire/agent/`
  // Proof ids seen within their validity window: a replayed proof is refused (per replica).
  const seenJti = new Map<string, number>()
  let roots: { sequence: number; certs: X509Certificate[] } | undefined
  const tell = (agent: AgentView, svid: X509SvidResult) => {
    try {
      deps.onAgent?.(agent, svid)
    } catch {
      // the hook's failure is its own
    }
  }

  async function trustedRoots(): Promise<X509Certificate[]> {
    const b = await ca.bundle()
    if (!roots || roots.sequence !== b.sequence) {
      roots = { sequence: b.sequence, certs: b.x509Authorities.map((d) => new X509Certificate(d)) }
    }
    return roots.certs
  }

  function rememberJti(jti: string, nowMs: number): boolean {
    if (seenJti.size > 10_000) {
      for (const [k, exp] of seenJti) if (exp < nowMs) seenJti.delete(k)
    }
    if (seenJti.has(jti)) return false
    seenJti.set(jti, nowMs + 2 * maxAgeMs)
    return true
  }

  async function entryFor(agent: AuthenticatedAgent, entryId: string) {
    let entry = index.authorizedFor(agent, clock.now()).get(entryId)
    if (!entry) {
      // This replica may not have polled a change another replica already streamed.
      await index.refresh()
      entry = index.authorizedFor(agent, clock.now()).get(entryId)
    }
    return entry
  }

  return {
    async attest(request) {
      const publicKey = parsePublicKey(request.publicKey)
      const publicKeyDer = publicKey.export({ type: 'spki', format: 'der' })
      const attestor = attestors.get(request.attestationType)
      const newAgentId = randomUUID()
      // The attestation (and what it consumes) commits first, without holding a transaction
      // across the CA: the CA may write its issuance records through the same store.
      type Attested =
        { challenge: unknown } | { id: string; spiffeId: string; canReattest: boolean }
      const attested = await store.transaction(async (tx): Promise<Attested> => {
        const now = clock.now()
        const outcome = await attestor.attest({
          evidence: request.evidence,
          ...(request.challengeResponse === undefined
            ? {}
            : { challengeResponse: request.challengeResponse }),
          publicKeyDer,
          newAgentId,
          db: tx.db,
          now,
        })
        if (outcome.kind === 'challenge') return { challenge: outcome.challenge }
        const spiffeId = agentSpiffeId(ca.trustDomain, attestor.type, outcome.agentPath)
        parseSpiffeId(spiffeId)
        const existing = await tx.db
          .selectFrom('agent')
          .selectAll()
          .where('spiffe_id', '=', spiffeId)
          .forUpdate()
          .executeTakeFirst()
        if (existing?.banned) {
          throw new TesseraError('TSR_AGENT_BANNED', `agent ${spiffeId} is banned`)
        }
        const values = {
          attestation_type: attestor.type,
          selectors: JSON.stringify(outcome.selectors),
          last_seen_at: now,
        }
        if (existing) {
          await tx.db.updateTable('agent').set(values).where('id', '=', existing.id).execute()
        } else {
          await tx.db
            .insertInto('agent')
            .values({ id: newAgentId, spiffe_id: spiffeId, created_at: now, ...values })
            .execute()
        }
        return { id: existing?.id ?? newAgentId, spiffeId, canReattest: outcome.canReattest }
      })
      if ('challenge' in attested) return { challenge: attested.challenge }
      const [svid] = await ca.signX509Svids(
        [{ spiffeId: attested.spiffeId, publicKey, ttlSeconds: ttl }],
        { agentId: attested.id },
      )
      // The new SVID becomes the only one accepted; a ban that landed meanwhile still wins.
      const row = await store.db
        .updateTable('agent')
        .set({ serial: normaliseSerial(svid!.serial), expires_at: svid!.notAfter })
        .where('id', '=', attested.id)
        .where('banned', '=', false)
        .returningAll()
        .executeTakeFirst()
      if (!row) throw new TesseraError('TSR_AGENT_BANNED', `agent ${attested.spiffeId} is banned`)
      tell(agentView(row), svid!)
      return { agent: agentView(row), svid: svid!, reattestable: attested.canReattest }
    },

    async authenticate(proof, method, pathAndQuery) {
      if (!proof) throw unauthenticated('missing (Authorization: Bearer <agent proof>)')
      if (proof.length > 32 * 1024) throw unauthenticated('too long')
      const now = clock.now()
      let leaf: X509Certificate | undefined
      let payload: Record<string, unknown>
      try {
        const header = decodeProtectedHeader(proof)
        if (header.typ !== agentProofType) throw unauthenticated(`typ must be ${agentProofType}`)
        const chain = parseCertChain(header.x5c)
        if (typeof chain === 'string') throw unauthenticated(`x5c: ${chain}`)
        const verified = verifyChain(chain, await trustedRoots(), now)
        if (!verified.ok) throw unauthenticated(`agent SVID: ${verified.reason}`)
        leaf = chain[0]!
        const result = await compactVerify(proof, leaf.publicKey, { algorithms: ['ES256'] })
        payload = JSON.parse(new TextDecoder().decode(result.payload)) as Record<string, unknown>
      } catch (err) {
        if (err instanceof TesseraError) throw err
        throw unauthenticated('not a valid signed proof')
      }
      const sans = uriSans(leaf)
      const spiffeId = sans[0]
      if (sans.length !== 1 || !spiffeId?.startsWith(agentPrefix)) {
        throw unauthenticated('the SVID is not an agent SVID of this trust domain')
      }
      if (payload.htm !== method || payload.htu !== pathAndQuery) {
        throw unauthenticated('signed for another request')
      }
      const iat = typeof payload.iat === 'number' ? payload.iat * 1000 : NaN
      if (!(Math.abs(now.getTime() - iat) <= maxAgeMs)) throw unauthenticated('expired or early')
      if (typeof payload.jti !== 'string' || payload.jti.length > 128) {
        throw unauthenticated('jti missing')
      }
      if (!rememberJti(`${spiffeId} ${payload.jti}`, now.getTime())) {
        throw unauthenticated('replayed')
      }
      const row = await store.db
        .selectFrom('agent')
        .selectAll()
        .where('spiffe_id', '=', spiffeId)
        .executeTakeFirst()
      if (!row) throw unauthenticated('unknown agent')
      if (row.banned) throw new TesseraError('TSR_AGENT_BANNED', `agent ${spiffeId} is banned`)
      // Only the current SVID: renewing (or re-attesting) retires the previous one at once.
      if (row.serial !== normaliseSerial(leaf.serialNumber)) {
        throw unauthenticated('not the current SVID of this agent (renewed or re-attested)')
      }
      if (!row.last_seen_at || now.getTime() - row.last_seen_at.getTime() > 60_000) {
        await store.db
          .updateTable('agent')
          .set({ last_seen_at: now })
          .where('id', '=', row.id)
          .execute()
      }
      return {
        id: row.id,
        spiffeId,
        selectors: parseSelectors(row.selectors),
        serial: row.serial,
        svidNotAfter: new Date(leaf.validTo),
      }
    },

    async renew(agent, publicKeyB64) {
      const publicKey = parsePublicKey(publicKeyB64)
      const [svid] = await ca.signX509Svids(
        [{ spiffeId: agent.spiffeId, publicKey, ttlSeconds: ttl }],
        { agentId: agent.id },
      )
      // Conditional on not banned and on the SVID the renewal was authenticated with.
      const row = await store.db
        .updateTable('agent')
        .set({ serial: normaliseSerial(svid!.serial), expires_at: svid!.notAfter })
        .where('id', '=', agent.id)
        .where('banned', '=', false)
        .where('serial', '=', agent.serial)
        .returningAll()
        .executeTakeFirst()
      if (!row) {
        throw new TesseraError(
          'TSR_AGENT_BANNED',
          `agent ${agent.spiffeId} cannot renew (banned, or its SVID was replaced)`,
        )
      }
      tell(agentView(row), svid!)
      return svid!
    },

    sync(agent, since) {
      const authorized = index.authorizedFor(agent, clock.now())
      return {
        revision: index.revision,
        ids: [...authorized.keys()],
        upserts: [...authorized.values()].filter((e) => e.revision > since),
      }
    },

    async signX509Svids(agent, requests) {
      if (requests.length === 0 || requests.length > maxBatch) {
        throw new TesseraError('TSR_VALIDATION', `requests: 1 to ${maxBatch} per batch`)
      }
      const prepared = []
      const refused: string[] = []
      for (const [i, r] of requests.entries()) {
        const publicKey = parsePublicKey(r.publicKey, `requests[${i}].publicKey`)
        const entry = await entryFor(agent, r.entryId)
        if (!entry) {
          refused.push(r.entryId)
          continue
        }
        prepared.push({
          spiffeId: entry.spiffeId,
          publicKey,
          ...(entry.x509SvidTtl === undefined ? {} : { ttlSeconds: entry.x509SvidTtl }),
          ...(entry.dnsNames.length ? { dnsNames: entry.dnsNames } : {}),
        })
      }
      if (refused.length > 0) {
        throw new TesseraError(
          'TSR_AGENT_NOT_AUTHORIZED',
          `agent ${agent.spiffeId} may not serve ${refused.length === 1 ? 'entry' : 'entries'} ${refused.slice(0, 5).join(', ')}`,
          { details: { entryIds: refused.slice(0, 100) } },
        )
      }
      return ca.signX509Svids(prepared, { agentId: agent.id })
    },

    async mintJwtSvid(agent, request) {
      const entry = await entryFor(agent, request.entryId)
      if (!entry) {
        throw new TesseraError(
          'TSR_AGENT_NOT_AUTHORIZED',
          `agent ${agent.spiffeId} may not serve entry ${request.entryId}`,
          { details: { entryIds: [request.entryId] } },
        )
      }
      return ca.mintJwtSvid(
        {
          spiffeId: entry.spiffeId,
          audience: request.audience,
          ...(entry.jwtSvidTtl === undefined ? {} : { ttlSeconds: entry.jwtSvidTtl }),
        },
        { agentId: agent.id, entryId: entry.id },
      )
    },

    bundle: () => ca.bundle(),

    async isBanned(agentId) {
      const row = await store.db
        .selectFrom('agent')
        .select('banned')
        .where('id', '=', agentId)
        .executeTakeFirst()
      return row?.banned ?? true
    },
  }
}
