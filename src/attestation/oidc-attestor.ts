import { createHash } from 'node:crypto'
import {
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
} from 'jose'
import { TesseraError } from '../errors.js'
import type { Selector } from '../spiffe/types.js'
import type { AgentNodeAttestor, NodeAttestor } from './node-attestor.js'

/**
 * `oidc`: the node presents a JWT from a configured issuer (a GitHub Actions OIDC token, a
 * Kubernetes projected service-account token, any OIDC provider). The signature is checked against
 * the issuer's JWKS (from OIDC discovery or a configured `jwksUri`), then issuer, audience and
 * expiry, then `requiredClaims`; chosen claims become the agent's selectors.
 */

export type OidcProfile = 'github' | 'kubernetes' | 'generic'

export interface OidcIssuerConfig {
  /** Selector type and agent path segment, e.g. `github`, `k8s-prod`. `[a-z0-9_-]{1,32}`. */
  name: string
  /** Exactly as the tokens' `iss`. */
  issuer: string
  /** The token's `aud` must hold one of these. */
  audience: string[]
  /** Skips discovery. */
  jwksUri?: string
  profile?: OidcProfile
  /** Selector key → claim path (`/` between nested keys: `kubernetes.io/pod/name`). Added to the profile's. */
  selectorClaims?: Record<string, string>
  /** Claim path → the value (or one of the values) it must have. */
  requiredClaims?: Record<string, string | string[]>
  /** Claims whose values identify the node (hashed into the agent path). */
  idClaims?: string[]
  /** Allowed JWS algorithms (default: the asymmetric ones; never HS* or none). */
  algorithms?: string[]
  /** Seconds of clock skew tolerated (default 30). */
  clockToleranceSeconds?: number
}

export interface OidcAttestorDeps {
  fetch?: typeof fetch
  now?: () => Date
}

const profiles: Record<OidcProfile, { selectors: Record<string, string>; idClaims: string[] }> = {
  // https://docs.github.com/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect
  github: {
    selectors: Object.fromEntries(
      [
        'sub',
        'repository',
        'repository_id',
        'repository_owner',
        'repository_owner_id',
        'repository_visibility',
        'ref',
        'ref_type',
        'workflow',
        'workflow_ref',
        'job_workflow_ref',
        'environment',
        'event_name',
        'actor',
        'runner_environment',
      ].map((c) => [c, c]),
    ),
    // One agent per job: tokens of concurrent jobs of one run must not collide.
    idClaims: ['jti'],
  },
  // Projected service-account token claims (kubernetes.io/...).
  kubernetes: {
    selectors: {
      sub: 'sub',
      namespace: 'kubernetes.io/namespace',
      serviceaccount: 'kubernetes.io/serviceaccount/name',
      serviceaccount_uid: 'kubernetes.io/serviceaccount/uid',
      pod: 'kubernetes.io/pod/name',
      pod_uid: 'kubernetes.io/pod/uid',
      node: 'kubernetes.io/node/name',
      node_uid: 'kubernetes.io/node/uid',
    },
    idClaims: ['kubernetes.io/pod/uid'],
  },
  generic: { selectors: { sub: 'sub' }, idClaims: ['sub'] },
}

const defaultAlgorithms = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
]
const maxTokenLength = 16 * 1024
const namePattern = /^[a-z0-9_-]{1,32}$/

/** Checks the configuration, reporting every problem at once. */
export function checkOidcConfig(configs: readonly OidcIssuerConfig[]): string[] {
  const problems: string[] = []
  const names = new Set<string>()
  const issuers = new Set<string>()
  for (const [i, c] of configs.entries()) {
    const at = `oidc[${i}]`
    if (!namePattern.test(c.name ?? '')) problems.push(`${at}.name must match ${namePattern}`)
    if (names.has(c.name)) problems.push(`${at}.name ${c.name} is used twice`)
    names.add(c.name)
    if (!isAllowedUrl(c.issuer)) problems.push(`${at}.issuer must be an https URL`)
    if (issuers.has(c.issuer)) problems.push(`${at}.issuer ${c.issuer} is configured twice`)
    issuers.add(c.issuer)
    if (c.jwksUri !== undefined && !isAllowedUrl(c.jwksUri)) {
      problems.push(`${at}.jwksUri must be an https URL`)
    }
    if (!Array.isArray(c.audience) || c.audience.length === 0) {
      problems.push(`${at}.audience needs at least one value`)
    }
    for (const alg of c.algorithms ?? []) {
      if (!defaultAlgorithms.includes(alg)) problems.push(`${at}.algorithms: ${alg} is not allowed`)
    }
    // GitHub's issuer signs tokens for every repository on GitHub: without a required owner or
    // repository, anyone's workflow could attest as one of our nodes.
    if ((c.profile ?? 'generic') === 'github') {
      const keys = Object.keys(c.requiredClaims ?? {})
      if (
        !keys.some((k) =>
          ['repository_owner', 'repository_owner_id', 'repository', 'repository_id'].includes(k),
        )
      ) {
        problems.push(
          `${at}: the github profile needs requiredClaims on repository_owner(_id) or repository(_id)`,
        )
      }
    }
  }
  return problems
}

/** http is allowed only to loopback (tests, a local dev issuer). */
function isAllowedUrl(value: string): boolean {
  try {
    const u = new URL(value)
    if (u.protocol === 'https:') return true
    return u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)
  } catch {
    return false
  }
}

function fail(message: string, reason: string): TesseraError {
  return new TesseraError('TSR_ATTESTATION_FAILED', `nodeattestor(oidc): ${message}`, {
    details: { reason },
  })
}

export function claimAt(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload
  for (const key of path.split('/')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
    value = (value as Record<string, unknown>)[key]
  }
  return value
}

export function scalarValues(value: unknown): string[] {
  const one = (v: unknown) =>
    typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? [String(v)] : []
  return Array.isArray(value) ? value.flatMap(one) : one(value)
}

/** A token that passed every check: its issuer's configuration and its verified claims. */
export interface VerifiedOidcToken {
  config: OidcIssuerConfig
  payload: JWTPayload
}

/**
 * Verifies JWTs from the configured issuers: picks the issuer from `iss` before any network call,
 * checks the signature against its JWKS (discovery or `jwksUri`, cached), issuer, audience, expiry
 * and `requiredClaims`. Shared by node attestation and token exchange; `fail` shapes the errors.
 */
export function createOidcTokenVerifier(
  configs: readonly OidcIssuerConfig[],
  deps: OidcAttestorDeps & {
    fail?: (message: string, reason: string) => TesseraError
    /** Names the user in configuration errors, e.g. `nodeattestor(oidc)`. */
    label?: string
  } = {},
) {
  const problems = checkOidcConfig(configs)
  const failWith = deps.fail ?? fail
  if (problems.length > 0) {
    throw new TesseraError('TSR_CONFIG', `${deps.label ?? 'oidc'}: ${problems.join('; ')}`, {
      details: { problems },
    })
  }
  const doFetch = deps.fetch ?? fetch
  const byIssuer = new Map(configs.map((c) => [c.issuer, c]))
  const keySets = new Map<string, Promise<ReturnType<typeof createRemoteJWKSet>>>()

  async function discoverJwksUri(c: OidcIssuerConfig): Promise<string> {
    const url = c.issuer.replace(/\/+$/, '') + '/.well-known/openid-configuration'
    const res = await doFetch(url, { headers: { accept: 'application/json' } })
    if (!res.ok) throw new Error(`discovery answered ${res.status}`)
    const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown }
    // OIDC Discovery §4.3: the document's issuer must be the one we asked.
    if (doc.issuer !== c.issuer) throw new Error('discovery document names another issuer')
    if (typeof doc.jwks_uri !== 'string' || !isAllowedUrl(doc.jwks_uri)) {
      throw new Error('discovery document has no usable jwks_uri')
    }
    return doc.jwks_uri
  }

  function keySet(c: OidcIssuerConfig) {
    let set = keySets.get(c.issuer)
    if (!set) {
      set = (async () => {
        const uri = c.jwksUri ?? (await discoverJwksUri(c))
        return createRemoteJWKSet(new URL(uri), {
          [customFetch]: (input: string | URL, init: RequestInit) => doFetch(input, init),
          timeoutDuration: 5000,
          cooldownDuration: 30_000,
          cacheMaxAge: 10 * 60_000,
        })
      })()
      keySets.set(c.issuer, set)
      // A failed discovery is retried on the next attempt, not cached forever.
      set.catch(() => keySets.delete(c.issuer))
    }
    return set
  }

  function issuerOf(token: string): OidcIssuerConfig | undefined {
    try {
      const iss = decodeJwt(token).iss
      return typeof iss === 'string' ? byIssuer.get(iss) : undefined
    } catch {
      return undefined
    }
  }

  return {
    /** True when the token names a configured issuer (unverified: for choosing a verifier). */
    knows: (token: string) => token.length <= maxTokenLength && issuerOf(token) !== undefined,
    async verify(token: string, now: Date): Promise<VerifiedOidcToken> {
      if (token.length > maxTokenLength) throw failWith('the token is too long', 'malformed')
      try {
        decodeJwt(token)
      } catch {
        throw failWith('the token is not a JWT', 'malformed')
      }
      // Choose the issuer before any network call, so unknown issuers cost nothing.
      const c = issuerOf(token)
      if (!c) throw failWith('the token is from an issuer that is not configured', 'issuer')
      let jwks: Awaited<ReturnType<typeof keySet>>
      try {
        jwks = await keySet(c)
      } catch (err) {
        throw failWith(`cannot get the keys of ${c.issuer} (${(err as Error).message})`, 'jwks')
      }
      let payload: JWTPayload
      try {
        ;({ payload } = await jwtVerify(token, jwks, {
          issuer: c.issuer,
          audience: c.audience,
          algorithms: c.algorithms ?? defaultAlgorithms,
          currentDate: deps.now?.() ?? now,
          clockTolerance: c.clockToleranceSeconds ?? 30,
          requiredClaims: ['exp'],
        }))
      } catch (err) {
        throw failWith(...describeJoseError(err))
      }
      for (const [path, allowed] of Object.entries(c.requiredClaims ?? {})) {
        const values = scalarValues(claimAt(payload, path))
        const wanted = [allowed].flat()
        if (!values.some((v) => wanted.includes(v))) {
          throw failWith(`claim ${path} does not have a required value`, 'claims')
        }
      }
      return { config: c, payload }
    },
  }
}

export function createOidcAttestor(
  configs: readonly OidcIssuerConfig[],
  deps: OidcAttestorDeps = {},
): NodeAttestor {
  const verifier = createOidcTokenVerifier(configs, { ...deps, label: 'nodeattestor(oidc)' })

  return {
    type: 'oidc',
    async attest({ evidence, now }) {
      const token =
        typeof evidence === 'object' && evidence !== null
          ? (evidence as { token?: unknown }).token
          : undefined
      if (typeof token !== 'string' || token.length === 0) {
        throw fail('evidence must be {"token": "<JWT>"}', 'malformed')
      }
      const { config: c, payload } = await verifier.verify(token, now)
      const profile = profiles[c.profile ?? 'generic']
      const selectors: Selector[] = []
      for (const [key, path] of Object.entries({ ...profile.selectors, ...c.selectorClaims })) {
        for (const v of scalarValues(claimAt(payload, path))) {
          if (v.length > 0 && v.length <= 900)
            selectors.push({ type: c.name, value: `${key}:${v}` })
        }
      }
      const idClaims = c.idClaims ?? profile.idClaims
      const idValues = idClaims.map((p) => scalarValues(claimAt(payload, p)).join(','))
      if (idValues.some((v) => v === '')) {
        throw fail(`the token lacks the identifying claims ${idClaims.join(', ')}`, 'claims')
      }
      const id = createHash('sha256').update(idValues.join('\0')).digest('hex').slice(0, 32)
      return { kind: 'attested', agentPath: `${c.name}/${id}`, selectors, canReattest: true }
    },
  }
}

function describeJoseError(err: unknown): [string, string] {
  if (err instanceof joseErrors.JWTExpired) return ['the token expired', 'expired']
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return [`the ${err.claim} claim check failed (${err.reason})`, err.claim]
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) {
    return ['the token algorithm is not allowed', 'algorithm']
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return ['no key of the issuer matches the token', 'signature']
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return ['the token signature does not verify', 'signature']
  }
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) {
    return ["cannot get the issuer's keys", 'jwks']
  }
  if (err instanceof joseErrors.JOSEError) return [`invalid token (${err.code})`, 'malformed']
  return ["cannot verify the token (the issuer's keys may be unreachable)", 'jwks']
}

/** Agent side: sends a fresh token from `token()` on every attestation. */
export function oidcEvidence(token: () => Promise<string>): AgentNodeAttestor {
  return { type: 'oidc', canReattest: true, evidence: async () => ({ token: await token() }) }
}
