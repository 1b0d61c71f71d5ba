import { Type, type Static } from 'typebox'
import { TesseraError } from '../../errors.js'
import type { Entries, EntryInput, EntryPatch } from '../../entries/entry-types.js'
import { parseSelector } from '../../entries/entry-validate.js'
import type { EntryDelta, RegistrationEntry } from '../../spiffe/types.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'

const DateTime = Type.String({ format: 'date-time' })
const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(s: T) =>
  Type.Union([s, Type.Null()])

export const SelectorSchema = Type.Object(
  { type: Type.String({ description: 'e.g. unix, k8s' }), value: Type.String() },
  { additionalProperties: false },
)

export const EntrySchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  revision: Type.Integer({ description: 'the revision of this version' }),
  spiffeId: Type.String(),
  parentId: Type.String(),
  selectors: Type.Array(SelectorSchema),
  x509SvidTtl: Type.Optional(Type.Integer({ description: 'seconds' })),
  jwtSvidTtl: Type.Optional(Type.Integer({ description: 'seconds' })),
  dnsNames: Type.Array(Type.String()),
  federatesWith: Type.Array(Type.String()),
  hint: Type.Optional(Type.String()),
  admin: Type.Boolean(),
  downstream: Type.Boolean(),
  owner: Type.String(),
  expiresAt: Type.Optional(DateTime),
})

export const EntryDeltaSchema = Type.Union([
  Type.Object({ op: Type.Literal('upsert'), revision: Type.Integer(), entry: EntrySchema }),
  Type.Object({ op: Type.Literal('delete'), revision: Type.Integer(), id: Type.String() }),
])

// Selectors are sent as `type:value` strings or as objects; both are checked in the domain.
const SelectorInput = Type.Union([Type.String({ maxLength: 1100 }), SelectorSchema])

const writable = {
  spiffeId: Type.String({ maxLength: 2048 }),
  parentId: Type.String({ maxLength: 2048 }),
  selectors: Type.Array(SelectorInput, { maxItems: 32 }),
  owner: Type.String({ maxLength: 320, description: 'required: who answers for this identity' }),
  dnsNames: Type.Array(Type.String({ maxLength: 253 }), { maxItems: 64 }),
  federatesWith: Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 64 }),
  admin: Type.Boolean(),
  downstream: Type.Boolean(),
}

const CreateBody = Type.Object(
  {
    spiffeId: writable.spiffeId,
    parentId: writable.parentId,
    selectors: writable.selectors,
    owner: writable.owner,
    x509SvidTtl: Type.Optional(Type.Integer()),
    jwtSvidTtl: Type.Optional(Type.Integer()),
    dnsNames: Type.Optional(writable.dnsNames),
    federatesWith: Type.Optional(writable.federatesWith),
    hint: Type.Optional(Type.String({ maxLength: 1024 })),
    admin: Type.Optional(writable.admin),
    downstream: Type.Optional(writable.downstream),
    expiresAt: Type.Optional(DateTime),
  },
  { additionalProperties: false },
)

const PatchBody = Type.Object(
  {
    spiffeId: Type.Optional(writable.spiffeId),
    parentId: Type.Optional(writable.parentId),
    selectors: Type.Optional(writable.selectors),
    owner: Type.Optional(writable.owner),
    x509SvidTtl: Type.Optional(nullable(Type.Integer())),
    jwtSvidTtl: Type.Optional(nullable(Type.Integer())),
    dnsNames: Type.Optional(writable.dnsNames),
    federatesWith: Type.Optional(writable.federatesWith),
    hint: Type.Optional(nullable(Type.String({ maxLength: 1024 }))),
    admin: Type.Optional(writable.admin),
    downstream: Type.Optional(writable.downstream),
    expiresAt: Type.Optional(nullable(DateTime)),
  },
  { additionalProperties: false },
)

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) })

/** The JSON form of an entry: dates as ISO strings. */
export function entryJson(entry: RegistrationEntry): Static<typeof EntrySchema> {
  const { expiresAt, ...rest } = entry
  return { ...rest, ...(expiresAt ? { expiresAt: expiresAt.toISOString() } : {}) }
}

export function deltaJson(delta: EntryDelta): Static<typeof EntryDeltaSchema> {
  return delta.op === 'upsert' ? { ...delta, entry: entryJson(delta.entry) } : delta
}

function toDate(value: string | null | undefined, field: string): Date | null | undefined {
  if (value === undefined || value === null) return value
  const d = new Date(value)
  if (Number.isNaN(d.getTime())) {
    throw new TesseraError('TSR_VALIDATION', `${field}: not an instant`, { details: { field } })
  }
  return d
}

function selectorsOf(values: readonly (string | { type: string; value: string })[]) {
  return values.map((v) => (typeof v === 'string' ? parseSelector(v) : v))
}

export function registerEntryRoutes(app: TesseraApp, deps: { entries: Entries }): void {
  const { entries } = deps

  app.post(
    '/v1/entries',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['entries'],
        summary: 'Create a registration entry (owner required)',
        security: bearerSecurity,
        body: CreateBody,
        response: { 201: EntrySchema, ...problemResponses(400, 401, 403, 409, 415) },
      },
    },
    async (request, reply) => {
      const { expiresAt: _expiresAt, ...b } = request.body
      const input: EntryInput = {
        ...b,
        selectors: selectorsOf(b.selectors),
        ...(_expiresAt === undefined ? {} : { expiresAt: toDate(_expiresAt, 'expiresAt')! }),
      }
      const entry = await entries.create(input, { actor: request.apiToken?.name })
      request.log.info({ entryId: entry.id, revision: entry.revision }, 'entry created')
      return reply.code(201).send(entryJson(entry))
    },
  )

  app.get(
    '/v1/entries',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['entries'],
        summary: 'List registration entries',
        description:
          'Filters combine with AND. Pass `nextCursor` back as `cursor` with the same filters.',
        security: bearerSecurity,
        querystring: Type.Object(
          {
            spiffeId: Type.Optional(Type.String({ maxLength: 2048 })),
            parentId: Type.Optional(Type.String({ maxLength: 2048 })),
            selector: Type.Optional(
              Type.String({ maxLength: 1100, description: 'TYPE:VALUE, e.g. unix:uid:1000' }),
            ),
            owner: Type.Optional(Type.String({ maxLength: 320 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
            cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(EntrySchema), nextCursor: nullable(Type.String()) }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const q = request.query
      const page = await entries.list({
        spiffeId: q.spiffeId,
        parentId: q.parentId,
        owner: q.owner,
        ...(q.selector === undefined ? {} : { selector: parseSelector(q.selector) }),
        limit: q.limit,
        cursor: q.cursor,
      })
      return { items: page.items.map(entryJson), nextCursor: page.nextCursor }
    },
  )

  app.get(
    '/v1/entries/changes',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['entries'],
        summary: 'Entry changes after a revision, in revision order',
        description:
          'Each change is a delta: an upsert with the entry as of that revision, or a delete. Call again with `since` = the returned `revision` while `more` is true. Agents use the streamed form of the agent API instead (docs/entries.md).',
        security: bearerSecurity,
        querystring: Type.Object(
          {
            since: Type.Integer({ minimum: 0, default: 0 }),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, default: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            deltas: Type.Array(EntryDeltaSchema),
            revision: Type.Integer(),
            more: Type.Boolean(),
          }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const changes = await entries.changes(request.query.since, request.query.limit)
      return { ...changes, deltas: changes.deltas.map(deltaJson) }
    },
  )

  app.get(
    '/v1/entries/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['entries'],
        summary: 'Show one registration entry',
        security: bearerSecurity,
        params: IdParams,
        response: { 200: EntrySchema, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const entry = await entries.get(request.params.id)
      if (!entry) {
        throw new TesseraError(
          'TSR_NOT_FOUND',
          `no registration entry ${JSON.stringify(request.params.id)}`,
        )
      }
      return entryJson(entry)
    },
  )

  app.patch(
    '/v1/entries/:id',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['entries'],
        summary: 'Change a registration entry (null clears an optional field)',
        security: bearerSecurity,
        params: IdParams,
        body: PatchBody,
        response: { 200: EntrySchema, ...problemResponses(400, 401, 403, 404, 409, 415) },
      },
    },
    async (request) => {
      const b = request.body
      const { selectors, expiresAt, ...rest } = b
      const patch: EntryPatch = {
        ...rest,
        ...(selectors === undefined ? {} : { selectors: selectorsOf(selectors) }),
        ...(expiresAt === undefined ? {} : { expiresAt: toDate(expiresAt, 'expiresAt') }),
      }
      const entry = await entries.update(request.params.id, patch, {
        actor: request.apiToken?.name,
      })
      request.log.info({ entryId: entry.id, revision: entry.revision }, 'entry updated')
      return entryJson(entry)
    },
  )

  app.delete(
    '/v1/entries/:id',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['entries'],
        summary: 'Delete a registration entry (a deleted version; history is kept)',
        security: bearerSecurity,
        params: IdParams,
        response: {
          200: Type.Object({ id: Type.String(), revision: Type.Integer() }),
          ...problemResponses(401, 403, 404),
        },
      },
    },
    async (request) => {
      const deleted = await entries.delete(request.params.id, { actor: request.apiToken?.name })
      request.log.info(deleted, 'entry deleted')
      return deleted
    },
  )
}
