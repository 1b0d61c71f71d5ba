import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { Option, type Command } from 'commander'
import { TesseraError, isTesseraError } from '../../errors.js'
import type {
  Authorizer,
  AuthzService,
  AuthzDecision,
  AuthzRequest,
  AuthzTestResult,
  CedarPolicy,
  CedarPolicyVersion,
  PolicyProblem,
  PrincipalInput,
  ValidationResult,
} from '../../policy/index.js'
import type { Clock } from '../../runtime/clock.js'
import type { Store } from '../../store/store.js'
import type { CommandContext } from '../context.js'
import { exitCodes } from '../exit-codes.js'
import { intOption } from '../options.js'
import type { RemoteHttp } from '../remote.js'
import { renderTable } from '../table.js'

/**
 * Authorization as the CLI sees it, the same over HTTP (`--server`) or on a store opened here.
 * `authorizeWith` evaluates candidate policies instead of the active ones (local store only).
 */
export interface AuthzAdmin {
  authorize(requests: AuthzRequest[], at?: Date): Promise<AuthzDecision[]>
  authorizeWith?(
    policies: CedarPolicy[],
    requests: AuthzRequest[],
    at?: Date,
  ): Promise<AuthzDecision[]>
  addPolicy(input: { name: string; body: string; activate?: boolean }): Promise<CedarPolicy>
  listPolicies(): Promise<CedarPolicyVersion[]>
  showPolicy(name: string, version?: number): Promise<CedarPolicy | undefined>
  activatePolicy(name: string, version?: number): Promise<CedarPolicy>
  deactivatePolicy(name: string): Promise<void>
  validatePolicy(body: string, name?: string): Promise<ValidationResult>
  schema(): Promise<unknown>
}

/** On a store opened here. Decisions are not recorded: a CLI process has no audit log of its own. */
export function localAuthzAdmin(store: Store, clock: Clock, actor: string): AuthzAdmin {
  // Loaded on demand: the Cedar engine is compiled at import, and other commands need none of it.
  let service: Promise<AuthzService> | undefined
  const authz = () =>
    (service ??= import('../../policy/index.js').then((m) =>
      m.createAuthzService({ store, clock }),
    ))
  const decideEach = async (authorizer: Authorizer, requests: AuthzRequest[], at?: Date) => {
    const out: AuthzDecision[] = []
    for (const r of requests) out.push(await authorizer.authorize(r, at ? { at } : {}))
    return out
  }
  return {
    authorize: async (requests, at) => decideEach((await authz()).authorizer, requests, at),
    async authorizeWith(policies, requests, at) {
      const m = await import('../../policy/index.js')
      const { createRevocationList } = await import('../../lifecycle/revocations.js')
      const schema = await (await authz()).schema()
      const problems = policies.flatMap((p) => m.validationProblems(p.body, schema, p.name))
      if (problems.length > 0) {
        throw new TesseraError('TSR_POLICY_INVALID', 'the test policies do not validate', {
          details: { errors: problems },
        })
      }
      const authorizer = m.createAuthorizer({
        policies: { active: async () => policies, activeFingerprint: async () => 'candidates' },
        entities: m.createEntityCache({ store }),
        revocations: createRevocationList({ store, clock }),
        clock,
      })
      return decideEach(authorizer, requests, at)
    },
    addPolicy: async (input) => (await authz()).policies.add({ ...input, createdBy: actor }),
    listPolicies: async () => (await authz()).policies.list(),
    showPolicy: async (name, version) => (await authz()).policies.show(name, version),
    activatePolicy: async (name, version) =>
      (await authz()).policies.activate(name, version, actor),
    deactivatePolicy: async (name) => (await authz()).policies.deactivate(name, actor),
    validatePolicy: async (body, name) => (await authz()).policies.validate(body, name),
    schema: async () => (await authz()).schema(),
  }
}

export function remoteAuthzAdmin(http: RemoteHttp): AuthzAdmin {
  const path = (name: string) => `v1/authz/policies/${encodeURIComponent(name)}`
  return {
    async authorize(requests, at) {
      if (at) {
        throw new TesseraError(
          'TSR_VALIDATION',
          'deciding as of another instant (`at`) needs a local store (--data-dir or --database)',
        )
      }
      const out: AuthzDecision[] = []
      for (let i = 0; i < requests.length; i += 1000) {
        const page = await http.json<{ decisions: AuthzDecision[] }>('POST', 'v1/authorize/batch', {
          body: { requests: requests.slice(i, i + 1000) },
        })
        out.push(...page.decisions)
      }
      return out
    },
    addPolicy: (input) => http.json('POST', 'v1/authz/policies', { body: input }),
    async listPolicies() {
      return (await http.json<{ items: CedarPolicyVersion[] }>('GET', 'v1/authz/policies')).items
    },
    async showPolicy(name, version) {
      try {
        return await http.json<CedarPolicy>('GET', path(name), {
          query: { version: version === undefined ? undefined : String(version) },
        })
      } catch (err) {
        if (isTesseraError(err, 'TSR_NOT_FOUND')) return undefined
        throw err
      }
    },
    activatePolicy: (name, version) =>
      http.json('POST', `${path(name)}/activate`, {
        body: version === undefined ? {} : { version },
      }),
    async deactivatePolicy(name) {
      await http.json('POST', `${path(name)}/deactivate`)
    },
    validatePolicy: (body, name) =>
      http.json('POST', 'v1/authz/policies/validate', {
        body: { body, ...(name ? { name } : {}) },
      }),
    schema: () => http.json('GET', 'v1/authz/schema'),
  }
}

interface CheckOptions {
  principal?: string
  jwtSvid?: string
  exchangedToken?: string
  x509Svid?: string
  audience?: string
  action: string
  resource: string
  context?: string
}

async function principalOf(opts: CheckOptions): Promise<PrincipalInput> {
  const given = [opts.principal, opts.jwtSvid, opts.exchangedToken, opts.x509Svid].filter(
    (v) => v !== undefined,
  )
  if (given.length !== 1) {
    throw new TesseraError(
      'TSR_VALIDATION',
      'give exactly one of --principal, --jwt-svid, --exchanged-token, --x509-svid',
    )
  }
  const audience = opts.audience ? { audience: opts.audience } : {}
  if (opts.jwtSvid !== undefined) return { type: 'jwt_svid', token: opts.jwtSvid, ...audience }
  if (opts.exchangedToken !== undefined) {
    return { type: 'exchanged_token', token: opts.exchangedToken, ...audience }
  }
  if (opts.x509Svid !== undefined) {
    return { type: 'x509_svid', chain: await readText(opts.x509Svid, '--x509-svid') }
  }
  return opts.principal!
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `${what}: cannot read ${file}: ${(err as Error).message}`,
    )
  }
}

function parseContext(text: string | undefined): AuthzRequest['context'] {
  if (text === undefined) return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new TesseraError('TSR_VALIDATION', '--context is a JSON object')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TesseraError('TSR_VALIDATION', '--context is a JSON object')
  }
  return value as AuthzRequest['context']
}

function problemLines(problems: readonly PolicyProblem[], format: (p: PolicyProblem) => string) {
  return problems.map((p) => `  ${format(p)}${p.snippet ? `\n    > ${p.snippet}` : ''}`).join('\n')
}

function needAuthz(backend: { authz?: AuthzAdmin }): AuthzAdmin {
  if (!backend.authz) throw new TesseraError('TSR_CONFIG', 'this backend has no authorization')
  return backend.authz
}

/** `tessera authz check|test|policy …|schema`. */
export function registerAuthzCommands(program: Command, ctx: CommandContext): void {
  const authz = program
    .command('authz')
    .description('Cedar authorization: decisions, policy tests, versioned policies')

  /** Prints Cedar problems and sets exit 1 instead of failing with a runtime error. */
  const reportInvalid = async (err: unknown, json: boolean): Promise<void> => {
    if (!isTesseraError(err, 'TSR_POLICY_INVALID')) throw err
    const { formatProblem } = await import('../../policy/cedar.js')
    const problems = (err.details?.errors ?? []) as PolicyProblem[]
    ctx.setExitCode(exitCodes.findings)
    if (json) {
      await ctx.out(JSON.stringify({ ok: false, code: err.code, problems }) + '\n')
      return
    }
    ctx.note(`${err.code}: ${err.message.split(':')[0]}\n${problemLines(problems, formatProblem)}`)
  }

  authz
    .command('check')
    .description('ask for one decision (exit 1 when denied)')
    .addOption(new Option('--principal <id>', 'a SPIFFE ID or identity ref'))
    .addOption(new Option('--jwt-svid <token>', 'a JWT-SVID, verified for --audience'))
    .addOption(
      new Option('--exchanged-token <token>', 'a token from token exchange (its act chain)'),
    )
    .addOption(new Option('--x509-svid <file>', 'a PEM file: the X.509-SVID chain, leaf first'))
    .option('--audience <aud>', 'audience a JWT must name (default the server’s authz audience)')
    .requiredOption('--action <action>', 'the action, e.g. read or db:query')
    .requiredOption('--resource <ref>', 'the resource ref')
    .option('--context <json>', 'context keys the caller knows (docs/authorization.md)')
    .action(async (opts: CheckOptions, cmd: Command) => {
      const g = ctx.globals(cmd)
      const request: AuthzRequest = {
        principal: await principalOf(opts),
        action: opts.action,
        resource: opts.resource,
        ...(opts.context !== undefined ? { context: parseContext(opts.context) } : {}),
      }
      await ctx.withBackend(cmd, async (backend) => {
        const [d] = await needAuthz(backend).authorize([request])
        if (d!.decision === 'deny') ctx.setExitCode(exitCodes.findings)
        if (g.json) return ctx.out(JSON.stringify(d) + '\n')
        const lines = [
          `${d!.decision.toUpperCase()} ${d!.principal ?? '(unverified principal)'} ${request.action} ${request.resource}`,
          `  decision id: ${d!.decisionId}`,
          `  policies:    ${d!.determiningPolicies.join(', ') || '(none)'}`,
          ...(d!.reason ? [`  reason:      ${d!.reason.message}`] : []),
          ...d!.errors.map((e) => `  error:       ${e.policy ? `${e.policy}: ` : ''}${e.message}`),
        ]
        return ctx.out(lines.join('\n') + '\n')
      })
    })

  authz
    .command('test')
    .description('run a YAML/JSON file of decision cases (exit 1 on a mismatch)')
    .argument('<file>', 'the test file (docs/authorization.md)')
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      const { parseAuthzTestFile, judge } = await import('../../policy/test-cases.js')
      const spec = parseAuthzTestFile(await readText(file, 'test file'))
      const candidates: CedarPolicy[] = []
      for (const p of spec.policyFiles) {
        const path = resolve(dirname(file), p)
        const name = p
          .replace(/^.*[\\/]/, '')
          .replace(/\.cedar$/, '')
          .replace(/[^A-Za-z0-9._-]/g, '-')
        candidates.push({
          name,
          version: 0,
          active: true,
          createdAt: new Date(0).toISOString(),
          createdBy: null,
          body: await readText(path, 'policies'),
        })
      }
      await ctx.withBackend(cmd, async (backend) => {
        const admin = needAuthz(backend)
        const results: AuthzTestResult[] = []
        try {
          for (const c of spec.cases) {
            let d: AuthzDecision
            if (candidates.length > 0) {
              if (!admin.authorizeWith) {
                throw new TesseraError(
                  'TSR_VALIDATION',
                  'a test file with `policies` needs a local store (--data-dir or --database)',
                )
              }
              ;[d] = (await admin.authorizeWith(candidates, [c.request], c.at)) as [AuthzDecision]
            } else [d] = (await admin.authorize([c.request], c.at)) as [AuthzDecision]
            results.push(judge(c, d))
          }
        } catch (err) {
          return reportInvalid(err, g.json)
        }
        const failed = results.filter((r) => !r.passed).length
        if (failed > 0) ctx.setExitCode(exitCodes.findings)
        if (g.json) {
          return ctx.out(
            JSON.stringify({ passed: results.length - failed, failed, cases: results }) + '\n',
          )
        }
        await ctx.out(
          renderTable(
            [
              { header: 'RESULT', value: (r: AuthzTestResult) => (r.passed ? 'ok' : 'FAIL') },
              { header: 'CASE', value: (r: AuthzTestResult) => r.name, maxWidth: 50 },
              { header: 'EXPECT', value: (r: AuthzTestResult) => r.expect },
              { header: 'GOT', value: (r: AuthzTestResult) => r.got },
              {
                header: 'POLICIES',
                value: (r: AuthzTestResult) =>
                  r.determiningPolicies.join(', ') ||
                  (r.reason ? `(${r.reason})` : r.errors.join('; ')),
                maxWidth: 60,
              },
            ],
            results,
          ),
        )
        return ctx.out(`${results.length - failed} passed, ${failed} failed\n`)
      })
    })

  const policy = authz.command('policy').description('versioned Cedar policies')

  policy
    .command('add')
    .description('store a new version of a policy (validated and activated with --activate)')
    .argument('<name>', 'policy name')
    .argument('<file>', 'Cedar text')
    .option('--activate', 'validate against the graph’s schema and activate it')
    .action(async (name: string, file: string, opts: { activate?: boolean }, cmd: Command) => {
      const g = ctx.globals(cmd)
      const body = await readText(file, 'policy file')
      await ctx.withBackend(cmd, async (backend) => {
        let p: CedarPolicy
        try {
          p = await needAuthz(backend).addPolicy({
            name,
            body,
            ...(opts.activate ? { activate: true } : {}),
          })
        } catch (err) {
          return reportInvalid(err, g.json)
        }
        if (g.json) return ctx.out(JSON.stringify(p) + '\n')
        return ctx.out(`stored ${p.name} version ${p.version}${p.active ? ' (active)' : ''}\n`)
      })
    })

  policy
    .command('list')
    .description('every version of every policy')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const items = await needAuthz(backend).listPolicies()
        if (g.json) return ctx.out(JSON.stringify({ items }) + '\n')
        if (items.length === 0) return ctx.out('no Cedar policies\n')
        return ctx.out(
          renderTable(
            [
              { header: 'NAME', value: (p: CedarPolicyVersion) => p.name },
              { header: 'VERSION', value: (p: CedarPolicyVersion) => p.version, align: 'right' },
              { header: 'ACTIVE', value: (p: CedarPolicyVersion) => (p.active ? 'yes' : '') },
              { header: 'CREATED', value: (p: CedarPolicyVersion) => p.createdAt },
              { header: 'BY', value: (p: CedarPolicyVersion) => p.createdBy ?? '' },
            ],
            items,
          ),
        )
      })
    })

  policy
    .command('show')
    .description('one version (default the active one, else the latest)')
    .argument('<name>', 'policy name')
    .option('--version <n>', 'this version', intOption(1, 2 ** 31 - 1))
    .action(async (name: string, opts: { version?: number }, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const p = await needAuthz(backend).showPolicy(name, opts.version)
        if (!p) throw new TesseraError('TSR_NOT_FOUND', `no Cedar policy ${name}`)
        if (g.json) return ctx.out(JSON.stringify(p) + '\n')
        return ctx.out(
          `// ${p.name} version ${p.version}${p.active ? ' (active)' : ''}, ${p.createdAt}${p.createdBy ? ` by ${p.createdBy}` : ''}\n${p.body}${p.body.endsWith('\n') ? '' : '\n'}`,
        )
      })
    })

  policy
    .command('activate')
    .description(
      'validate a version (default the latest) against the graph’s schema and activate it',
    )
    .argument('<name>', 'policy name')
    .option('--version <n>', 'this version', intOption(1, 2 ** 31 - 1))
    .action(async (name: string, opts: { version?: number }, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        let p: CedarPolicy
        try {
          p = await needAuthz(backend).activatePolicy(name, opts.version)
        } catch (err) {
          return reportInvalid(err, g.json)
        }
        if (g.json) return ctx.out(JSON.stringify(p) + '\n')
        return ctx.out(`activated ${p.name} version ${p.version}\n`)
      })
    })

  policy
    .command('deactivate')
    .description('leave a policy with no active version')
    .argument('<name>', 'policy name')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        await needAuthz(backend).deactivatePolicy(name)
        return ctx.out(
          g.json ? JSON.stringify({ name, active: false }) + '\n' : `deactivated ${name}\n`,
        )
      })
    })

  policy
    .command('validate')
    .description('parse and validate a Cedar file against the graph’s schema (exit 1 on problems)')
    .argument('<file>', 'Cedar text')
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      const body = await readText(file, 'policy file')
      await ctx.withBackend(cmd, async (backend) => {
        const name = file.replace(/^.*[\\/]/, '')
        const result = await needAuthz(backend).validatePolicy(body, name)
        if (!result.ok) ctx.setExitCode(exitCodes.findings)
        if (g.json) return ctx.out(JSON.stringify(result) + '\n')
        if (result.ok) return ctx.out(`${name}: valid\n`)
        const { formatProblem } = await import('../../policy/cedar.js')
        return ctx.out(problemLines(result.problems, formatProblem).replace(/^ {2}/gm, '') + '\n')
      })
    })

  authz
    .command('schema')
    .description('the Cedar schema derived from the graph (Cedar text; JSON with --json)')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const schema = await needAuthz(backend).schema()
        if (g.json) return ctx.out(JSON.stringify(schema) + '\n')
        const { cedar } = await import('../../policy/cedar.js')
        const text = cedar.schemaToText(schema as never)
        return ctx.out(
          text.type === 'success' ? text.text + '\n' : JSON.stringify(schema, null, 2) + '\n',
        )
      })
    })
}
