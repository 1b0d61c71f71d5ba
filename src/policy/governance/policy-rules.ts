import type { IdentityKind } from '../../store/schema.js'
import type { GovernancePolicy, NamingRule } from './policy-types.js'

/**
 * The governance checks as pure functions over plain facts: the gates (registration entries and
 * token exchange) and the inventory evaluation share them. Rule ids are `policy.<rule>`.
 */
export const governanceRules = [
  'policy.naming',
  'policy.spiffe-id',
  'policy.max-ttl',
  'policy.max-key-age',
  'policy.required-owner',
  'policy.required-tags',
  'policy.registration',
  'policy.forbidden-grant',
] as const
export type GovernanceRule = (typeof governanceRules)[number]

export interface Violation {
  rule: GovernanceRule
  /** What is wrong, in words. */
  message: string
  /** What would pass. */
  fix: string
}

const segment = '[a-z0-9][a-z0-9-]*'
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')

/** A template as an anchored regex; `{team}` is one of `teams` (any segment when none is known). */
export function templateRegex(template: string, teams: readonly string[] = []): RegExp {
  let re = ''
  let last = 0
  for (const m of template.matchAll(/\{([a-z]+)\}/g)) {
    re += escape(template.slice(last, m.index))
    re +=
      m[1] === 'team' && teams.length > 0
        ? `(?:${teams.map(escape).join('|')})`
        : m[1] === 'any'
          ? '.*'
          : segment
    last = m.index + m[0].length
  }
  re += escape(template.slice(last))
  return new RegExp(`^${re}$`)
}

export function globMatch(glob: string, value: string): boolean {
  return new RegExp(`^${glob.split('*').map(escape).join('.*')}$`).test(value)
}

/** The name a naming rule looks at: a workload's SPIFFE ID, else the identity's name. */
export function namingSubject(kind: IdentityKind, name: string, ref: string): string {
  return kind === 'workload' && ref.startsWith('spiffe://') ? ref : name
}

export function checkNaming(
  policy: GovernancePolicy,
  kind: IdentityKind,
  value: string,
  teams: readonly string[],
): Violation | undefined {
  const rule: NamingRule | undefined = policy.naming?.[kind]
  if (!rule) return undefined
  const re =
    rule.pattern !== undefined
      ? new RegExp(rule.pattern, 'u')
      : templateRegex(rule.template!, teams)
  if (re.test(value)) return undefined
  const shape =
    rule.pattern !== undefined ? `the pattern ${rule.pattern}` : `the template ${rule.template}`
  return {
    rule: 'policy.naming',
    message: `${kind} name ${value} does not match ${shape}`,
    fix: `name it to match ${shape}${rule.example ? `, e.g. ${rule.example}` : ''}${
      rule.template?.includes('{team}') && teams.length > 0
        ? ` with {team} one of ${teams.join(', ')}`
        : ''
    }`,
  }
}

/** The trust-domain-relative path of a SPIFFE ID, for `/…` templates. */
function spiffePath(spiffeId: string): string {
  const m = /^spiffe:\/\/[^/]+(\/.*)?$/.exec(spiffeId)
  return m?.[1] ?? '/'
}

export function checkSpiffeIdTemplates(
  policy: GovernancePolicy,
  spiffeId: string,
  teams: readonly string[],
): Violation | undefined {
  const byTeam = policy.spiffeIds
  if (!byTeam) return undefined
  const applicable: Array<{ team: string; template: string }> = []
  for (const team of teams)
    for (const t of byTeam[team] ?? []) applicable.push({ team, template: t })
  if (applicable.length === 0)
    for (const t of byTeam['*'] ?? []) applicable.push({ team: '*', template: t })
  if (applicable.length === 0) return undefined
  for (const { team, template } of applicable) {
    const subject = template.startsWith('/') ? spiffePath(spiffeId) : spiffeId
    if (templateRegex(template, team === '*' ? teams : [team]).test(subject)) return undefined
  }
  return {
    rule: 'policy.spiffe-id',
    message: `SPIFFE ID ${spiffeId} matches none of the templates of ${teams.length ? teams.join(', ') : 'its owner'}`,
    fix: `use a SPIFFE ID of the form ${applicable.map((a) => a.template.replace('{team}', a.team === '*' ? '{team}' : a.team)).join(' or ')}`,
  }
}

export function checkTtl(
  policy: GovernancePolicy,
  kind: IdentityKind,
  ttlSeconds: number,
  what: string,
): Violation | undefined {
  const max = policy.maxTtl?.[kind]
  if (max === undefined || ttlSeconds <= max) return undefined
  return {
    rule: 'policy.max-ttl',
    message: `${what} of ${ttlSeconds} s is above the ${kind} maximum of ${max} s`,
    fix: `ask for ${max} s or less`,
  }
}

/** Registration rules covering a SPIFFE ID (longest prefix first). */
function covering(policy: GovernancePolicy, spiffeId: string) {
  return (policy.registration?.rules ?? [])
    .map((r) => ({
      r,
      len: Math.max(
        -1,
        ...r.spiffeIdPrefixes.filter((p) => spiffeId.startsWith(p)).map((p) => p.length),
      ),
    }))
    .filter((x) => x.len >= 0)
    .sort((a, b) => b.len - a.len)
    .map((x) => x.r)
}

export function checkRegistration(
  policy: GovernancePolicy,
  spiffeId: string,
  who: { owner: string; ownerTeams: readonly string[]; actor?: string },
): Violation | undefined {
  if (!policy.registration) return undefined
  const rules = covering(policy, spiffeId)
  if (rules.length === 0) {
    if (policy.registration.default !== 'deny') return undefined
    return {
      rule: 'policy.registration',
      message: `no registration rule covers ${spiffeId} and the default is deny`,
      fix: 'register under a SPIFFE ID prefix a rule covers, or add a registration rule for it',
    }
  }
  const teams = new Set([who.owner, ...who.ownerTeams])
  for (const r of rules) {
    if (r.teams?.some((t) => teams.has(t))) return undefined
    if (who.actor !== undefined && r.actors?.some((a) => globMatch(a, who.actor!))) return undefined
  }
  const allowedTeams = [...new Set(rules.flatMap((r) => r.teams ?? []))]
  return {
    rule: 'policy.registration',
    message: `${who.actor ?? 'the caller'} may not register ${spiffeId} for owner ${who.owner} (rules ${rules.map((r) => r.name).join(', ')})`,
    fix: allowedTeams.length
      ? `give the entry an owner in ${allowedTeams.join(', ')}, or use a SPIFFE ID under your team's prefix`
      : 'ask an allowed actor to register it',
  }
}

export function checkPipeline(policy: GovernancePolicy, spiffeId: string): Violation | undefined {
  if (!policy.registration) return undefined
  const rules = covering(policy, spiffeId)
  if (rules.length === 0) {
    if (policy.registration.default !== 'deny') return undefined
    return {
      rule: 'policy.registration',
      message: `no registration rule covers ${spiffeId} and the default is deny`,
      fix: 'add a registration rule whose pipelines include this pipeline',
    }
  }
  if (rules.some((r) => r.pipelines?.some((p) => globMatch(p, spiffeId)))) return undefined
  return {
    rule: 'policy.registration',
    message: `pipeline ${spiffeId} may not obtain tokens under rules ${rules.map((r) => r.name).join(', ')}`,
    fix: `list the pipeline in the pipelines of rule ${rules[0]!.name}`,
  }
}

export function missingTags(
  policy: GovernancePolicy,
  kind: IdentityKind,
  tags: ReadonlyMap<string, string>,
): string[] {
  const required = [
    ...(policy.required?.tags?.['*'] ?? []),
    ...(policy.required?.tags?.[kind] ?? []),
  ]
  return [...new Set(required)].filter((t) => !tags.has(t))
}

/** Whether a grant (actions, or the policy it comes through) is forbidden. */
export function forbiddenIn(
  policy: GovernancePolicy,
  actions: readonly string[],
  via: string | null,
): string[] {
  const out: string[] = []
  for (const f of policy.forbiddenGrants ?? []) {
    if (actions.includes(f) || (via !== null && (via === f || via.endsWith('/' + f)))) out.push(f)
  }
  return out
}
