import { TesseraError } from '../../errors.js'
import { applyMemberships, personRef, slugify, type OwnerRecord } from './owner-records.js'

/**
 * SCIM 2.0 (RFC 7643) Users and Groups as Tessera reads them: from an IdP export (a ListResponse,
 * one resource, or an array of resources) or pushed to the SCIM endpoint. Only what ownership needs
 * is read; unknown attributes are ignored, as RFC 7643 §2 lets a consumer do.
 */

export const scimSchemas = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  enterpriseUser: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
  listResponse: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  patchOp: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  error: 'urn:ietf:params:scim:api:messages:2.0:Error',
} as const

/** Longest string value accepted from a SCIM document (names, emails, ids). */
export const maxScimString = 1024
/** Most resources one document may hold. */
export const maxScimResources = 200_000

export interface ScimGroupRecord {
  team: OwnerRecord
  /** Member values as given (SCIM ids of users, or emails). */
  members: string[]
}

export interface ScimDocument {
  people: OwnerRecord[]
  groups: ScimGroupRecord[]
}

type Json = Record<string, unknown>

function fail(where: string, problem: string, scimType = 'invalidValue'): never {
  throw new TesseraError('TSR_VALIDATION', `${where}: ${problem}`, {
    details: { field: where, scimType },
  })
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function str(v: unknown, where: string, required: true): string
function str(v: unknown, where: string, required?: false): string | undefined
function str(v: unknown, where: string, required = false): string | undefined {
  if (v === undefined || v === null) {
    if (required) fail(where, 'is required')
    return undefined
  }
  if (typeof v !== 'string') fail(where, 'must be a string')
  const s = v.trim()
  if (s.length > maxScimString) fail(where, `is longer than ${maxScimString} characters`)
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(s)) fail(where, 'holds control characters')
  if (s === '') {
    if (required) fail(where, 'must not be empty')
    return undefined
  }
  return s
}

/** SCIM booleans are JSON booleans; some IdPs send "true"/"false" strings, which we also take. */
function bool(v: unknown, where: string): boolean | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v === 'boolean') return v
  if (v === 'true' || v === 'True') return true
  if (v === 'false' || v === 'False') return false
  return fail(where, 'must be a boolean')
}

function schemasOf(resource: Json): string[] {
  const s = resource.schemas
  return Array.isArray(s) ? s.filter((x): x is string => typeof x === 'string') : []
}

export function isUserResource(resource: Json): boolean {
  const schemas = schemasOf(resource)
  if (schemas.includes(scimSchemas.user)) return true
  if (schemas.includes(scimSchemas.group)) return false
  return 'userName' in resource
}

/** The primary email, else the first work email, else the first. */
function primaryEmail(emails: unknown, where: string): string | undefined {
  if (emails === undefined || emails === null) return undefined
  if (!Array.isArray(emails)) fail(where, 'must be an array')
  if (emails.length > 100) fail(where, 'has more than 100 values')
  const parsed = emails.map((e, i) => {
    if (!isObject(e)) fail(`${where}[${i}]`, 'must be an object')
    const value = str(e.value, `${where}[${i}].value`)
    if (value !== undefined && !/^[^\s@]+@[^\s@]+$/.test(value)) {
      fail(`${where}[${i}].value`, 'is not an email address')
    }
    return { value, primary: bool(e.primary, `${where}[${i}].primary`) === true, type: e.type }
  })
  const withValue = parsed.filter((e) => e.value !== undefined)
  const chosen =
    withValue.find((e) => e.primary) ?? withValue.find((e) => e.type === 'work') ?? withValue[0]
  return chosen?.value?.toLowerCase()
}

/** One SCIM User as an owner record. `active: false` means departed. */
export function parseScimUser(resource: unknown, where = 'User'): OwnerRecord {
  if (!isObject(resource)) fail(where, 'must be an object', 'invalidSyntax')
  const userName = str(resource.userName, `${where}.userName`, true)
  const email = primaryEmail(resource.emails, `${where}.emails`)
  const name = isObject(resource.name) ? resource.name : {}
  const formatted =
    str(resource.displayName, `${where}.displayName`) ??
    str(name.formatted, `${where}.name.formatted`) ??
    ([
      str(name.givenName, `${where}.name.givenName`),
      str(name.familyName, `${where}.name.familyName`),
    ]
      .filter((x) => x !== undefined)
      .join(' ') ||
      userName)
  const active = bool(resource.active, `${where}.active`) ?? true
  const enterprise = resource[scimSchemas.enterpriseUser]
  const ext = isObject(enterprise) ? enterprise : {}
  const record: OwnerRecord = {
    ref: personRef(email, userName),
    ownerType: 'person',
    name: formatted,
    status: active ? 'active' : 'departed',
    userName,
  }
  if (email !== undefined) record.email = email
  const id = str(resource.id, `${where}.id`)
  if (id !== undefined) record.scimId = id
  const externalId = str(resource.externalId, `${where}.externalId`)
  if (externalId !== undefined) record.externalId = externalId
  const costCenter = str(ext.costCenter, `${where}.costCenter`)
  if (costCenter !== undefined) record.costCenter = costCenter
  const department = str(ext.department, `${where}.department`)
  if (department !== undefined) record.department = department
  return record
}

/** One SCIM Group as a team plus its member values. */
export function parseScimGroup(resource: unknown, where = 'Group'): ScimGroupRecord {
  if (!isObject(resource)) fail(where, 'must be an object', 'invalidSyntax')
  const displayName = str(resource.displayName, `${where}.displayName`, true)
  const ref = slugify(displayName)
  if (ref === '') fail(`${where}.displayName`, 'has no letters or digits to make a team ref of')
  const team: OwnerRecord = { ref, ownerType: 'team', name: displayName, status: 'active' }
  const id = str(resource.id, `${where}.id`)
  if (id !== undefined) team.scimId = id
  const externalId = str(resource.externalId, `${where}.externalId`)
  if (externalId !== undefined) team.externalId = externalId
  const members: string[] = []
  if (resource.members !== undefined && resource.members !== null) {
    if (!Array.isArray(resource.members)) fail(`${where}.members`, 'must be an array')
    resource.members.forEach((m, i) => {
      if (!isObject(m)) fail(`${where}.members[${i}]`, 'must be an object')
      const value = str(m.value, `${where}.members[${i}].value`, true)
      members.push(value)
    })
  }
  return { team, members }
}

/**
 * Reads a SCIM document: a ListResponse, a single User or Group, or an array of them. Group
 * members become team membership of the people in the same document.
 */
export function parseScimDocument(doc: unknown): ScimDocument & { unmatchedMembers: string[] } {
  let resources: unknown[]
  if (Array.isArray(doc)) resources = doc
  else if (isObject(doc) && schemasOf(doc).includes(scimSchemas.listResponse)) {
    if (!Array.isArray(doc.Resources)) fail('ListResponse.Resources', 'must be an array')
    resources = doc.Resources
  } else if (isObject(doc)) resources = [doc]
  else fail('document', 'must be a SCIM resource, a ListResponse or an array', 'invalidSyntax')
  if (resources.length > maxScimResources) {
    fail('document', `holds more than ${maxScimResources} resources`, 'tooMany')
  }
  const people: OwnerRecord[] = []
  const groups: ScimGroupRecord[] = []
  resources.forEach((r, i) => {
    if (!isObject(r)) fail(`Resources[${i}]`, 'must be an object', 'invalidSyntax')
    if (isUserResource(r)) people.push(parseScimUser(r, `Resources[${i}]`))
    else groups.push(parseScimGroup(r, `Resources[${i}]`))
  })
  const unmatchedMembers = applyMemberships(
    people,
    groups.map((g) => ({ team: g.team.ref, members: g.members })),
  )
  return { people, groups, unmatchedMembers }
}
