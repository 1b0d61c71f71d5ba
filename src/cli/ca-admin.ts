import { X509Certificate } from 'node:crypto'
import type { CaKeyPurpose } from '../ca/ca.js'
import type { IssuancePage, IssuanceQuery } from '../ca/issuance-history.js'
import { TesseraError } from '../errors.js'
import type { Clock } from '../runtime/clock.js'
import type { CaKeyJson } from '../server/routes/ca-admin.js'
import type { Store } from '../store/store.js'
import type { RemoteHttp } from './remote.js'

/**
 * The CA's admin operations (emergency rotation) and its issuance history, the same over HTTP
 * (`--server`) or on a store opened here. `tessera ca …` and `tessera access held` see only this.
 */
export interface CaAdmin {
  keys(): Promise<CaKeyJson[]>
  taint(target: { keyId: string } | { purpose: CaKeyPurpose }): Promise<{
    tainted: string
    active: string
  }>
  revoke(keyId: string): Promise<CaKeyJson>
  issuance(query: IssuanceQuery): Promise<IssuancePage>
}

export function remoteCaAdmin(http: RemoteHttp): CaAdmin {
  const key = (id: string) => `v1/ca/keys/${encodeURIComponent(id)}`
  return {
    async keys() {
      return (await http.json<{ items: CaKeyJson[] }>('GET', 'v1/ca/keys')).items
    },
    taint: (target) =>
      http.json(
        'POST',
        key('keyId' in target ? target.keyId : `active:${target.purpose}`) + '/taint',
      ),
    revoke: (id) => http.json('POST', key(id) + '/revoke'),
    issuance: (q) =>
      http.json('GET', 'v1/issuance', {
        query: {
          spiffeId: q.spiffeId,
          at: q.at?.toISOString(),
          agentId: q.agentId,
          limit: q.limit === undefined ? undefined : String(q.limit),
          cursor: q.cursor,
        },
      }),
  }
}

/**
 * On a store opened here. Listing needs no key material; taint and revoke open the CA with the
 * key-encryption key the server uses (TESSERA_KEK, TESSERA_KEK_FILE, or the embedded store's file).
 */
export function localCaAdmin(
  store: Store,
  clock: Clock,
  env: NodeJS.ProcessEnv,
  warn: (message: string) => void = () => {},
): CaAdmin {
  const dataDir =
    store.backend === 'pglite' && store.location !== 'memory' ? store.location : undefined

  async function readKeys(): Promise<CaKeyJson[]> {
    const rows = await store.db
      .selectFrom('ca_key')
      .select(['id', 'purpose', 'slot', 'not_before', 'not_after', 'tainted', 'revoked'])
      .orderBy('not_before')
      .orderBy('id')
      .execute()
    const now = clock.now().getTime()
    return rows.map((r) => {
      const notAfter = new Date(r.not_after ?? 0)
      return {
        id: r.id,
        purpose: r.purpose,
        slot: r.slot,
        notBefore: new Date(r.not_before ?? 0).toISOString(),
        notAfter: notAfter.toISOString(),
        tainted: r.tainted,
        revoked: r.revoked,
        published: !r.revoked && notAfter.getTime() > now,
      }
    })
  }

  async function openCa() {
    if ((await readKeys()).length === 0) {
      throw new TesseraError('TSR_NOT_FOUND', 'this store holds no CA keys (start the server once)')
    }
    // A rotation step or a successor minted here would be a self-signed root, not an intermediate under the
    // server's upstream CA: that has to go through the server, which holds the upstream key.
    const intermediate = await store.db
      .selectFrom('ca_key')
      .select('certificate_pem')
      .where('purpose', '=', 'x509_ca')
      .where('certificate_pem', 'is not', null)
      .orderBy('created_at', 'desc')
      .executeTakeFirst()
    if (intermediate?.certificate_pem) {
      const cert = new X509Certificate(intermediate.certificate_pem)
      if (cert.issuer !== cert.subject) {
        throw new TesseraError(
          'TSR_CONFLICT',
          'this CA is an intermediate under an upstream CA: taint or revoke its keys through the server (--server), which holds the upstream key',
        )
      }
    }
    const { startCa } = await import('../ca/start.js')
    const running = await startCa({
      store,
      ...(dataDir === undefined ? {} : { dataDir }),
      clock,
      env,
      warn,
      tickMs: 2 ** 31 - 1,
    })
    running.stop()
    return running.ca
  }

  return {
    keys: readKeys,
    async taint(target) {
      return (await openCa()).taint(target)
    },
    async revoke(keyId) {
      await (await openCa()).revoke(keyId)
      const key = (await readKeys()).find((k) => k.id === keyId)
      if (!key) throw new TesseraError('TSR_NOT_FOUND', `no CA key ${keyId}`)
      return key
    },
    async issuance(query) {
      const { listIssuance } = await import('../ca/issuance-history.js')
      return listIssuance(store, query)
    },
  }
}
