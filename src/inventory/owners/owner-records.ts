import type { OwnerObservation } from '../observation.js'

/**
 * A person or a team as an import file or an IdP describes it, before it becomes an `owner`
 * observation. Refs follow the inventory's convention: a person's ref is their email (lower case),
 * else their user name; a team's ref is the slug of its name (`Payments Core` → `payments-core`).
 */
export interface OwnerRecord {
  ref: string
  ownerType: 'person' | 'team'
  name: string
  email?: string
  status: 'active' | 'departed' | 'suspended'
  /** A person's primary team (the first of `teams`). */
  team?: string
  /** Every team a person belongs to. */
  teams?: string[]
  /** The id the IdP gave the resource (SCIM `id`), kept to resolve group members. */
  scimId?: string
  externalId?: string
  userName?: string
  costCenter?: string
  department?: string
  /** GitHub login or team slug, to match CODEOWNERS entries (`@login`, `@org/team`). */
  github?: string
}

/** `Payments Core` → `payments-core`; the inventory's team refs look like this. */
export function slugify(name: string): string {
  return name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 200)
}

export function personRef(email: string | undefined, userName: string): string {
  return (email ?? userName).trim().toLowerCase()
}

/** The owner observation for a record; the extra fields ride in `attributes`. */
export function toOwnerObservation(
  record: OwnerRecord,
  source: string,
  extra: Record<string, unknown> = {},
): OwnerObservation {
  const attributes: Record<string, unknown> = { ...extra }
  if (record.scimId !== undefined) attributes.scimId = record.scimId
  if (record.externalId !== undefined) attributes.externalId = record.externalId
  if (record.userName !== undefined) attributes.userName = record.userName
  if (record.costCenter !== undefined) attributes.costCenter = record.costCenter
  if (record.department !== undefined) attributes.department = record.department
  if (record.github !== undefined) attributes.github = record.github
  if (record.teams !== undefined && record.teams.length > 0) attributes.teams = record.teams
  return {
    type: 'owner',
    source,
    ref: record.ref,
    ownerType: record.ownerType,
    name: record.name,
    status: record.status,
    ...(record.email !== undefined ? { email: record.email } : {}),
    ...(record.team !== undefined ? { team: record.team } : {}),
    ...(Object.keys(attributes).length > 0 ? { attributes } : {}),
  }
}

/**
 * Attaches group membership to people: each member of a team gets the team in `teams`, the first
 * (in team order) becoming its primary `team`. Members are matched by SCIM id, ref or email.
 * Returns the refs of members that matched no person.
 */
export function applyMemberships(
  people: OwnerRecord[],
  memberships: ReadonlyArray<{ team: string; members: readonly string[] }>,
): string[] {
  const byKey = new Map<string, OwnerRecord>()
  for (const p of people) {
    byKey.set(p.ref, p)
    if (p.scimId !== undefined) byKey.set(p.scimId, p)
    if (p.email !== undefined) byKey.set(p.email.toLowerCase(), p)
  }
  const unmatched: string[] = []
  for (const { team, members } of memberships) {
    for (const m of members) {
      const person = byKey.get(m) ?? byKey.get(m.toLowerCase())
      if (!person) {
        unmatched.push(m)
        continue
      }
      const teams = (person.teams ??= [])
      if (!teams.includes(team)) teams.push(team)
      person.team ??= team
    }
  }
  return unmatched
}
