import { readFile } from 'node:fs/promises'
import { parse as parseYaml } from 'yaml'
import { TesseraError } from '../../errors.js'
import { dynamicBackendTypes, type DynamicBackendType } from './dynamic-backend.js'

/**
 * The dynamic credentials configuration (YAML or JSON; docs/dynamic-credentials.md). Parsed once at
 * the edge: every problem is reported in one TSR_CONFIG error, and unknown keys are problems.
 */
export interface DynamicConfig {
  /** How often the reaper looks for expired, revoked and orphan credentials (default 5 s). */
  reaperIntervalSeconds: number
  /** A lease still `pending` after this long belongs to a crashed request (default 60 s). */
  pendingGraceSeconds: number
  /** Tag in usernames when backends are shared by several installations (`tsr_<tag>_…`). */
  installation?: string
  backends: DynamicBackendConfig[]
}

export interface DynamicBackendConfig {
  name: string
  type: DynamicBackendType
  /** Admin connection URL (a secret: never logged or returned). */
  url: string
  defaultTtlSeconds: number
  maxTtlSeconds: number
  templates: Record<string, DynamicTemplateConfig>
}

export interface DynamicTemplateConfig {
  /** SPIFFE IDs that may request it: exact, or a prefix ending in `/*`. */
  allow: string[]
  /** postgres: the template role granted to the new role. */
  role?: string
  /** postgres: extra statements, `{{role}}` replaced by the new role's quoted name. */
  statements?: string[]
  /** redis: ACL rules (`~keys:*`, `+get`, `+@read`, `-@dangerous` …). */
  rules?: string[]
}

const namePattern = /^[a-z0-9][a-z0-9_-]{0,62}$/
const identPattern = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
/**
 * Redis ACL rules a template may hold: key, channel and command rules only. Passwords (`>`, `<`,
 * `#`, `!`, `nopass`), `on`/`off` and `reset` are Tessera's to set, never the template's.
 */
const redisRulePattern =
  /^(?:%(?:R|W|RW)~[\x21-\x7e]+|~[\x21-\x7e]+|&[\x21-\x7e]+|[+-]@?[a-z][a-z0-9_-]*(?:\|[a-z0-9_-]+)?|allkeys|allchannels|allcommands|nocommands|resetkeys|resetchannels)$/i
const allowPattern = /^spiffe:\/\/[a-z0-9._-]+(?:\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*(?:\/\*)?$/

export function parseDynamicConfig(
  raw: unknown,
  env: Record<string, string | undefined> = {},
): DynamicConfig {
  const problems: string[] = []
  const obj = (v: unknown, where: string): Record<string, unknown> | undefined => {
    if (typeof v === 'object' && v !== null && !Array.isArray(v))
      return v as Record<string, unknown>
    problems.push(`${where}: must be a mapping`)
    return undefined
  }
  const known = (o: Record<string, unknown>, keys: readonly string[], where: string) => {
    for (const k of Object.keys(o))
      if (!keys.includes(k)) problems.push(`${where}: unknown setting "${k}"`)
  }
  const seconds = (v: unknown, where: string, fallback: number, max: number): number => {
    if (v === undefined) return fallback
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
      problems.push(`${where}: must be an integer from 1 to ${max}`)
      return fallback
    }
    return v
  }
  const strings = (v: unknown, where: string): string[] => {
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
      problems.push(`${where}: must be a list of strings`)
      return []
    }
    return v as string[]
  }

  const root = obj(raw, 'dynamic config') ?? {}
  known(
    root,
    ['reaperIntervalSeconds', 'pendingGraceSeconds', 'installation', 'backends'],
    'dynamic config',
  )
  const config: DynamicConfig = {
    reaperIntervalSeconds: seconds(root.reaperIntervalSeconds, 'reaperIntervalSeconds', 5, 3600),
    pendingGraceSeconds: seconds(root.pendingGraceSeconds, 'pendingGraceSeconds', 60, 3600),
    backends: [],
  }
  if (root.installation !== undefined) {
    if (typeof root.installation !== 'string' || !/^[a-z0-9]{1,8}$/.test(root.installation)) {
      problems.push('installation: 1 to 8 of [a-z0-9]')
    } else config.installation = root.installation
  }
  const backends = root.backends === undefined ? {} : obj(root.backends, 'backends')
  for (const [name, value] of Object.entries(backends ?? {})) {
    const where = `backends.${name}`
    if (!namePattern.test(name)) problems.push(`${where}: a backend name is [a-z0-9_-], 1 to 63`)
    const b = obj(value, where)
    if (!b) continue
    known(b, ['type', 'url', 'urlEnv', 'defaultTtlSeconds', 'maxTtlSeconds', 'templates'], where)
    const type = b.type as DynamicBackendType
    if (!dynamicBackendTypes.includes(type)) {
      problems.push(`${where}.type: must be one of ${dynamicBackendTypes.join(', ')}`)
    }
    let url: string | undefined
    if (typeof b.url === 'string' && b.urlEnv === undefined) url = b.url
    else if (typeof b.urlEnv === 'string' && b.url === undefined) {
      url = env[b.urlEnv] || undefined
      if (!url) problems.push(`${where}.urlEnv: the environment variable ${b.urlEnv} is not set`)
    } else problems.push(`${where}: give exactly one of url, urlEnv (the admin connection URL)`)
    const scheme = type === 'postgres' ? /^postgres(?:ql)?:\/\// : /^rediss?:\/\//
    if (url !== undefined && dynamicBackendTypes.includes(type) && !scheme.test(url)) {
      problems.push(`${where}: the URL is not a ${type} URL`)
    }
    const maxTtlSeconds = seconds(b.maxTtlSeconds, `${where}.maxTtlSeconds`, 3600, 7 * 86_400)
    const defaultTtlSeconds = seconds(
      b.defaultTtlSeconds,
      `${where}.defaultTtlSeconds`,
      Math.min(900, maxTtlSeconds),
      7 * 86_400,
    )
    if (defaultTtlSeconds > maxTtlSeconds) {
      problems.push(`${where}: defaultTtlSeconds is above maxTtlSeconds`)
    }
    const templates: Record<string, DynamicTemplateConfig> = {}
    const rawTemplates = obj(b.templates, `${where}.templates`) ?? {}
    if (Object.keys(rawTemplates).length === 0) problems.push(`${where}.templates: none given`)
    for (const [tname, tvalue] of Object.entries(rawTemplates)) {
      const tw = `${where}.templates.${tname}`
      if (!namePattern.test(tname)) problems.push(`${tw}: a template name is [a-z0-9_-], 1 to 63`)
      const t = obj(tvalue, tw)
      if (!t) continue
      const template: DynamicTemplateConfig = { allow: strings(t.allow, `${tw}.allow`) }
      if (template.allow.length === 0) problems.push(`${tw}.allow: name at least one SPIFFE ID`)
      for (const a of template.allow) {
        if (!allowPattern.test(a)) {
          problems.push(`${tw}.allow: "${a}" is not a SPIFFE ID or a prefix ending in /*`)
        }
      }
      if (type === 'postgres') {
        known(t, ['allow', 'role', 'statements'], tw)
        if (t.role !== undefined) {
          if (typeof t.role !== 'string' || !identPattern.test(t.role)) {
            problems.push(`${tw}.role: must be a plain role name`)
          } else template.role = t.role
        }
        if (t.statements !== undefined) {
          template.statements = strings(t.statements, `${tw}.statements`)
          for (const s of template.statements) {
            if (!s.includes('{{role}}')) problems.push(`${tw}.statements: "${s}" has no {{role}}`)
          }
        }
        if (template.role === undefined && !template.statements?.length) {
          problems.push(`${tw}: give a role to grant, statements, or both`)
        }
      } else if (type === 'redis') {
        known(t, ['allow', 'rules'], tw)
        template.rules = strings(t.rules, `${tw}.rules`)
        if (template.rules.length === 0) problems.push(`${tw}.rules: none given`)
        for (const r of template.rules) {
          if (!redisRulePattern.test(r)) {
            problems.push(`${tw}.rules: "${r}" is not a key, channel or command rule`)
          }
        }
      }
      templates[tname] = template
    }
    if (url !== undefined) {
      config.backends.push({ name, type, url, defaultTtlSeconds, maxTtlSeconds, templates })
    }
  }
  if (problems.length > 0) {
    throw new TesseraError('TSR_CONFIG', `dynamic credentials: ${problems.join('; ')}`, {
      details: { problems },
    })
  }
  return config
}

/** Reads and parses a configuration file (YAML or JSON). */
export async function loadDynamicConfig(
  file: string,
  env: Record<string, string | undefined> = process.env,
): Promise<DynamicConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new TesseraError('TSR_CONFIG', `dynamic credentials: cannot read ${file}`, { cause: err })
  }
  let raw: unknown
  try {
    raw = parseYaml(text)
  } catch (err) {
    throw new TesseraError('TSR_CONFIG', `dynamic credentials: ${file} is not YAML or JSON`, {
      cause: err,
    })
  }
  return parseDynamicConfig(raw, env)
}

/** Whether `spiffeId` matches one of a template's `allow` entries. */
export function allowed(allow: readonly string[], spiffeId: string): boolean {
  return allow.some((a) =>
    a.endsWith('/*') ? spiffeId.startsWith(a.slice(0, -1)) : spiffeId === a,
  )
}
