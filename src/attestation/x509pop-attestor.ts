import {
  createHash,
  createHmac,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
  X509Certificate,
  type KeyObject,
} from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import { TesseraError } from '../errors.js'
import type { Selector } from '../spiffe/types.js'
import type { Database } from '../store/schema.js'
import type { AgentNodeAttestor, NodeAttestor } from './node-attestor.js'
import { parseCertChain, sanValues, verifyChain } from './x509-chain.js'

/**
 * `x509pop`: the node holds a certificate chaining to configured roots and proves possession of its
 * key by signing a server challenge. The challenge is stateless (an HMAC under a key shared through
 * the store), bound to the certificate, to the agent's new SVID key and to a 60 s deadline.
 */
export interface X509PopConfig {
  /** PEM bundle of the CA certificates node certificates must chain to. */
  rootsPem: string
  /** Seconds a challenge stays answerable (default 60). */
  challengeTtlSeconds?: number
}

const settingKey = 'attestation.challenge_key'

function fail(message: string, reason: string): TesseraError {
  return new TesseraError('TSR_ATTESTATION_FAILED', `nodeattestor(x509pop): ${message}`, {
    details: { reason },
  })
}

export function parsePemBundle(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  return blocks.map((b) => new X509Certificate(b))
}

/** The per-installation challenge MAC key: created once, shared by every replica through the store. */
async function challengeKey(db: Kysely<Database>): Promise<Buffer> {
  await db
    .insertInto('setting')
    .values({ key: settingKey, value: JSON.stringify({ key: randomBytes(32).toString('base64') }) })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute()
  const row = await db
    .selectFrom('setting')
    .select(sql<string>`value->>'key'`.as('key'))
    .where('key', '=', settingKey)
    .executeTakeFirstOrThrow()
  return Buffer.from(row.key, 'base64')
}

function signatureAlgorithm(key: KeyObject): string | null {
  return key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448' ? null : 'sha256'
}

export function createX509PopAttestor(config: X509PopConfig): NodeAttestor {
  const roots = parsePemBundle(config.rootsPem)
  if (roots.length === 0) {
    throw new TesseraError('TSR_CONFIG', 'nodeattestor(x509pop): rootsPem holds no certificate')
  }
  const ttlMs = (config.challengeTtlSeconds ?? 60) * 1000
  return {
    type: 'x509pop',
    async attest({ evidence, challengeResponse, publicKeyDer, db, now }) {
      if (typeof evidence !== 'object' || evidence === null) {
        throw fail('evidence must be {"certChain": [base64 DER, …]}', 'malformed')
      }
      const chain = parseCertChain((evidence as { certChain?: unknown }).certChain)
      if (typeof chain === 'string') throw fail(chain, 'malformed')
      const leaf = chain[0]!
      if (leaf.ca) throw fail('the node certificate must not be a CA', 'chain')
      const verified = verifyChain(chain, roots, now)
      if (!verified.ok) throw fail(verified.reason, 'chain')
      const key = await challengeKey(db)
      const keyHash = createHash('sha256').update(publicKeyDer).digest('base64url')
      const fingerprint = leaf.fingerprint256

      if (challengeResponse === undefined) {
        const payload = Buffer.from(
          JSON.stringify({
            n: randomBytes(24).toString('base64url'),
            e: now.getTime() + ttlMs,
            f: fingerprint,
            k: keyHash,
          }),
        ).toString('base64url')
        const mac = createHmac('sha256', key).update(payload).digest('base64url')
        return { kind: 'challenge', challenge: { challenge: `${payload}.${mac}` } }
      }

      const { challenge, signature } = (challengeResponse ?? {}) as {
        challenge?: unknown
        signature?: unknown
      }
      if (
        typeof challenge !== 'string' ||
        typeof signature !== 'string' ||
        challenge.length > 1024
      ) {
        throw fail('the response must be {"challenge", "signature"}', 'malformed')
      }
      const [payload = '', mac = ''] = challenge.split('.')
      const expected = createHmac('sha256', key).update(payload).digest()
      const given = Buffer.from(mac, 'base64url')
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw fail('the challenge was not issued by this server', 'challenge')
      }
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
        e: number
        f: string
        k: string
      }
      if (claims.e < now.getTime()) throw fail('the challenge expired', 'challenge')
      if (claims.f !== fingerprint || claims.k !== keyHash) {
        throw fail('the challenge was issued for another certificate or key', 'challenge')
      }
      const ok = verify(
        signatureAlgorithm(leaf.publicKey),
        Buffer.from(challenge, 'utf8'),
        leaf.publicKey,
        Buffer.from(signature, 'base64'),
      )
      if (!ok) throw fail('the challenge signature does not verify', 'signature')

      const selectors: Selector[] = []
      const cn = /(?:^|\n)CN=([^\n]+)/.exec(leaf.subject)?.[1]
      if (cn) selectors.push({ type: 'x509pop', value: `subject:cn:${cn}` })
      selectors.push({
        type: 'x509pop',
        value: `ca:fingerprint:${fingerprintHex(verified.root)}`,
      })
      for (const dns of sanValues(leaf, 'DNS')) {
        selectors.push({ type: 'x509pop', value: `san:dns:${dns}` })
      }
      return {
        kind: 'attested',
        agentPath: fingerprintHex(leaf),
        selectors,
        canReattest: true,
      }
    },
  }
}

/** SHA-1 fingerprint, lower-case hex without colons (SPIRE's x509pop agent path). */
function fingerprintHex(cert: X509Certificate): string {
  return cert.fingerprint.replaceAll(':', '').toLowerCase()
}

/** Agent side: sends the chain, signs the server's challenge with the node key. */
export function x509popEvidence(
  certChainDer: readonly Buffer[],
  key: KeyObject,
): AgentNodeAttestor {
  return {
    type: 'x509pop',
    canReattest: true,
    evidence: async () => ({ certChain: certChainDer.map((c) => c.toString('base64')) }),
    answer: async (challenge) => {
      const text = (challenge as { challenge?: unknown }).challenge
      if (typeof text !== 'string') throw fail('the server sent no challenge', 'challenge')
      const signature = sign(signatureAlgorithm(key), Buffer.from(text, 'utf8'), key)
      return { challenge: text, signature: signature.toString('base64') }
    },
  }
}
