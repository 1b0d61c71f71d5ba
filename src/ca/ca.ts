import {
  X509Certificate,
  hash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import { TesseraError } from '../errors.js'
import { systemClock, type Clock } from '../runtime/clock.js'
import { parseTrustDomain, parseWorkloadSpiffeId, trustDomainId } from '../spiffe/id.js'
import { derToP1363 } from '../spiffe/ecdsa-signature.js'
import { validateJwtSvid } from '../spiffe/jwt-svid.js'
import type { TrustBundle } from '../spiffe/types.js'
import { readCertificateExtensions } from '../spiffe/x509-ext.js'
import type { Database } from '../store/schema.js'
import type { Insertable } from 'kysely'
import type { Store } from '../store/store.js'
import type {
  CertificateAuthority,
  IssueContext,
  JwtSvidRequest,
  JwtSvidResult,
  ValidatedJwtSvid,
  X509SvidRequest,
  X509SvidResult,
} from './ca-types.js'
import { createIssuanceLog, type IssuanceLog, type IssuanceRecord } from './issuance-log.js'
import type { KeyManager } from './key-manager.js'
import { workloadSpki } from './spki.js'
import { upstreamIntermediates, type UpstreamCa } from './upstream.js'
import {
  createLeafSigner,
  distinguishedName,
  issuerFromCertificate,
  serialFrom,
  signCaCertificate,
  type Issuer,
  type LeafSigner,
} from './x509-template.js'

export type CaKeyPurpose = 'x509_ca' | 'jwt'
export type CaKeySlot = 'prepared' | 'active' | 'old'

/** A CA key as operators see it (no private material). */
export interface CaKeyView {
  id: string
  purpose: CaKeyPurpose
  slot: CaKeySlot
  notBefore: Date
  notAfter: Date
  tainted: boolean
  revoked: boolean
  /** In the bundle now: not revoked and not expired. */
  published: boolean
}

export type CaEvent = {
  type: 'ca.key.prepared' | 'ca.key.activated' | 'ca.key.tainted' | 'ca.key.revoked'
  keyId: string
  purpose: CaKeyPurpose
}

export interface CaDeps {
  store: Store
  keyManager: KeyManager
  trustDomain: string
  clock?: Clock
  random?: (n: number) => Buffer
  /** Lifetime of each CA key (X.509 CA and JWT signing key), seconds. Default 24 h. */
  caTtlSeconds?: number
  /** Default X509-SVID TTL, seconds. Default 1 h. */
  x509SvidTtlSeconds?: number
  /** Default JWT-SVID TTL, seconds. Default 5 min. */
  jwtSvidTtlSeconds?: number
  /** `spiffe_refresh_hint` of the bundle, seconds. Default 5 min. */
  refreshHintSeconds?: number
  /** Fraction of a key's life at which its successor is prepared (published). Default 1/2. */
  prepareAt?: number
  /** Fraction of a key's life at which the prepared successor becomes active. Default 5/6. */
  activateAt?: number
  /** Sign this trust domain's CA certificates with an upstream CA (they become intermediates). */
  upstream?: UpstreamCa
  issuanceLog?: IssuanceLog
  /** Told of every rotation step (for logs and the event log). */
  onEvent?: (event: CaEvent) => void
}

/** The CA of one trust domain, with its rotation driven by `tick()`. */
export interface Ca extends CertificateAuthority {
  /** Reloads the keys and runs due rotation steps (bootstrap, prepare, activate) at `clock.now()`. */
  tick(): Promise<void>
  /**
   * Emergency rotation, step 1: the key (by id, or the active key of `purpose`) stops signing at
   * once but stays in the bundle; a successor (the prepared key if there is one, else a new one)
   * becomes active.
   */
  taint(
    target: { keyId: string } | { purpose: CaKeyPurpose },
  ): Promise<{ tainted: string; active: string }>
  /** Emergency rotation, step 2: a tainted key leaves the bundle for good. */
  revoke(keyId: string): Promise<void>
  keys(): CaKeyView[]
  /** The X.509 trust anchors (DER) of this trust domain: the roots (or upstream roots). */
  x509Authorities(): Buffer[]
  /** CRL signers: every published X.509 CA key with its certificate, the active one first. */
  crlIssuers(): { keyId: string; certDer: Buffer; sign(data: Buffer): Buffer }[]
}

interface KeyRow {
  id: string
  purpose: CaKeyPurpose
  slot: CaKeySlot
  publicKeyPem: string
  certDer?: Buffer
  notBefore: Date
  notAfter: Date
  tainted: boolean
  revoked: boolean
  sealed: { encryptedPrivateKey: Buffer; wrappedDataKey: Buffer; kekId: string }
}

interface ActiveX509 {
  row: KeyRow
  signer: LeafSigner
  issuer: Issuer
  /** The chain after the leaf: our CA certificate when it is an intermediate, plus upstream intermediates. */
  chainTail: Buffer[]
}

interface ActiveJwt {
  row: KeyRow
  privateKey: KeyObject
  headerB64: string
}

const purposes: CaKeyPurpose[] = ['x509_ca', 'jwt']
/** Advisory lock serialising rotation steps across server replicas. */
const rotationLockKey = 0x7e55ca1
const backdateMs = 10_000
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const dnsPattern =
  /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i
const maxBatch = 10_000

function toDate(v: Date | string | null): Date {
  return v instanceof Date ? v : new Date(v ?? 0)
}

function rowFrom(r: {
  id: string
  purpose: CaKeyPurpose
  slot: CaKeySlot
  public_key_pem: string
  certificate_pem: string | null
  not_before: Date | string | null
  not_after: Date | string | null
  tainted: boolean
  revoked: boolean
  encrypted_private_key: Uint8Array
  wrapped_data_key: Uint8Array
  kek_id: string
}): KeyRow {
  return {
    id: r.id,
    purpose: r.purpose,
    slot: r.slot,
    publicKeyPem: r.public_key_pem,
    ...(r.certificate_pem
      ? { certDer: Buffer.from(new X509Certificate(r.certificate_pem).raw) }
      : {}),
    notBefore: toDate(r.not_before),
    notAfter: toDate(r.not_after),
    tainted: r.tainted,
    revoked: r.revoked,
    sealed: {
      encryptedPrivateKey: Buffer.from(r.encrypted_private_key),
      wrappedDataKey: Buffer.from(r.wrapped_data_key),
      kekId: r.kek_id,
    },
  }
}

async function loadRows(db: Kysely<Database>): Promise<KeyRow[]> {
  const rows = await db
    .selectFrom('ca_key')
    .selectAll()
    .orderBy('not_before')
    .orderBy('id')
    .execute()
  return rows.map((r) => rowFrom(r as Parameters<typeof rowFrom>[0]))
}

/** Draws small random values from a larger block: one system call per 4 KiB, not per serial. */
function pooled(random: (n: number) => Buffer): (n: number) => Buffer {
  let block: Buffer = Buffer.alloc(0)
  let at = 0
  return (n) => {
    if (n > 1024) return random(n)
    if (at + n > block.length) {
      block = random(4096)
      at = 0
    }
    const out = Buffer.from(block.subarray(at, at + n))
    block.fill(0, at, at + n)
    at += n
    return out
  }
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url')
}

export async function createCertificateAuthority(deps: CaDeps): Promise<Ca> {
  const trustDomain = parseTrustDomain(deps.trustDomain)
  const tdId = trustDomainId(trustDomain)
  const clock = deps.clock ?? systemClock
  const random = pooled(deps.random ?? randomBytes)
  const caTtlMs = (deps.caTtlSeconds ?? 86_400) * 1000
  const defaultX509Ttl = deps.x509SvidTtlSeconds ?? 3600
  const defaultJwtTtl = deps.jwtSvidTtlSeconds ?? 300
  const refreshHint = deps.refreshHintSeconds ?? 300
  const prepareAt = deps.prepareAt ?? 1 / 2
  const activateAt = deps.activateAt ?? 5 / 6
  if (!(prepareAt > 0 && prepareAt < activateAt && activateAt < 1)) {
    throw new TesseraError('TSR_CONFIG', 'CA rotation needs 0 < prepareAt < activateAt < 1')
  }
  if (!(caTtlMs >= 60_000)) throw new TesseraError('TSR_CONFIG', 'the CA TTL must be at least 60 s')
  const { store, keyManager, upstream } = deps
  const issuanceLog = deps.issuanceLog ?? createIssuanceLog({ store })
  const emit = deps.onEvent ?? (() => {})
  const upstreamIssuer = upstream
    ? issuerFromCertificate(upstream.chain[0]!, upstream.privateKey)
    : undefined
  const upstreamTail = upstream ? upstreamIntermediates(upstream) : []

  let rows: KeyRow[] = []
  let x509: ActiveX509 | undefined
  let jwt: ActiveJwt | undefined
  const jwkCache = new Map<string, JsonWebKey>()

  const newId = (purpose: CaKeyPurpose) =>
    `${purpose === 'jwt' ? 'jwt' : 'x509'}-${random(12).toString('hex')}`

  function checkTrustDomain(list: KeyRow[], now: Date): void {
    for (const r of list) {
      if (r.purpose !== 'x509_ca' || !r.certDer || r.revoked || r.notAfter <= now) continue
      const uri = readCertificateExtensions(r.certDer).uris[0]
      if (uri !== tdId) {
        throw new TesseraError(
          'TSR_CONFIG',
          `the store holds the CA of ${uri ?? 'another trust domain'}, not ${tdId}: start with that trust domain or another store`,
        )
      }
    }
  }

  function material(list: KeyRow[]): void {
    const ax = list.find(
      (r) => r.purpose === 'x509_ca' && r.slot === 'active' && !r.tainted && !r.revoked,
    )
    if (ax?.id !== x509?.row.id) {
      if (ax === undefined || !ax.certDer) x509 = undefined
      else {
        const issuer = issuerFromCertificate(ax.certDer, keyManager.unseal(ax.id, ax.sealed))
        x509 = {
          row: ax,
          issuer,
          signer: createLeafSigner(issuer),
          chainTail: upstream ? [ax.certDer, ...upstreamTail] : [],
        }
      }
    }
    const aj = list.find(
      (r) => r.purpose === 'jwt' && r.slot === 'active' && !r.tainted && !r.revoked,
    )
    if (aj?.id !== jwt?.row.id) {
      jwt =
        aj === undefined
          ? undefined
          : {
              row: aj,
              privateKey: keyManager.unseal(aj.id, aj.sealed),
              headerB64: base64url(JSON.stringify({ alg: 'ES256', kid: aj.id, typ: 'JWT' })),
            }
    }
  }

  async function reload(db: Kysely<Database> = store.db): Promise<void> {
    const list = await loadRows(db)
    checkTrustDomain(list, clock.now())
    material(list)
    rows = list
  }

  /** Mints a key of `purpose` valid from now, sealed, as a row to insert. */
  function mint(purpose: CaKeyPurpose, slot: CaKeySlot, now: Date): Insertable<Database['ca_key']> {
    const id = newId(purpose)
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const notBefore = new Date(Math.floor((now.getTime() - backdateMs) / 1000) * 1000)
    let notAfter = new Date(Math.floor((now.getTime() + caTtlMs) / 1000) * 1000)
    let certificatePem: string | null = null
    if (purpose === 'x509_ca') {
      if (upstreamIssuer && upstreamIssuer.notAfter < notAfter) notAfter = upstreamIssuer.notAfter
      if (notAfter.getTime() <= now.getTime()) {
        throw new TesseraError('TSR_CONFIG', 'the upstream CA certificate has expired')
      }
      const der = signCaCertificate({
        trustDomainId: tdId,
        subject: distinguishedName('Tessera', `${trustDomain} CA ${id.slice(5, 13)}`),
        publicKey,
        serial: serialFrom(random(16)).der,
        notBefore,
        notAfter,
        ...(upstreamIssuer ? { issuer: upstreamIssuer } : { selfKey: privateKey }),
      })
      certificatePem = new X509Certificate(der).toString()
    }
    const sealed = keyManager.seal(id, privateKey)
    return {
      id,
      purpose,
      slot,
      algorithm: 'ec-p256',
      public_key_pem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
      encrypted_private_key: sealed.encryptedPrivateKey,
      wrapped_data_key: sealed.wrappedDataKey,
      kek_id: sealed.kekId,
      certificate_pem: certificatePem,
      not_before: notBefore,
      not_after: notAfter,
      created_at: now,
    }
  }

  type Step = { purpose: CaKeyPurpose; kind: 'bootstrap' | 'prepare' | 'activate' }

  function dueSteps(list: KeyRow[], now: Date): Step[] {
    const steps: Step[] = []
    const t = now.getTime()
    for (const purpose of purposes) {
      const usable = list.filter(
        (r) => r.purpose === purpose && !r.tainted && !r.revoked && r.notAfter.getTime() > t,
      )
      const active = usable.find((r) => r.slot === 'active')
      const prepared = usable.find((r) => r.slot === 'prepared')
      if (!active) {
        steps.push({ purpose, kind: prepared ? 'activate' : 'bootstrap' })
        continue
      }
      const nb = active.notBefore.getTime()
      const life = active.notAfter.getTime() - nb
      if (prepared && t >= nb + life * activateAt) steps.push({ purpose, kind: 'activate' })
      else if (!prepared && t >= nb + life * prepareAt) steps.push({ purpose, kind: 'prepare' })
    }
    return steps
  }

  /** Runs `fn` under the rotation lock with the rows as they are in the store. */
  async function locked<T>(fn: (db: Kysely<Database>, list: KeyRow[]) => Promise<T>): Promise<T> {
    const result = await store.transaction(async (tx) => {
      await sql`select pg_advisory_xact_lock(${rotationLockKey})`.execute(tx.db)
      return fn(tx.db, await loadRows(tx.db))
    })
    await reload()
    return result
  }

  async function activate(
    db: Kysely<Database>,
    list: KeyRow[],
    purpose: CaKeyPurpose,
    now: Date,
  ): Promise<string> {
    const t = now.getTime()
    const usable = list.filter(
      (r) => r.purpose === purpose && !r.tainted && !r.revoked && r.notAfter.getTime() > t,
    )
    const prepared = usable.find((r) => r.slot === 'prepared')
    await db
      .updateTable('ca_key')
      .set({ slot: 'old' })
      .where('purpose', '=', purpose)
      .where('slot', '=', 'active')
      .execute()
    let id: string
    if (prepared) {
      await db.updateTable('ca_key').set({ slot: 'active' }).where('id', '=', prepared.id).execute()
      id = prepared.id
    } else {
      const row = mint(purpose, 'active', now)
      await db.insertInto('ca_key').values(row).execute()
      id = row.id
    }
    // Any other prepared key of this purpose (tainted ones) is retired.
    await db
      .updateTable('ca_key')
      .set({ slot: 'old' })
      .where('purpose', '=', purpose)
      .where('slot', '=', 'prepared')
      .execute()
    emit({ type: 'ca.key.activated', keyId: id, purpose })
    return id
  }

  async function tick(): Promise<void> {
    await reload()
    if (dueSteps(rows, clock.now()).length === 0) return
    await locked(async (db, list) => {
      const now = clock.now()
      for (const step of dueSteps(list, now)) {
        if (step.kind === 'prepare') {
          const row = mint(step.purpose, 'prepared', now)
          await db.insertInto('ca_key').values(row).execute()
          emit({ type: 'ca.key.prepared', keyId: row.id, purpose: step.purpose })
        } else {
          await activate(db, list, step.purpose, now)
        }
      }
    })
  }

  async function taint(
    target: { keyId: string } | { purpose: CaKeyPurpose },
  ): Promise<{ tainted: string; active: string }> {
    return locked(async (db, list) => {
      const now = clock.now()
      const row =
        'keyId' in target
          ? list.find((r) => r.id === target.keyId)
          : list.find(
              (r) =>
                r.purpose === target.purpose && r.slot === 'active' && !r.tainted && !r.revoked,
            )
      if (!row) throw new TesseraError('TSR_NOT_FOUND', 'no such CA key to taint')
      if (row.revoked)
        throw new TesseraError('TSR_CONFLICT', `the CA key ${row.id} is already revoked`)
      await db.updateTable('ca_key').set({ tainted: true }).where('id', '=', row.id).execute()
      emit({ type: 'ca.key.tainted', keyId: row.id, purpose: row.purpose })
      const others = list.map((r) => (r.id === row.id ? { ...r, tainted: true } : r))
      let active: string
      if (row.slot === 'active') active = await activate(db, others, row.purpose, now)
      else {
        if (row.slot === 'prepared')
          await db.updateTable('ca_key').set({ slot: 'old' }).where('id', '=', row.id).execute()
        active =
          list.find((r) => r.purpose === row.purpose && r.slot === 'active' && !r.tainted)?.id ?? ''
      }
      return { tainted: row.id, active }
    })
  }

  async function revoke(keyId: string): Promise<void> {
    await locked(async (db, list) => {
      const row = list.find((r) => r.id === keyId)
      if (!row) throw new TesseraError('TSR_NOT_FOUND', `no CA key ${keyId}`)
      if (!row.tainted) {
        throw new TesseraError(
          'TSR_CONFLICT',
          `taint the CA key ${keyId} first, and let workloads re-mint, before revoking it`,
        )
      }
      if (row.revoked) return
      await db.updateTable('ca_key').set({ revoked: true }).where('id', '=', keyId).execute()
      emit({ type: 'ca.key.revoked', keyId, purpose: row.purpose })
    })
  }

  function published(r: KeyRow, now: Date): boolean {
    return !r.revoked && r.notAfter.getTime() > now.getTime()
  }

  function jwkOf(r: KeyRow): JsonWebKey {
    let jwk = jwkCache.get(r.id)
    if (!jwk) {
      jwk = createPublicKey(r.publicKeyPem).export({ format: 'jwk' })
      jwkCache.set(r.id, jwk)
    }
    return jwk
  }

  function x509Authorities(): Buffer[] {
    if (upstream) return upstream.roots.map((r) => Buffer.from(r))
    const now = clock.now()
    return rows
      .filter((r) => r.purpose === 'x509_ca' && r.certDer && published(r, now))
      .map((r) => r.certDer!)
  }

  function currentBundle(): TrustBundle {
    const now = clock.now()
    const t = now.getTime()
    // Rows are never deleted, and each bundle change is a new row, a revocation or an expiry, so
    // this count only grows, and grows on every change.
    const sequence =
      rows.length +
      rows.filter((r) => r.revoked).length +
      rows.filter((r) => !r.revoked && r.notAfter.getTime() <= t).length
    return {
      trustDomain,
      x509Authorities: x509Authorities(),
      jwtAuthorities: rows
        .filter((r) => r.purpose === 'jwt' && published(r, now))
        .map((r) => ({ kid: r.id, publicKey: jwkOf(r), expiresAt: r.notAfter })),
      sequence,
      refreshHintSeconds: refreshHint,
    }
  }

  function checkContext(ctx: IssueContext | undefined): void {
    for (const [name, v] of [
      ['agentId', ctx?.agentId],
      ['entryId', ctx?.entryId],
    ] as const) {
      if (v !== undefined && !uuidPattern.test(v)) {
        throw new TesseraError('TSR_VALIDATION', `${name} must be a UUID`)
      }
    }
  }

  /**
   * SPIFFE IDs already checked: a workload's ID is the same on every renewal, so each distinct ID
   * is parsed once (bounded; the check is a pure function of the string and the trust domain).
   */
  const checkedIds = new Set<string>()

  function checkSpiffeId(spiffeId: string): void {
    if (checkedIds.has(spiffeId)) return
    const id = parseWorkloadSpiffeId(spiffeId)
    if (id.trustDomain !== trustDomain) {
      throw new TesseraError(
        'TSR_VALIDATION',
        `this CA signs SPIFFE IDs of ${tdId} only, not ${spiffeId}`,
      )
    }
    if (checkedIds.size >= 10_000) checkedIds.clear()
    checkedIds.add(spiffeId)
  }

  function checkTtl(ttl: number | undefined, name: string): void {
    if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 1 && ttl <= 10 * 365 * 86_400)) {
      throw new TesseraError('TSR_VALIDATION', `${name} must be a whole number of seconds ≥ 1`)
    }
  }

  async function signX509Svids(
    requests: readonly X509SvidRequest[],
    ctx?: IssueContext,
  ): Promise<X509SvidResult[]> {
    checkContext(ctx)
    if (requests.length > maxBatch)
      throw new TesseraError('TSR_VALIDATION', `at most ${maxBatch} requests per batch`)
    const spkis: Buffer[] = new Array<Buffer>(requests.length)
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i]!
      checkSpiffeId(r.spiffeId)
      spkis[i] = workloadSpki(r.publicKey)
      checkTtl(r.ttlSeconds, 'ttlSeconds')
      if (r.dnsNames === undefined) continue
      for (const dns of r.dnsNames) {
        if (typeof dns !== 'string' || dns.length > 253 || !dnsPattern.test(dns)) {
          throw new TesseraError(
            'TSR_VALIDATION',
            `${JSON.stringify(String(dns).slice(0, 80))} is not a DNS name`,
          )
        }
      }
    }
    const active = x509
    if (!active) throw new TesseraError('TSR_CA_KEY', 'no active X.509 CA key')
    const now = clock.now()
    const notBefore = new Date(Math.floor((now.getTime() - backdateMs) / 1000) * 1000)
    const cap = active.issuer.notAfter.getTime()
    // One notAfter per distinct TTL in the batch (usually one), shared by the results.
    const notAfters = new Map<number, Date>()
    const agentId = ctx?.agentId
    const entryId = ctx?.entryId
    const results: X509SvidResult[] = new Array<X509SvidResult>(requests.length)
    const records: IssuanceRecord[] = new Array<IssuanceRecord>(requests.length)
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i]!
      const ttl = r.ttlSeconds ?? defaultX509Ttl
      let notAfter = notAfters.get(ttl)
      if (notAfter === undefined) {
        notAfter = new Date(Math.floor(Math.min(now.getTime() + ttl * 1000, cap) / 1000) * 1000)
        notAfters.set(ttl, notAfter)
      }
      const serial = serialFrom(random(16))
      const spki = spkis[i]!
      const leaf = active.signer.sign({
        spiffeId: r.spiffeId,
        ...(r.dnsNames ? { dnsNames: r.dnsNames } : {}),
        spki,
        serial: serial.der,
        notBefore,
        notAfter,
      })
      results[i] = {
        spiffeId: r.spiffeId,
        certChain: [leaf, ...active.chainTail],
        serial: serial.hex,
        notBefore,
        notAfter,
      }
      const record: IssuanceRecord = {
        svidType: 'x509',
        serial: serial.hex,
        spiffeId: r.spiffeId,
        notBefore,
        notAfter,
        publicKeyHash: hash('sha256', spki, 'hex'),
        issuedAt: now,
      }
      if (agentId) record.agentId = agentId
      if (entryId) record.entryId = entryId
      records[i] = record
    }
    await issuanceLog.record(records)
    return results
  }

  async function mintJwtSvid(request: JwtSvidRequest, ctx?: IssueContext): Promise<JwtSvidResult> {
    checkContext(ctx)
    checkSpiffeId(request.spiffeId)
    checkTtl(request.ttlSeconds, 'ttlSeconds')
    if (
      !Array.isArray(request.audience) ||
      request.audience.length === 0 ||
      !request.audience.every((a) => typeof a === 'string' && a.length > 0 && a.length <= 1024)
    ) {
      throw new TesseraError('TSR_VALIDATION', 'audience must list one or more non-empty strings')
    }
    const active = jwt
    if (!active) throw new TesseraError('TSR_CA_KEY', 'no active JWT signing key')
    const now = clock.now()
    const iat = Math.floor(now.getTime() / 1000)
    const exp = Math.min(
      iat + (request.ttlSeconds ?? defaultJwtTtl),
      Math.floor(active.row.notAfter.getTime() / 1000),
    )
    const jti = random(16).toString('hex')
    const payload = {
      ...request.claims,
      sub: request.spiffeId,
      aud: [...request.audience],
      exp,
      iat,
      jti,
    }
    const input = `${active.headerB64}.${base64url(JSON.stringify(payload))}`
    // A bare KeyObject (DER out) and a conversion in JS: an options object with `dsaEncoding`
    // costs about as much as the signature itself (see spiffe/ecdsa-signature.ts).
    const signature = derToP1363(sign('sha256', Buffer.from(input), active.privateKey), 32)
    const token = `${input}.${signature.toString('base64url')}`
    const issuedAt = new Date(iat * 1000)
    const expiresAt = new Date(exp * 1000)
    await issuanceLog.record([
      {
        svidType: 'jwt',
        jti,
        spiffeId: request.spiffeId,
        ...(ctx?.agentId ? { agentId: ctx.agentId } : {}),
        ...(ctx?.entryId ? { entryId: ctx.entryId } : {}),
        notBefore: issuedAt,
        notAfter: expiresAt,
        issuedAt: now,
      },
    ])
    return { token, spiffeId: request.spiffeId, jti, kid: active.row.id, issuedAt, expiresAt }
  }

  async function validate(token: string, audience: string): Promise<ValidatedJwtSvid> {
    if (typeof audience !== 'string' || audience === '') {
      throw new TesseraError('TSR_VALIDATION', 'audience must be a non-empty string')
    }
    const result = validateJwtSvid(token, currentBundle(), audience, clock.now(), {
      algorithms: ['ES256'],
    })
    if (result.header.kid === undefined) {
      throw new TesseraError('TSR_JWT_SVID_INVALID', 'the token has no kid', {
        details: { reason: 'kid' },
      })
    }
    return { spiffeId: result.spiffeId, claims: result.claims }
  }

  await tick()

  return {
    trustDomain,
    signX509Svids,
    mintJwtSvid,
    validateJwtSvid: validate,
    bundle: async () => currentBundle(),
    tick,
    taint,
    revoke,
    x509Authorities,
    crlIssuers: () => {
      const now = clock.now()
      const active = x509
      return rows
        .filter((r) => r.purpose === 'x509_ca' && r.certDer && published(r, now))
        .sort((a, b) => Number(b.id === active?.row.id) - Number(a.id === active?.row.id))
        .map((r) => {
          const key =
            r.id === active?.row.id ? active.issuer.privateKey : keyManager.unseal(r.id, r.sealed)
          return { keyId: r.id, certDer: r.certDer!, sign: (data) => sign('sha256', data, key) }
        })
    },
    keys: () => {
      const now = clock.now()
      return rows.map((r) => ({
        id: r.id,
        purpose: r.purpose,
        slot: r.slot,
        notBefore: r.notBefore,
        notAfter: r.notAfter,
        tainted: r.tainted,
        revoked: r.revoked,
        published: r.purpose === 'x509_ca' && upstream ? false : published(r, now),
      }))
    },
  }
}
