import { sql } from 'kysely'
import type { Store } from '../store/store.js'
import { cedarNamespace, type SchemaJson } from './cedar.js'

/**
 * The Cedar schema policies are validated against, derived from the identity graph: the entity
 * types Tessera builds (Identity, Owner, Team, Resource), their fixed attributes, the free-form
 * `attributes` keys found on the current identities and resources (with the Cedar type their values
 * have), the actions (built-in ones, the actions of current grants, and configured ones), and the
 * request context every decision carries. See docs/authorization.md.
 */

/** The Cedar type of a free-form attribute, as inferred from the values in the graph. */
export type AttributeType = 'String' | 'Long' | 'Boolean' | 'Set<String>'

export interface GraphShape {
  identityAttributes: ReadonlyMap<string, AttributeType>
  resourceAttributes: ReadonlyMap<string, AttributeType>
  actions: readonly string[]
}

/** Actions every schema declares, whatever the graph holds. */
export const builtinActions = [
  'read',
  'write',
  'delete',
  'list',
  'admin',
  'connect',
  'invoke',
  'deploy',
  'assume',
] as const

/** The most attribute keys taken per entity type (keeps the schema bounded on odd inventories). */
const maxAttributeKeys = 500
const maxActions = 2000

/** The request context (DESIGN §4 Authorization); keys are documented in docs/authorization.md. */
export const contextKeys = {
  trustDomain: { type: 'String', required: false },
  namespace: { type: 'String', required: false },
  environment: { type: 'String', required: false },
  selectors: { type: 'Set<String>', required: true },
  sourceNode: { type: 'String', required: false },
  sourceAddress: { type: 'String', required: false },
  time: { type: 'datetime', required: true },
  hour: { type: 'Long', required: true },
  weekday: { type: 'Long', required: true },
  delegationChain: { type: 'Set<String>', required: true },
  delegationDepth: { type: 'Long', required: true },
  delegated: { type: 'Boolean', required: true },
  actor: { type: 'String', required: false },
  intent: { type: 'String', required: false },
  scopes: { type: 'Set<String>', required: true },
  presentedAs: { type: 'String', required: true },
} as const satisfies Record<string, { type: string; required: boolean }>

/** Reads attribute keys and grant actions from the current versions of the graph. */
export async function readGraphShape(
  store: Store,
  options: { extraActions?: readonly string[] } = {},
): Promise<GraphShape> {
  const [identityAttributes, resourceAttributes, grantActions] = await Promise.all([
    attributeTypes(store, 'identity'),
    attributeTypes(store, 'resource'),
    sql<{ action: string }>`
      select distinct a.action from "grant" g, unnest(g.actions) as a(action)
      where g.valid_to is null order by 1 limit ${maxActions}`.execute(store.db),
  ])
  const actions = new Set<string>(builtinActions)
  for (const r of grantActions.rows) if (r.action !== '*' && r.action !== '') actions.add(r.action)
  for (const a of options.extraActions ?? []) actions.add(a)
  return { identityAttributes, resourceAttributes, actions: [...actions].sort() }
}

async function attributeTypes(
  store: Store,
  table: 'identity' | 'resource',
): Promise<Map<string, AttributeType>> {
  // One row per (key, JSON type), with whether every number is whole and every array all strings.
  const result = await sql<{ key: string; t: string; whole: boolean; strings: boolean }>`
    select a.key, jsonb_typeof(a.value) as t,
      bool_and(jsonb_typeof(a.value) <> 'number' or a.value::text ~ '^-?[0-9]{1,18}$') as whole,
      bool_and(jsonb_typeof(a.value) <> 'array' or not jsonb_path_exists(a.value, '$[*] ? (@.type() != "string")')) as strings
    from ${sql.table(table)} f, jsonb_each(f.attributes) a
    where f.valid_to is null and jsonb_typeof(a.value) <> 'null'
    group by 1, 2 order by 1 limit ${maxAttributeKeys * 4}`.execute(store.db)
  const byKey = new Map<string, AttributeType | null>()
  for (const row of result.rows) {
    const type =
      row.t === 'string'
        ? 'String'
        : row.t === 'boolean'
          ? 'Boolean'
          : row.t === 'number' && row.whole
            ? 'Long'
            : row.t === 'array' && row.strings
              ? 'Set<String>'
              : null
    // A key whose values disagree on their type is left out: no policy could use it safely.
    byKey.set(row.key, byKey.has(row.key) ? null : type)
  }
  const out = new Map<string, AttributeType>()
  for (const [key, type] of byKey) {
    if (type !== null && out.size < maxAttributeKeys) out.set(key, type)
  }
  return out
}

type CedarType = Record<string, unknown>

function typeOf(t: string): CedarType {
  if (t === 'Set<String>') return { type: 'Set', element: { type: 'String' } }
  if (t === 'datetime') return { type: 'Extension', name: 'datetime' }
  return { type: t }
}

function record(attrs: Record<string, { type: string; required: boolean }>): CedarType {
  const attributes: Record<string, CedarType> = {}
  for (const [k, v] of Object.entries(attrs))
    attributes[k] = { ...typeOf(v.type), required: v.required }
  return { type: 'Record', attributes }
}

function freeForm(map: ReadonlyMap<string, AttributeType>): CedarType {
  const attributes: Record<string, CedarType> = {}
  for (const [k, t] of map) attributes[k] = { ...typeOf(t), required: false }
  return { type: 'Record', attributes }
}

/** The Cedar JSON schema for a graph shape. */
export function buildCedarSchema(shape: GraphShape): SchemaJson<string> {
  const identity = record({
    kind: { type: 'String', required: true },
    name: { type: 'String', required: true },
    state: { type: 'String', required: true },
    inGraph: { type: 'Boolean', required: true },
    source: { type: 'String', required: false },
    spiffeId: { type: 'String', required: false },
    trustDomain: { type: 'String', required: false },
    ownerRef: { type: 'String', required: false },
    createdBy: { type: 'String', required: false },
  }) as { attributes: Record<string, CedarType> }
  identity.attributes.owner = { type: 'Entity', name: 'Owner', required: false }
  identity.attributes.attributes = { ...freeForm(shape.identityAttributes), required: true }
  const resource = record({
    resourceType: { type: 'String', required: true },
    name: { type: 'String', required: true },
    environment: { type: 'String', required: false },
    inGraph: { type: 'Boolean', required: true },
    source: { type: 'String', required: false },
    parentRef: { type: 'String', required: false },
  }) as { attributes: Record<string, CedarType> }
  resource.attributes.attributes = { ...freeForm(shape.resourceAttributes), required: true }
  const actions: Record<string, unknown> = {}
  for (const a of shape.actions) {
    actions[a] = {
      appliesTo: {
        principalTypes: ['Identity'],
        resourceTypes: ['Resource'],
        context: { type: 'Context' },
      },
    }
  }
  return {
    [cedarNamespace]: {
      commonTypes: { Context: record(contextKeys) },
      entityTypes: {
        Identity: { memberOfTypes: ['Team'], shape: identity },
        Owner: {
          memberOfTypes: ['Team'],
          shape: record({
            ownerType: { type: 'String', required: true },
            name: { type: 'String', required: true },
            status: { type: 'String', required: true },
            email: { type: 'String', required: false },
          }),
        },
        Team: {
          memberOfTypes: ['Team'],
          shape: record({
            name: { type: 'String', required: true },
            status: { type: 'String', required: true },
          }),
        },
        Resource: { memberOfTypes: ['Resource'], shape: resource },
      },
      actions,
    },
  } as unknown as SchemaJson<string>
}

/** Schema of the current graph: what `policy activate` validates against. */
export async function deriveCedarSchema(
  store: Store,
  options: { extraActions?: readonly string[] } = {},
): Promise<SchemaJson<string>> {
  return buildCedarSchema(await readGraphShape(store, options))
}
