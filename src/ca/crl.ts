import { sql } from 'kysely'
import { TesseraError } from '../errors.js'
import { normaliseSerial } from '../lifecycle/revocations.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import {
  bitString,
  explicit,
  implicitPrimitive,
  octetString,
  oid,
  seq,
  smallInteger,
  time,
  unsignedInteger,
} from '../spiffe/der.js'
import { readCertificateExtensions } from '../spiffe/x509-ext.js'
import type { Store } from '../store/store.js'
import type { Ca } from './ca.js'
import { subjectNameDer } from './x509-template.js'

/**
 * X.509 v2 CRLs (RFC 5280 §5) of the deny-list, for relying parties that check revocation the
 * classic way. One CRL per published X.509 CA key (a leaf is checked against the CRL of the key
 * that issued it), each listing every revoked serial: those on the deny-list, and those of the
 * X509-SVIDs issued for a revoked SPIFFE ID that have not expired yet. Serials are unique per trust
 * domain, so listing all of them in every CRL is safe.
 */

export interface RevokedSerial {
  /** Normalised lower-case hex (see normaliseSerial). */
  serial: string
  revokedAt: Date
}

export interface Crl {
  keyId: string
  der: Buffer
  thisUpdate: Date
  nextUpdate: Date
}

export interface CrlService {
  /** The CRLs of every published X.509 CA key, the active key's first. */
  build(): Promise<Crl[]>
  /** The serials a CRL lists now. */
  revokedSerials(): Promise<RevokedSerial[]>
}

export interface CrlDeps {
  store: Pick<Store, 'db'>
  ca: Pick<Ca, 'crlIssuers'>
  clock?: Clock
  /** nextUpdate − thisUpdate, seconds (default 3600). */
  validitySeconds?: number
  /**
   * A built set of CRLs is reused for this long (default 1000 ms): the endpoint is public, and a
   * request must not cost a signature per CA key. Well inside the 5 s revocation budget.
   */
  cacheMs?: number
}

const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'))
const oidAuthorityKeyIdentifier = '2.5.29.35'
const oidCrlNumber = '2.5.29.20'

/** Encodes and signs one CRL. `sign` gets the TBSCertList DER and returns an ECDSA-SHA256 signature. */
export function encodeCrl(input: {
  issuerName: Buffer
  authorityKeyId?: Buffer
  thisUpdate: Date
  nextUpdate: Date
  crlNumber: number
  revoked: readonly RevokedSerial[]
  sign(tbs: Buffer): Buffer
}): Buffer {
  const entries = input.revoked.map((r) => {
    const hex = r.serial.length % 2 === 1 ? '0' + r.serial : r.serial
    return seq(unsignedInteger(Buffer.from(hex, 'hex')), time(r.revokedAt))
  })
  const exts: Buffer[] = []
  if (input.authorityKeyId) {
    exts.push(
      seq(
        oid(oidAuthorityKeyIdentifier),
        octetString(seq(implicitPrimitive(0, input.authorityKeyId))),
      ),
    )
  }
  exts.push(seq(oid(oidCrlNumber), octetString(smallInteger(input.crlNumber))))
  const tbs = seq(
    smallInteger(1), // v2
    ecdsaWithSha256,
    input.issuerName,
    time(input.thisUpdate),
    time(input.nextUpdate),
    ...(entries.length > 0 ? [seq(...entries)] : []),
    explicit(0, seq(...exts)),
  )
  return seq(tbs, ecdsaWithSha256, bitString(input.sign(tbs)))
}

export function toCrlPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n')
  return `-----BEGIN X509 CRL-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END X509 CRL-----\n`
}

export function createCrlService(deps: CrlDeps): CrlService {
  const clock = deps.clock ?? systemClock
  const validityMs = (deps.validitySeconds ?? 3600) * 1000
  const db = deps.store.db
  const cacheMs = deps.cacheMs ?? 1000
  let cached: { at: number; keys: string; crls: Promise<Crl[]> } | undefined

  async function revokedSerials(): Promise<RevokedSerial[]> {
    const now = clock.now().toISOString()
    const active = sql<boolean>`(r.expires_at is null or r.expires_at > ${now}::timestamptz)`
    const listed = await db
      .selectFrom('revocation as r')
      .select(['r.value', 'r.created_at'])
      .where('r.target_type', '=', 'serial')
      .where(active)
      .execute()
    const bySpiffeId = await db
      .selectFrom('issuance as i')
      .innerJoin('revocation as r', (j) =>
        j.onRef('r.value', '=', 'i.spiffe_id').on('r.target_type', '=', 'spiffe_id'),
      )
      .select(['i.serial', 'r.created_at'])
      .where('i.svid_type', '=', 'x509')
      .where('i.serial', 'is not', null)
      .where(sql<boolean>`i.not_after > ${now}::timestamptz`)
      .where(active)
      .execute()
    // A banned agent: every unexpired SVID it had signed for its workloads, and its own SVID.
    const byAgent = await db
      .selectFrom('issuance as i')
      .innerJoin('revocation as r', (j) =>
        j.on(sql<boolean>`r.value = i.agent_id::text`).on('r.target_type', '=', 'agent'),
      )
      .select(['i.serial', 'r.created_at'])
      .where('i.svid_type', '=', 'x509')
      .where('i.serial', 'is not', null)
      .where(sql<boolean>`i.not_after > ${now}::timestamptz`)
      .where(active)
      .execute()
    const agentSvids = await db
      .selectFrom('agent as a')
      .innerJoin('revocation as r', (j) =>
        j.on(sql<boolean>`r.value = a.id::text`).on('r.target_type', '=', 'agent'),
      )
      .select(['a.serial', 'r.created_at'])
      .where('a.serial', 'is not', null)
      .where(sql<boolean>`(a.expires_at is null or a.expires_at > ${now}::timestamptz)`)
      .where(active)
      .execute()
    const out = new Map<string, Date>()
    const add = (serial: string, at: Date | string) => {
      let s: string
      try {
        s = normaliseSerial(serial)
      } catch {
        return
      }
      const d = new Date(at)
      const prev = out.get(s)
      if (!prev || d < prev) out.set(s, d)
    }
    for (const r of listed) add(r.value, r.created_at)
    for (const r of bySpiffeId) if (r.serial) add(r.serial, r.created_at)
    for (const r of byAgent) if (r.serial) add(r.serial, r.created_at)
    for (const r of agentSvids) if (r.serial) add(r.serial, r.created_at)
    return [...out]
      .map(([serial, revokedAt]) => ({ serial, revokedAt }))
      .sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0))
  }

  return {
    revokedSerials,
    build() {
      const issuers = deps.ca.crlIssuers()
      const now = clock.now().getTime()
      const keys = issuers.map((i) => i.keyId).join(',')
      if (cached && cached.keys === keys && now >= cached.at && now - cached.at < cacheMs) {
        return cached.crls
      }
      const crls = buildFor(issuers)
      cached = { at: now, keys, crls }
      // A failed build is not kept.
      crls.catch(() => {
        if (cached?.crls === crls) cached = undefined
      })
      return crls
    },
  }

  async function buildFor(issuers: ReturnType<CrlDeps['ca']['crlIssuers']>): Promise<Crl[]> {
    if (issuers.length === 0) throw new TesseraError('TSR_CA_KEY', 'no published X.509 CA key')
    const revoked = await revokedSerials()
    // Whole seconds: the DER times have no fraction, and the CRL number follows thisUpdate.
    const thisUpdate = new Date(Math.floor(clock.now().getTime() / 1000) * 1000)
    const nextUpdate = new Date(thisUpdate.getTime() + validityMs)
    return issuers.map((issuer) => {
      const akid = readCertificateExtensions(issuer.certDer).subjectKeyId
      const der = encodeCrl({
        issuerName: subjectNameDer(issuer.certDer),
        ...(akid ? { authorityKeyId: akid } : {}),
        thisUpdate,
        nextUpdate,
        crlNumber: thisUpdate.getTime() / 1000,
        revoked,
        sign: issuer.sign,
      })
      return { keyId: issuer.keyId, der, thisUpdate, nextUpdate }
    })
  }
}
