import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import type { EventJson } from '../../src/audit/chain.js'
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/compose.js'
import { freshSchemaName } from '../support/stores.js'

const quiet = new Writable({ write: (_c, _e, cb) => cb() })

function targets(): { name: string; options: () => ServerOptions; cleanup: () => void }[] {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-audit-'))
  const list = [
    {
      name: 'pglite',
      options: (): ServerOptions => ({ dataDir: join(dir, 'data') }),
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    },
  ]
  const url = process.env.TESSERA_TEST_DATABASE_URL
  if (url) {
    const schema = freshSchemaName()
    const kek = randomBytes(32).toString('base64')
    list.push({
      name: 'postgres',
      options: () => ({ databaseUrl: url, databaseSchema: schema, ca: { kek } }),
      cleanup: () => {},
    })
  }
  return list
}

/** The server records real events: issuance, revocation, entries, token exchange, admin calls. */
for (const target of targets()) {
  describe(`${target.name}: the server writes audit events`, () => {
    let server: RunningServer
    let admin: string
    const td = 'audit.example'

    before(async () => {
      server = await startServer({
        ...target.options(),
        port: 0,
        log: quiet,
        ca: { ...target.options().ca, trustDomain: td },
      })
      admin = server.adminToken!
    })
    after(async () => {
      await server.close()
      target.cleanup()
    })

    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(server.url + path, {
        method,
        headers: {
          authorization: `Bearer ${admin}`,
          'x-request-id': 'req-audit-1',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      return { status: res.status, body: (await res.json()) as Record<string, unknown> }
    }
    const events = async (query: string) => {
      const res = await api('GET', `/v1/audit/events?${query}`)
      assert.equal(res.status, 200)
      return res.body.items as EventJson[]
    }

    it('entry created, updated and deleted; each answered only after its event is durable', async () => {
      const created = await api('POST', '/v1/entries', {
        spiffeId: `spiffe://${td}/billing`,
        parentId: `spiffe://${td}/spire/agent/join_token/x`,
        selectors: ['unix:uid:1000'],
        owner: 'team-billing',
      })
      assert.equal(created.status, 201)
      const id = created.body.id as string
      assert.equal(
        (await api('PATCH', `/v1/entries/${id}`, { owner: 'team-payments' })).status,
        200,
      )
      assert.equal((await api('DELETE', `/v1/entries/${id}`)).status, 200)
      const got = await events(
        `type=entry.*&subject=${encodeURIComponent(`spiffe://${td}/billing`)}&order=asc`,
      )
      assert.deepEqual(
        got.map((e) => e.type),
        ['entry.created', 'entry.updated', 'entry.deleted'],
      )
      assert.equal(got[0]!.resource, `entry:${id}`)
      assert.equal((got[1]!.data as { owner: string }).owner, 'team-payments')
    })

    it('revocation created', async () => {
      const res = await api('POST', '/v1/revocations', {
        targetType: 'spiffe_id',
        value: `spiffe://${td}/compromised`,
        reason: 'key leaked',
      })
      assert.equal(res.status, 201)
      const [e] = await events('type=revocation.created')
      assert.equal(e!.subject, `spiffe://${td}/compromised`)
      assert.match(e!.actor!, /^api-token:/)
      assert.equal((e!.data as { reason: string }).reason, 'key leaked')
    })

    it('X.509 and JWT issuance, then token exchange (allowed and refused)', async () => {
      const { generateKeyPairSync } = await import('node:crypto')
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const [x509] = await server.ca.signX509Svids([{ spiffeId: `spiffe://${td}/web`, publicKey }])
      const jwt = await server.ca.mintJwtSvid({
        spiffeId: `spiffe://${td}/ci`,
        audience: [`spiffe://${td}/tessera/token-exchange`],
      })
      const x = await events('type=issuance.x509')
      assert.equal(x[0]!.subject, `spiffe://${td}/web`)
      assert.equal((x[0]!.data as { serial: string }).serial, x509!.serial)
      const j = await events(`type=issuance.jwt&subject=${encodeURIComponent(`spiffe://${td}/ci`)}`)
      assert.equal((j[0]!.data as { jti: string }).jti, jwt.jti)

      const exchange = (subjectToken: string) =>
        fetch(server.url + '/v1/token', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
            subject_token: subjectToken,
            subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
            audience: 'billing-api',
          }).toString(),
        })
      assert.equal((await exchange(jwt.token)).status, 200)
      assert.equal((await exchange('not-a-token')).status, 400)
      const t = await events('type=token.exchange&order=asc')
      assert.deepEqual(
        t.map((e) => e.decision),
        ['allow', 'deny'],
      )
      assert.equal(t[0]!.actor, `spiffe://${td}/ci`)
      assert.equal(t[0]!.resource, 'billing-api')
      // Never the token itself.
      assert.ok(!JSON.stringify(t).includes(jwt.token.split('.')[2]!))
    })

    it('admin API calls: token id, method, route, status, request id; never the body', async () => {
      const res = await api('POST', '/v1/tokens', { name: 'ci-reader', scopes: ['read'] })
      assert.equal(res.status, 201)
      const [e] = await events('type=admin.api&action=' + encodeURIComponent('POST /v1/tokens'))
      assert.ok(e)
      assert.match(e.actor!, /^api-token:/)
      assert.equal(e.requestId, 'req-audit-1')
      assert.deepEqual(
        { method: e.data.method, route: e.data.route, status: e.data.status },
        { method: 'POST', route: '/v1/tokens', status: 201 },
      )
      assert.ok(!JSON.stringify(e).includes(String(res.body.token)))
      const denied = await fetch(server.url + '/v1/revocations', {
        method: 'POST',
        headers: { authorization: 'Bearer tsr_bogus_bogus', 'content-type': 'application/json' },
        body: '{}',
      })
      assert.equal(denied.status, 401)
      const [d] = await events('type=admin.api&decision=deny')
      assert.equal(d!.actor, 'anonymous')
      assert.equal(d!.data.status, 401)
    })

    it('cursor paging walks every event once, and the chain verifies', async () => {
      const seen: number[] = []
      let cursor: string | undefined
      do {
        const res = await api('GET', `/v1/audit/events?limit=3${cursor ? `&cursor=${cursor}` : ''}`)
        for (const e of res.body.items as EventJson[]) seen.push(e.seq)
        cursor = res.body.nextCursor as string | undefined
      } while (cursor)
      assert.ok(seen.length >= 10)
      assert.deepEqual(
        seen,
        [...seen].sort((a, b) => b - a),
      )
      assert.equal(new Set(seen).size, seen.length)
      const verify = await api('GET', '/v1/audit/verify')
      assert.equal(verify.status, 200)
      assert.equal(verify.body.ok, true)
      assert.equal(verify.body.checked, seen.length)
    })
  })
}
