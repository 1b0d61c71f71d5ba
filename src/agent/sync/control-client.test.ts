import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { joinTokenEvidence } from '../../attestation/join-token-attestor.js'
import { x509popEvidence } from '../../attestation/x509pop-attestor.js'
import { createInventory } from '../../inventory/index.js'
import { createFixedClock } from '../../runtime/clock.js'
import { buildApp } from '../../server/app.js'
import type { TrustBundle } from '../../spiffe/types.js'
import { createApiToken } from '../../server/auth/api-tokens.js'
import { openStore, type Store } from '../../store/index.js'
import {
  createFakeCa,
  generateP256,
  makeCaCert,
  makeLeafCert,
  type FakeCa,
} from '../../../test/support/fake-ca.js'
import { createAgentControlClient, type AgentClientEvent } from './control-client.js'

const td = 'example.org'

async function waitFor(what: string, ok: () => boolean, timeoutMs = 5000): Promise<number> {
  const start = performance.now()
  while (!ok()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
  return performance.now() - start
}

describe('agent control client against a real server', () => {
  const clock = createFixedClock(new Date())
  let store: Store
  let ca: FakeCa
  let app: FastifyInstance
  let url: string
  let port: number
  let admin: string
  let nodeCa: Awaited<ReturnType<typeof makeCaCert>>
  let nodeCaKeys: Awaited<ReturnType<typeof generateP256>>
  const federated = new Map<string, TrustBundle>()

  async function startServer(listenPort = 0) {
    app = await buildApp({
      store,
      clock,
      inventory: createInventory({ store, clock }),
      control: {
        ca,
        pollIntervalMs: 100,
        heartbeatMs: 500,
        nodeAttestors: { x509pop: { rootsPem: nodeCa.toString('pem') } },
        federatedBundles: async () => federated,
      },
    })
    await app.listen({ host: '127.0.0.1', port: listenPort })
    port = (app.server.address() as AddressInfo).port
    url = `http://127.0.0.1:${port}`
  }

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(url + path, {
      method,
      headers: {
        authorization: `Bearer ${admin}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const json = (await res.json()) as Record<string, unknown>
    assert.ok(res.ok, JSON.stringify(json))
    return json
  }

  before(async () => {
    store = await openStore({ backend: 'pglite' })
    ca = await createFakeCa(td, clock)
    nodeCaKeys = await generateP256()
    const t = clock.now().getTime()
    nodeCa = await makeCaCert(
      'CN=node ca',
      nodeCaKeys,
      new Date(t - 86_400_000),
      new Date(t + 30 * 86_400_000),
    )
    admin = (await createApiToken(store, { name: 'admin', scopes: ['admin'] }, clock)).token
    await startServer()
  })
  after(async () => {
    await app.close()
    await store.close()
  })

  it("fetches federated trust domains' bundles, and drops one when the federation ends", async () => {
    const partner = { ...(await ca.bundle()), trustDomain: 'partner.org', sequence: 7 }
    federated.set('partner.org', partner)
    const { token } = (await api('POST', '/v1/join-tokens', {})) as { token: string }
    const client = createAgentControlClient({
      serverUrl: url,
      attestor: joinTokenEvidence(token),
      clock,
      revocationPollMs: 20,
      federatedPollMs: 60_000,
    })
    const changes: string[] = []
    client.onChange((what) => changes.push(what))
    await client.start()
    try {
      await waitFor('the federated bundle', () => client.bundles().has('partner.org'), 5000)
      assert.equal(client.bundles().get('partner.org')?.sequence, 7)
      assert.ok(client.bundles().has(td), 'the own bundle stays')
      federated.delete('partner.org')
      clock.advance(60_000)
      await waitFor('the bundle to go', () => !client.bundles().has('partner.org'), 5000)
      assert.ok(changes.includes('bundles'))
    } finally {
      await client.stop()
    }
  })

  it('attests with a join token, streams entries within a second, signs SVIDs through the port', async () => {
    const { token } = (await api('POST', '/v1/join-tokens', {})) as { token: string }
    const client = createAgentControlClient({
      serverUrl: url,
      attestor: joinTokenEvidence(token),
      clock,
    })
    await client.start()
    try {
      assert.ok(client.connected())
      const agentId = client.spiffeId()!
      assert.match(agentId, new RegExp(`^spiffe://${td}/spire/agent/join_token/[0-9a-f-]{36}$`))
      assert.equal(client.bundles().get(td)?.x509Authorities.length, 1)

      const created = (await api('POST', '/v1/entries', {
        spiffeId: `spiffe://${td}/web`,
        parentId: agentId,
        selectors: ['unix:uid:1000'],
        owner: 'team-web',
        dnsNames: ['web.example.org'],
      })) as { id: string }
      const ms = await waitFor('entry', () => client.entries().has(created.id), 1000)
      assert.ok(ms < 1000, `arrived after ${ms} ms`)
      // The inventory records the entry as a workload identity owned by its owner, and the agent.
      const inventory = createInventory({ store, clock })
      for (let i = 0; i < 100; i++) {
        if (await inventory.getIdentity(`spiffe://${td}/web`)) break
        await new Promise((r) => setTimeout(r, 20))
      }
      const identity = await inventory.getIdentity(`spiffe://${td}/web`)
      assert.equal(identity?.kind, 'workload')
      assert.equal(JSON.stringify(identity).includes('team-web'), true)
      assert.equal((await inventory.getIdentity(agentId))?.kind, 'workload')

      // A child of the workload is the agent's too (descendants).
      const child = (await api('POST', '/v1/entries', {
        spiffeId: `spiffe://${td}/web/sidecar`,
        parentId: `spiffe://${td}/web`,
        selectors: ['unix:uid:1001'],
        owner: 'team-web',
      })) as { id: string }
      await waitFor('child entry', () => client.entries().has(child.id), 1000)
      const stranger = (await api('POST', '/v1/entries', {
        spiffeId: `spiffe://${td}/db`,
        parentId: `spiffe://${td}/spire/agent/join_token/someone-else`,
        selectors: ['unix:uid:5'],
        owner: 'team-db',
      })) as { id: string }

      // Batch-sign through the port; openssl verifies the chain against the bundle.
      const workloadKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const [svid] = await client.signX509Svids([
        { entryId: created.id, publicKey: workloadKey.publicKey },
      ])
      const leaf = new X509Certificate(svid!.certChain[0]!)
      assert.equal(leaf.subjectAltName?.includes(`URI:spiffe://${td}/web`), true)
      assert.equal(leaf.subjectAltName?.includes('DNS:web.example.org'), true)
      const dir = mkdtempSync(join(tmpdir(), 'tessera-svid-'))
      writeFileSync(join(dir, 'leaf.pem'), leaf.toString())
      const root = new X509Certificate(client.bundles().get(td)!.x509Authorities[0]!)
      writeFileSync(join(dir, 'root.pem'), root.toString())
      const verified = execFileSync('openssl', [
        'verify',
        '-CAfile',
        join(dir, 'root.pem'),
        '-attime',
        String(Math.floor(clock.now().getTime() / 1000)),
        join(dir, 'leaf.pem'),
      ]).toString()
      assert.match(verified, /OK/)
      assert.ok(ca.issued.some((i) => i.serial === svid!.serial && i.ctx?.agentId))

      const jwt = await client.mintJwtSvid({ entryId: created.id, audience: ['db'] })
      const validated = await ca.validateJwtSvid(jwt.token, 'db')
      assert.equal(validated.spiffeId, `spiffe://${td}/web`)

      await assert.rejects(
        client.signX509Svids([{ entryId: stranger.id, publicKey: workloadKey.publicKey }]),
        { code: 'TSR_AGENT_NOT_AUTHORIZED' },
      )

      // Moving the entry away from this agent arrives as a delete (and takes its child along).
      await api('PATCH', `/v1/entries/${created.id}`, { parentId: `spiffe://${td}/elsewhere` })
      await waitFor('delete', () => !client.entries().has(created.id), 1000)
      await waitFor('child delete', () => !client.entries().has(child.id), 1000)

      // The join token was consumed: a second agent with it is refused.
      const replay = createAgentControlClient({
        serverUrl: url,
        attestor: joinTokenEvidence(token),
        clock,
      })
      await assert.rejects(replay.start(), { code: 'TSR_ATTESTATION_FAILED' })
      await replay.stop()
    } finally {
      await client.stop()
    }
  })

  it('keeps its cache while the server is down, re-attests when its SVID expired, obeys a ban', async () => {
    const nodeKeys = await generateP256()
    const t = clock.now().getTime()
    const nodeCert = await makeLeafCert({
      issuer: nodeCa,
      issuerKey: nodeCaKeys.privateKey,
      publicKey: nodeKeys.publicKey,
      subject: 'CN=node-7',
      notBefore: new Date(t - 3600_000),
      notAfter: new Date(t + 10 * 86_400_000),
    })
    const nodeKey = createPrivateKey({
      key: Buffer.from(await crypto.subtle.exportKey('pkcs8', nodeKeys.privateKey as never)),
      format: 'der',
      type: 'pkcs8',
    })
    const events: AgentClientEvent[] = []
    const client = createAgentControlClient({
      serverUrl: url,
      attestor: x509popEvidence([Buffer.from(nodeCert.rawData)], nodeKey),
      clock,
      backoff: { initialMs: 50, maxMs: 200 },
      staleAfterMs: 3000,
      onEvent: (e) => events.push(e),
    })
    await client.start()
    try {
      const agentId = client.spiffeId()!
      assert.match(agentId, new RegExp(`^spiffe://${td}/spire/agent/x509pop/[0-9a-f]{40}$`))
      const entry = (await api('POST', '/v1/entries', {
        spiffeId: `spiffe://${td}/batch`,
        parentId: agentId,
        selectors: ['unix:uid:2000'],
        owner: 'team-batch',
      })) as { id: string }
      await waitFor('entry', () => client.entries().has(entry.id), 1000)

      await app.close()
      await waitFor('disconnect', () => !client.connected(), 3000)
      assert.ok(client.entries().has(entry.id), 'cached entries survive the outage')

      // Two hours pass: the one-hour agent SVID expired while the server was away.
      clock.advance(2 * 3600_000)
      await startServer(port)
      await waitFor('reconnect', () => client.connected(), 5000)
      assert.ok(
        events.some((e) => e.type === 'reattested'),
        JSON.stringify(events.map((e) => e.type)),
      )
      assert.equal(client.spiffeId(), agentId, 'same node, same agent')
      const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey
      assert.equal((await client.signX509Svids([{ entryId: entry.id, publicKey: key }])).length, 1)

      const agents = (await api('GET', '/v1/agents')) as {
        items: { id: string; spiffeId: string }[]
      }
      const row = agents.items.find((a) => a.spiffeId === agentId)!
      await api('POST', `/v1/agents/${row.id}/ban`)
      await waitFor('ban ends the stream', () => !client.connected(), 3000)
      await assert.rejects(client.signX509Svids([{ entryId: entry.id, publicKey: key }]), {
        code: 'TSR_AGENT_BANNED',
      })
      assert.ok(client.entries().has(entry.id))
    } finally {
      await client.stop()
    }
  })
})
