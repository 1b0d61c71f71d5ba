import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { CertificateAuthority, X509SvidResult } from '../../ca/ca-types.js'
import {
  createAgentService,
  type AgentService,
  type AuthenticatedAgent,
} from '../../attestation/agent-service.js'
import type { NodeAttestor } from '../../attestation/node-attestor.js'
import {
  createNodeAttestorRegistry,
  createNodeAttestors,
  type NodeAttestorsConfig,
} from '../../attestation/node-attestor-registry.js'
import type { EventSink } from '../../audit/event-sink.js'
import { createEntries, type EntriesDeps } from '../../entries/entries.js'
import { createEntryIndex, type EntryIndex } from '../../entries/entry-index.js'
import type { Entries } from '../../entries/entry-types.js'
import { agentObservations, entryObservation } from '../../attestation/control-observations.js'
import type { Inventory } from '../../inventory/inventory-types.js'
import type { Observation } from '../../inventory/observation.js'
import { TesseraError } from '../../errors.js'
import type { Clock } from '../../runtime/clock.js'
import type { EntryDelta, TrustBundle } from '../../spiffe/types.js'
import type { Store } from '../../store/store.js'
import type { TesseraApp } from '../app-types.js'
import { problemResponses } from '../schemas.js'
import { registerAgentAdminRoutes, AgentSchema } from './agents.js'
import { deltaJson, entryJson, EntrySchema, registerEntryRoutes } from './entries.js'
import { registerJoinTokenRoutes } from './join-tokens.js'
import { registerAgentSecretRoute } from './secrets.js'
import type { SecretsService } from '../../lifecycle/rotation/secrets-service.js'

/** What the SPIFFE control plane needs beyond the store; all optional. */
export interface ControlPlaneDeps {
  /** Replaces the store-backed entries (tests). */
  entries?: Entries
  /** Governance policy checked when an entry is created or changed (docs/governance-policy.md). */
  governance?: EntriesDeps['governance']
  /** Where entry changes, attestations and bans are recorded as observations. */
  inventory?: Pick<Inventory, 'ingest'>
  /** Without a CA the agent API answers 503 TSR_CONTROL_UNAVAILABLE; the admin API works. */
  ca?: CertificateAuthority
  /** Built node attestors, or the built-ins' configuration (default: join_token only). */
  nodeAttestors?: readonly NodeAttestor[] | NodeAttestorsConfig
  /** Entry mirror poll interval (default 250 ms). */
  pollIntervalMs?: number
  /** Stream heartbeat interval (default 15 s). */
  heartbeatMs?: number
  agentSvidTtlSeconds?: number
  /** The current bundles of federated trust domains (agents deliver them per `federatesWith`). */
  federatedBundles?: () => Promise<ReadonlyMap<string, TrustBundle>>
  /** The audit log: entry changes are recorded through it. */
  events?: EventSink
  /** Managed secrets delivered to the agents' workloads (docs/rotation.md). */
  secrets?: Pick<SecretsService, 'deliver'>
}

const agentSecurity = [{ agentProof: [] }]
const ndjson = 'application/x-ndjson'
const b64 = (b: Buffer) => b.toString('base64')

const SvidSchema = Type.Object({
  spiffeId: Type.String(),
  certChain: Type.Array(Type.String(), { description: 'base64 DER, leaf first' }),
  serial: Type.String(),
  notBefore: Type.String({ format: 'date-time' }),
  notAfter: Type.String({ format: 'date-time' }),
})

const BundleSchema = Type.Object({
  trustDomain: Type.String(),
  x509Authorities: Type.Array(Type.String(), { description: 'base64 DER' }),
  jwtAuthorities: Type.Array(
    Type.Object({
      kid: Type.String(),
      publicKey: Type.Object({}, { additionalProperties: true }),
      expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
    }),
  ),
  sequence: Type.Integer(),
  refreshHintSeconds: Type.Integer(),
})

const PublicKey = Type.String({
  maxLength: 2048,
  description: 'base64 SPKI DER, ECDSA P-256',
})

export function svidJson(s: X509SvidResult) {
  return {
    spiffeId: s.spiffeId,
    certChain: s.certChain.map(b64),
    serial: s.serial,
    notBefore: s.notBefore.toISOString(),
    notAfter: s.notAfter.toISOString(),
  }
}

export function bundleJson(b: TrustBundle) {
  return {
    trustDomain: b.trustDomain,
    x509Authorities: b.x509Authorities.map(b64),
    jwtAuthorities: b.jwtAuthorities.map((a) => ({
      kid: a.kid,
      publicKey: a.publicKey as Record<string, unknown>,
      ...(a.expiresAt ? { expiresAt: a.expiresAt.toISOString() } : {}),
    })),
    sequence: b.sequence,
    refreshHintSeconds: b.refreshHintSeconds,
  }
}

/**
 * Registers the SPIFFE control plane: registration entries, join tokens, agent admin and the agent
 * API (docs/attestation.md). Each group in its own encapsulated scope.
 */
export async function registerControlPlaneRoutes(
  app: TesseraApp,
  deps: ControlPlaneDeps & { store: Store; clock: Clock },
): Promise<void> {
  const { store, clock } = deps
  let index: EntryIndex | undefined
  const entries =
    deps.entries ??
    createEntries({
      store,
      clock,
      ...(deps.ca ? { trustDomain: deps.ca.trustDomain } : {}),
      ...(deps.events ? { events: deps.events } : {}),
      ...(deps.governance ? { governance: deps.governance } : {}),
      // Changes made here reach this replica's agents at once; others' within a poll.
      onChange: (delta, deleted) => {
        void index?.refresh().catch(() => {})
        const observation = entryObservation(delta, deleted)
        if (observation) observe([observation])
      },
    })
  const streams = new Set<() => void>()
  // The inventory hears of every entry change, attestation, renewal and ban (best effort).
  const observe = (observations: Observation[]) => {
    if (!deps.inventory) return
    deps.inventory.ingest(observations).catch((err: unknown) => {
      app.log.warn({ err }, 'recording a control-plane change in the inventory failed')
    })
  }
  const watcher = createWatcher()
  await app.register(async (scope) => registerEntryRoutes(scope, { entries }))
  await app.register(async (scope) => registerJoinTokenRoutes(scope, { store, clock }))
  await app.register(async (scope) =>
    registerAgentAdminRoutes(scope, {
      store,
      onBan: (agent) => {
        watcher.banned(agent.id)
        observe(agentObservations(agent))
      },
    }),
  )

  let service: AgentService | undefined
  if (deps.ca) {
    index = createEntryIndex({
      entries,
      pollIntervalMs: deps.pollIntervalMs ?? 250,
      onError: (err) => app.log.warn({ err }, 'entry index poll failed'),
    })
    const attestors = Array.isArray(deps.nodeAttestors)
      ? (deps.nodeAttestors as readonly NodeAttestor[])
      : createNodeAttestors(deps.nodeAttestors as NodeAttestorsConfig | undefined)
    const ca = deps.ca
    service = createAgentService({
      store,
      clock,
      ca,
      attestors: createNodeAttestorRegistry(attestors),
      index,
      ...(deps.agentSvidTtlSeconds ? { agentSvidTtlSeconds: deps.agentSvidTtlSeconds } : {}),
      onAgent: (agent, svid) =>
        observe(agentObservations(agent, { ...svid, trustDomain: ca.trustDomain })),
    })
    const started = index
    app.addHook('onReady', async () => started.start())
  }
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end()
    index?.stop()
    watcher.stop()
  })

  const authenticated = new WeakMap<FastifyRequest, AuthenticatedAgent>()
  const need = (): AgentService => {
    if (!service) {
      throw new TesseraError(
        'TSR_CONTROL_UNAVAILABLE',
        'this server has no certificate authority configured; the agent API is off',
      )
    }
    return service
  }
  const agentOf = (request: FastifyRequest): AuthenticatedAgent => authenticated.get(request)!

  // Shared by all of this replica's streams: one query a second for bans, one bundle read.
  function createWatcher() {
    const bannedListeners = new Map<string, Set<() => void>>()
    const bundleListeners = new Set<(sequence: number) => void>()
    let timer: NodeJS.Timeout | undefined
    let sequence = -1
    const notifyBanned = (id: string) => {
      for (const l of bannedListeners.get(id) ?? []) l()
    }
    async function tick() {
      if (bannedListeners.size > 0) {
        const rows = await store.db
          .selectFrom('agent')
          .select('id')
          .where('banned', '=', true)
          .where('id', 'in', [...bannedListeners.keys()])
          .execute()
        for (const r of rows) notifyBanned(r.id)
      }
      if (deps.ca && bundleListeners.size > 0) {
        const b = await deps.ca.bundle()
        if (b.sequence !== sequence) {
          sequence = b.sequence
          for (const l of bundleListeners) l(sequence)
        }
      }
    }
    function ensure() {
      if (timer) return
      timer = setInterval(() => {
        tick().catch((err) => app.log.warn({ err }, 'agent stream watcher failed'))
      }, 1000)
      timer.unref()
    }
    return {
      banned: notifyBanned,
      onBanned(id: string, l: () => void) {
        ensure()
        let set = bannedListeners.get(id)
        if (!set) bannedListeners.set(id, (set = new Set()))
        set.add(l)
        return () => {
          set.delete(l)
          if (set.size === 0) bannedListeners.delete(id)
        }
      },
      onBundle(l: (sequence: number) => void) {
        ensure()
        bundleListeners.add(l)
        return () => bundleListeners.delete(l)
      },
      stop() {
        if (timer) clearInterval(timer)
        timer = undefined
      },
    }
  }

  await app.register(async (plain) => {
    const scope = plain as unknown as TesseraApp
    scope.addHook('preHandler', async (request) => {
      if (request.routeOptions.config.agentPublic) return
      const header = request.headers.authorization
      const proof =
        typeof header === 'string' ? /^Bearer +([\x21-\x7e]+) *$/i.exec(header)?.[1] : undefined
      authenticated.set(request, await need().authenticate(proof, request.method, request.url))
    })

    scope.post(
      '/v1/agent/attest',
      {
        config: { agentPublic: true },
        schema: {
          tags: ['agent-api'],
          summary: 'Attest a node: evidence in, an agent SVID out (or a challenge first)',
          description:
            'Public: the evidence is the credential. `attestationType` picks the node attestor (join_token, oidc, x509pop). x509pop answers `{challenge}` first; send the same request again with `challengeResponse`.',
          body: Type.Object(
            {
              attestationType: Type.String({ maxLength: 64 }),
              evidence: Type.Unknown(),
              challengeResponse: Type.Optional(Type.Unknown()),
              publicKey: PublicKey,
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Union([
              Type.Object({ challenge: Type.Unknown() }),
              Type.Object({
                agent: AgentSchema,
                svid: SvidSchema,
                reattestable: Type.Boolean(),
                bundle: BundleSchema,
              }),
            ]),
            ...problemResponses(400, 401, 403, 415, 503),
          },
        },
      },
      async (request) => {
        const s = need()
        const result = await s.attest(request.body)
        if ('challenge' in result) return { challenge: result.challenge }
        request.log.info(
          { agentId: result.agent.id, spiffeId: result.agent.spiffeId },
          'agent attested',
        )
        return {
          agent: result.agent,
          svid: svidJson(result.svid),
          reattestable: result.reattestable,
          bundle: bundleJson(await s.bundle()),
        }
      },
    )

    scope.post(
      '/v1/agent/renew',
      {
        schema: {
          tags: ['agent-api'],
          summary: 'Renew the agent SVID for a new key (the old SVID stops working)',
          security: agentSecurity,
          body: Type.Object({ publicKey: PublicKey }, { additionalProperties: false }),
          response: { 200: Type.Object({ svid: SvidSchema }), ...problemResponses(400, 401, 403) },
        },
      },
      async (request) => ({
        svid: svidJson(await need().renew(agentOf(request), request.body.publicKey)),
      }),
    )

    const sinceQuery = Type.Object(
      { since: Type.Integer({ minimum: 0, default: 0 }) },
      { additionalProperties: false },
    )

    scope.get(
      '/v1/agent/entries',
      {
        schema: {
          tags: ['agent-api'],
          summary: "The agent's entries: every id it may serve, and those changed after `since`",
          security: agentSecurity,
          querystring: sinceQuery,
          response: {
            200: Type.Object({
              revision: Type.Integer(),
              ids: Type.Array(Type.String()),
              upserts: Type.Array(EntrySchema),
            }),
            ...problemResponses(400, 401, 403),
          },
        },
      },
      async (request) => {
        const sync = need().sync(agentOf(request), request.query.since)
        return { ...sync, upserts: sync.upserts.map(entryJson) }
      },
    )

    scope.get(
      '/v1/agent/entries/stream',
      {
        schema: {
          tags: ['agent-api'],
          summary: "Stream of the agent's entry deltas (NDJSON, long-lived)",
          description:
            'First line `{"type":"sync",revision,ids,upserts,bundleSequence}`: the ids the agent may serve now and the entries changed after `since`. Then `{"type":"delta",delta}` lines as entries change, `{"type":"bundle",sequence}` when the trust bundle changes, `{"type":"heartbeat",revision}` every 15 s, and a last `{"type":"end",code}` when the server ends the stream (ban, SVID expiry, shutdown). See docs/entries.md.',
          security: agentSecurity,
          querystring: sinceQuery,
          produces: [ndjson],
          response: {
            200: {
              description: 'NDJSON stream',
              content: { [ndjson]: { schema: { type: 'string' } } },
            },
            ...problemResponses(400, 401, 403),
          },
        },
      },
      async (request, reply) => {
        streamEntries(request, reply, need(), agentOf(request), request.query.since)
      },
    )

    scope.post(
      '/v1/agent/x509-svids',
      {
        schema: {
          tags: ['agent-api'],
          summary: 'Sign X509-SVIDs for entries this agent may serve (batch)',
          description:
            'All or nothing: an entry the agent may not serve refuses the batch with TSR_AGENT_NOT_AUTHORIZED listing it.',
          security: agentSecurity,
          body: Type.Object(
            {
              requests: Type.Array(
                Type.Object(
                  { entryId: Type.String({ maxLength: 100 }), publicKey: PublicKey },
                  { additionalProperties: false },
                ),
                { minItems: 1, maxItems: 500 },
              ),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({ svids: Type.Array(SvidSchema) }),
            ...problemResponses(400, 401, 403),
          },
        },
      },
      async (request) => {
        const svids = await need().signX509Svids(agentOf(request), request.body.requests)
        return { svids: svids.map(svidJson) }
      },
    )

    scope.post(
      '/v1/agent/jwt-svids',
      {
        schema: {
          tags: ['agent-api'],
          summary: 'Mint a JWT-SVID for an entry this agent may serve',
          security: agentSecurity,
          body: Type.Object(
            {
              entryId: Type.String({ maxLength: 100 }),
              audience: Type.Array(Type.String({ minLength: 1, maxLength: 1000 }), {
                minItems: 1,
                maxItems: 20,
              }),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              token: Type.String(),
              spiffeId: Type.String(),
              jti: Type.String(),
              kid: Type.String(),
              issuedAt: Type.String({ format: 'date-time' }),
              expiresAt: Type.String({ format: 'date-time' }),
            }),
            ...problemResponses(400, 401, 403),
          },
        },
      },
      async (request) => {
        const jwt = await need().mintJwtSvid(agentOf(request), request.body)
        return {
          ...jwt,
          issuedAt: jwt.issuedAt.toISOString(),
          expiresAt: jwt.expiresAt.toISOString(),
        }
      },
    )

    scope.get(
      '/v1/agent/bundle',
      {
        schema: {
          tags: ['agent-api'],
          summary: 'The trust bundle of this trust domain',
          security: agentSecurity,
          response: { 200: BundleSchema, ...problemResponses(401, 403) },
        },
      },
      async () => bundleJson(await need().bundle()),
    )

    scope.get(
      '/v1/agent/federated-bundles',
      {
        schema: {
          tags: ['agent-api'],
          summary: 'The bundles of the trust domains this one federates with',
          security: agentSecurity,
          response: {
            200: Type.Object({ items: Type.Array(BundleSchema) }),
            ...problemResponses(401, 403),
          },
        },
      },
      async () => {
        need()
        const bundles = deps.federatedBundles ? await deps.federatedBundles() : new Map()
        return { items: [...bundles.values()].map(bundleJson) }
      },
    )

    registerAgentSecretRoute(scope, {
      ...(deps.secrets ? { secrets: deps.secrets } : {}),
      servedSpiffeIds: (request) =>
        new Set(
          [...(index?.authorizedFor(agentOf(request), clock.now()).values() ?? [])].map(
            (e) => e.spiffeId,
          ),
        ),
    })
  })

  function streamEntries(
    request: FastifyRequest,
    reply: FastifyReply,
    s: AgentService,
    agent: AuthenticatedAgent,
    since: number,
  ): void {
    const idx = index!
    reply.hijack()
    const raw = reply.raw
    raw.writeHead(200, {
      'content-type': ndjson,
      'cache-control': 'no-store',
      'x-request-id': request.id,
    })
    const write = (line: unknown) => raw.write(JSON.stringify(line) + '\n')
    const first = s.sync(agent, since)
    const sent = new Map<string, number>()
    for (const id of first.ids) sent.set(id, idx.get(id)!.revision)
    write({
      type: 'sync',
      revision: first.revision,
      ids: first.ids,
      upserts: first.upserts.map(entryJson),
    })

    const cleanups: (() => void)[] = []
    let ended = false
    const end = (code?: string) => {
      if (ended) return
      ended = true
      for (const c of cleanups) c()
      streams.delete(end)
      if (code) write({ type: 'end', code })
      raw.end()
    }
    streams.add(end)
    cleanups.push(
      idx.subscribe((_ids, revision) => {
        const now = clock.now()
        const authorized = idx.authorizedFor(agent, now)
        const deltas: EntryDelta[] = []
        for (const [id, e] of authorized) {
          if (sent.get(id) !== e.revision)
            deltas.push({ op: 'upsert', revision: e.revision, entry: e })
        }
        for (const id of sent.keys()) {
          if (!authorized.has(id)) deltas.push({ op: 'delete', revision, id })
        }
        deltas.sort((a, b) => a.revision - b.revision)
        for (const d of deltas) {
          if (d.op === 'upsert') sent.set(d.entry.id, d.revision)
          else sent.delete(d.id)
          write({ type: 'delta', delta: deltaJson(d) })
        }
      }),
    )
    cleanups.push(watcher.onBanned(agent.id, () => end('TSR_AGENT_BANNED')))
    cleanups.push(watcher.onBundle((sequence) => write({ type: 'bundle', sequence })))
    const heartbeat = setInterval(
      () => write({ type: 'heartbeat', revision: idx.revision }),
      deps.heartbeatMs ?? 15_000,
    )
    cleanups.push(() => clearInterval(heartbeat))
    // The stream was authorised by an SVID: it ends when that SVID does.
    const expiry = setTimeout(
      () => end('TSR_AGENT_UNAUTHENTICATED'),
      Math.max(0, Math.min(agent.svidNotAfter.getTime() - clock.now().getTime(), 2 ** 31 - 1)),
    )
    cleanups.push(() => clearTimeout(expiry))
    request.raw.on('close', () => end())
    raw.on('error', () => end())
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** An agent API route that needs no agent proof (attest). */
    agentPublic?: boolean
  }
}
