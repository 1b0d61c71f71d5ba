import { TesseraError } from '../../errors.js'
import { scimSchemas } from './scim.js'

/**
 * RFC 7644 §3.5.2 PATCH on a resource's JSON: `add`, `replace` and `remove`, with a path that is an
 * attribute (`active`), a sub-attribute (`name.givenName`), an extension attribute
 * (`urn:…:enterprise:2.0:User:costCenter`) or a filtered multi-valued attribute
 * (`emails[type eq "work"].value`, `members[value eq "…"]`; `eq` only). Operation names are
 * case-insensitive (some IdPs send `Replace`).
 */
export interface PatchOperation {
  op: string
  path?: string
  value?: unknown
}

type Json = Record<string, unknown>

function patchError(problem: string, scimType: string): never {
  throw new TesseraError('TSR_VALIDATION', problem, { details: { scimType } })
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

interface ParsedPath {
  /** Container keys from the resource root (an extension URN is one key). */
  keys: string[]
  filter?: { attr: string; value: string }
  /** Sub-attribute after a filter: `emails[…].value`. */
  sub?: string
}

const attrName = /^[A-Za-z$][\w$-]*$/

export function parsePatchPath(path: string): ParsedPath {
  if (path.length > 500) patchError('path is too long', 'invalidPath')
  let rest = path.trim()
  let urn: string | undefined
  if (/^urn:/i.test(rest)) {
    const known = [scimSchemas.enterpriseUser, scimSchemas.user, scimSchemas.group].find((u) =>
      rest.toLowerCase().startsWith(u.toLowerCase() + ':'),
    )
    if (!known) patchError(`unsupported schema in path ${path}`, 'invalidPath')
    rest = rest.slice(known.length + 1)
    // The core schema's URN adds nothing: `urn:…:User:userName` is `userName`.
    if (known === scimSchemas.enterpriseUser) urn = known
  }
  const m =
    /^([^[\]]+?)(?:\[\s*([A-Za-z$][\w$.-]*)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*\](?:\.([A-Za-z$][\w$-]*))?)?$/i.exec(
      rest,
    )
  if (!m) patchError(`unsupported path ${path} (filters support "eq" only)`, 'invalidPath')
  const keys = m[1]!.split('.')
  if (keys.some((k) => !attrName.test(k)) || keys.length > 2) {
    patchError(`invalid attribute path ${path}`, 'invalidPath')
  }
  const parsed: ParsedPath = { keys: urn ? [urn, ...keys] : keys }
  if (m[2] !== undefined) {
    if (keys.length !== 1)
      patchError(`a filter applies to a top-level attribute: ${path}`, 'invalidPath')
    parsed.filter = { attr: m[2], value: JSON.parse(`"${m[3]!}"`) as string }
    if (m[4] !== undefined) parsed.sub = m[4]
  }
  return parsed
}

/** Finds a key case-insensitively (SCIM attribute names are case-insensitive). */
function keyIn(obj: Json, key: string): string {
  const lower = key.toLowerCase()
  return Object.keys(obj).find((k) => k.toLowerCase() === lower) ?? key
}

function matches(element: unknown, filter: { attr: string; value: string }): boolean {
  if (!isObject(element)) return false
  const v = element[keyIn(element, filter.attr)]
  return typeof v === 'string'
    ? v.toLowerCase() === filter.value.toLowerCase()
    : String(v) === filter.value
}

function container(
  resource: Json,
  keys: string[],
  create: boolean,
): { parent: Json; key: string } | undefined {
  let parent = resource
  for (const k of keys.slice(0, -1)) {
    const key = keyIn(parent, k)
    if (!isObject(parent[key])) {
      if (!create) return undefined
      parent[key] = {}
    }
    parent = parent[key] as Json
  }
  return { parent, key: keyIn(parent, keys[keys.length - 1]!) }
}

const valueKey = (v: unknown) =>
  isObject(v) && 'value' in v ? JSON.stringify(v.value) : JSON.stringify(v)

function setValue(resource: Json, path: ParsedPath, value: unknown, op: 'add' | 'replace'): void {
  const target = container(resource, path.keys, true)!
  const current = target.parent[target.key]
  if (path.filter) {
    if (!Array.isArray(current)) patchError(`no values match ${path.keys.join('.')}`, 'noTarget')
    const hits = current.filter((e) => matches(e, path.filter!))
    if (hits.length === 0) {
      if (op === 'replace')
        patchError(`no values match the filter on ${path.keys.join('.')}`, 'noTarget')
      current.push(path.sub ? { [path.filter.attr]: path.filter.value, [path.sub]: value } : value)
      return
    }
    for (const h of hits as Json[]) {
      if (path.sub) h[keyIn(h, path.sub)] = value
      else if (isObject(value)) Object.assign(h, value)
      else patchError('a filtered value must be replaced by an object', 'invalidValue')
    }
    return
  }
  if (op === 'add' && Array.isArray(current)) {
    const values = Array.isArray(value) ? value : [value]
    const seen = new Set(current.map(valueKey))
    for (const v of values) if (!seen.has(valueKey(v))) current.push(v)
    return
  }
  target.parent[target.key] = value
}

function removeValue(resource: Json, path: ParsedPath, value: unknown): void {
  const target = container(resource, path.keys, false)
  if (!target || !(target.key in target.parent)) return
  const current = target.parent[target.key]
  if (path.filter) {
    if (!Array.isArray(current)) return
    if (path.sub) {
      for (const e of current)
        if (matches(e, path.filter) && isObject(e)) delete e[keyIn(e, path.sub)]
    } else target.parent[target.key] = current.filter((e) => !matches(e, path.filter!))
    return
  }
  // `remove members` with a value list removes those members (Azure AD sends this form).
  if (Array.isArray(current) && value !== undefined) {
    const drop = new Set((Array.isArray(value) ? value : [value]).map(valueKey))
    target.parent[target.key] = current.filter((e) => !drop.has(valueKey(e)))
    return
  }
  delete target.parent[target.key]
}

export const maxPatchOperations = 1000

/** Applies a PatchOp request body to a copy of `resource` and returns the copy. */
export function applyScimPatch(resource: Json, body: unknown): Json {
  if (!isObject(body)) patchError('a PATCH body is a PatchOp object', 'invalidSyntax')
  const schemas = body.schemas
  if (!Array.isArray(schemas) || !schemas.includes(scimSchemas.patchOp)) {
    patchError(`schemas must hold ${scimSchemas.patchOp}`, 'invalidSyntax')
  }
  const ops = body.Operations ?? body.operations
  if (!Array.isArray(ops) || ops.length === 0)
    patchError('Operations must be a non-empty array', 'invalidSyntax')
  if (ops.length > maxPatchOperations)
    patchError(`at most ${maxPatchOperations} operations`, 'tooMany')
  const out = structuredClone(resource)
  for (const raw of ops) {
    if (!isObject(raw)) patchError('each operation is an object', 'invalidSyntax')
    const op = typeof raw.op === 'string' ? raw.op.toLowerCase() : ''
    if (op !== 'add' && op !== 'replace' && op !== 'remove') {
      patchError(
        `op must be add, replace or remove, not ${JSON.stringify(raw.op)}`,
        'invalidSyntax',
      )
    }
    const path =
      raw.path === undefined || raw.path === null || raw.path === '' ? undefined : raw.path
    if (path !== undefined && typeof path !== 'string')
      patchError('path must be a string', 'invalidPath')
    if (op === 'remove') {
      if (path === undefined) patchError('remove needs a path', 'noTarget')
      removeValue(out, parsePatchPath(path), raw.value)
      continue
    }
    if (!('value' in raw)) patchError(`${op} needs a value`, 'invalidValue')
    if (path === undefined) {
      // No path: the value is an object of attributes (keys may be paths themselves).
      if (!isObject(raw.value))
        patchError(`${op} without a path needs an object value`, 'invalidValue')
      for (const [k, v] of Object.entries(raw.value)) {
        if (/^urn:/i.test(k) && isObject(v)) {
          for (const [ek, ev] of Object.entries(v))
            setValue(out, parsePatchPath(`${k}:${ek}`), ev, op)
        } else setValue(out, parsePatchPath(k), v, op)
      }
    } else setValue(out, parsePatchPath(path), raw.value, op)
  }
  return out
}
