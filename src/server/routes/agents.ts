import { Type } from 'typebox'
import { banAgent, getAgent, listAgents, type AgentView } from '../../attestation/agents.js'
import { TesseraError } from '../../errors.js'
import type { Store } from '../../store/store.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'
import { SelectorSchema } from './entries.js'

const nullableString = Type.Union([Type.String(), Type.Null()])

export const AgentSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  spiffeId: Type.String(),
  attestationType: Type.String(),
  selectors: Type.Array(SelectorSchema),
  serial: nullableString,
  expiresAt: nullableString,
  banned: Type.Boolean(),
  createdAt: Type.String(),
  lastSeenAt: nullableString,
})

export function registerAgentAdminRoutes(
  app: TesseraApp,
  deps: { store: Store; onBan?: (agent: AgentView) => void },
): void {
  app.get(
    '/v1/agents',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['agents'],
        summary: 'List attested agents with their SPIFFE IDs',
        security: bearerSecurity,
        querystring: Type.Object(
          { banned: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(AgentSchema) }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => ({
      items: await listAgents(
        deps.store,
        request.query.banned === undefined ? {} : { banned: request.query.banned },
      ),
    }),
  )

  app.get(
    '/v1/agents/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['agents'],
        summary: 'Show one agent (by id or SPIFFE ID)',
        security: bearerSecurity,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 2048 }) }),
        response: { 200: AgentSchema, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const agent = await getAgent(deps.store, request.params.id)
      if (!agent) {
        throw new TesseraError('TSR_NOT_FOUND', `no agent ${JSON.stringify(request.params.id)}`)
      }
      return agent
    },
  )

  app.post(
    '/v1/agents/:id/ban',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['agents'],
        summary: 'Ban an agent: refused by the agent API, cannot renew or re-attest',
        security: bearerSecurity,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 2048 }) }),
        response: { 200: AgentSchema, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const agent = await banAgent(deps.store, request.params.id)
      deps.onBan?.(agent)
      request.log.info({ agentId: agent.id, spiffeId: agent.spiffeId }, 'agent banned')
      return agent
    },
  )
}
