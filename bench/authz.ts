/**
 * Authorization budgets (DESIGN.md §7):
 * - in-process `authorize()` p99 < 250 µs over a realistic policy set and entity store;
 * - `POST /v1/authorize` requests/s ≥ 50% of a bare `node:http` server's, measured in the same run
 *   with the same load generator.
 *
 *   npm run bench -- authz [--identities N] [--seconds S] [--connections C] [--samples N]
 *
 * The graph (teams, people, identities with attributes, resources in a hierarchy, grants) is
 * ingested into an in-memory PGlite store; about 60 Cedar policies over 14 actions are activated.
 * In-process figures are taken with the entity cache warm (every principal and resource loaded once),
 * which is the steady state of a server; the periodic refresh (deny-list, policies, graph version,
 * every second) falls inside the timed calls. The HTTP load comes from a second process: C keep-alive
 * connections, each sending the next request when the previous answer arrived (closed loop), first
 * against a bare node:http server that parses the JSON body and answers a fixed JSON decision, then
 * against Tessera's app (fastify, bearer check, schema validation, Cedar decision, event append).
 * Both runs share the machine's two cores with the load generator itself.
 */
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import type { AuditEventInput, EventSink } from '../src/audit/event-sink.js'
import { createInventory } from '../src/inventory/index.js'
import type { Observation } from '../src/inventory/observation.js'
import { createAuthzService, type AuthzRequest } from '../src/policy/index.js'
import { buildApp } from '../src/server/app.js'
import { createApiToken } from '../src/server/auth/api-tokens.js'
import { openStore } from '../src/store/index.js'
import { fmtInt, heading, percentile, report } from './support.js'

const td = 'prod.example'
const actions = [
  'read',
  'write',
  'delete',
  'list',
  'admin',
  'connect',
  'invoke',
  'deploy',
  'db:query',
  'db:write',
  's3:GetObject',
  's3:PutObject',
  'ssh:connect',
  'kafka:produce',
]
const envs = ['prod', 'staging', 'dev']
const tiers = ['gold', 'silver', 'bronze']

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function graph(identities: number, teams: number, resources: number): Observation[] {
  const r = rng(7)
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!
  const out: Observation[] = []
  for (let t = 0; t < teams; t++) {
    out.push({
      type: 'owner',
      source: 'hr',
      ref: `team-${t}`,
      ownerType: 'team',
      name: `Team ${t}`,
    })
  }
  for (let p = 0; p < teams * 5; p++) {
    out.push({
      type: 'owner',
      source: 'hr',
      ref: `person-${p}@example.org`,
      ownerType: 'person',
      name: `Person ${p}`,
      team: `team-${p % teams}`,
    })
  }
  for (let i = 0; i < identities; i++) {
    const env = pick(envs)
    out.push({
      type: 'identity',
      source: 'spire',
      ref: `spiffe://${td}/ns/${env}/sa/svc-${i}`,
      kind: i % 20 === 0 ? 'ai_agent' : 'workload',
      name: `svc-${i}`,
      owner: i % 3 === 0 ? `person-${i % (teams * 5)}@example.org` : `team-${i % teams}`,
      attributes: { tier: pick(tiers), environment: env, pci: r() < 0.1, replicas: 1 + (i % 5) },
    })
  }
  for (let k = 0; k < resources; k++) {
    const env = pick(envs)
    const parent = k >= 20 ? `res-${k % 20}` : undefined
    out.push({
      type: 'resource',
      source: 'aws',
      ref: `res-${k}`,
      resourceType: pick(['database', 'bucket', 'host', 'topic', 'service']),
      name: `resource-${k}`,
      environment: env,
      attributes: {
        ...(parent ? { parent } : {}),
        classification: r() < 0.15 ? 'pci' : 'internal',
        owner_team: `team-${k % teams}`,
      },
    })
  }
  for (let g = 0; g < identities / 2; g++) {
    out.push({
      type: 'grant',
      source: 'aws',
      identity: `spiffe://${td}/ns/${pick(envs)}/sa/svc-${g}`,
      resource: `res-${g % resources}`,
      actions: [pick(actions)],
    })
  }
  return out
}

function policies(teams: number): Record<string, string> {
  const out: Record<string, string> = {}
  // One permit per team and action family: team members act on their team's resource tree.
  for (let t = 0; t < Math.min(teams, 20); t++) {
    const a = actions[t % actions.length]!
    const b = actions[(t + 3) % actions.length]!
    out[`team-${t}`] = `permit (
  principal in Tessera::Team::"team-${t}",
  action in [Tessera::Action::"${a}", Tessera::Action::"${b}"],
  resource
) when {
  resource.attributes has owner_team && resource.attributes.owner_team == "team-${t}" &&
  context has trustDomain && context.trustDomain == "${td}"
};`
  }
  for (const env of envs) {
    out[`env-${env}`] = `permit (principal, action == Tessera::Action::"read", resource)
when { principal.attributes has environment && principal.attributes.environment == "${env}" && resource has environment && resource.environment == "${env}" };
permit (principal, action == Tessera::Action::"list", resource)
when { context has namespace && context.namespace == "${env}" };`
  }
  out['no-pci-for-bronze'] = `forbid (principal, action, resource)
when { resource.attributes has classification && resource.attributes.classification == "pci" &&
  principal.attributes has tier && principal.attributes.tier == "bronze" };`
  out['business-hours-deploy'] = `forbid (principal, action == Tessera::Action::"deploy", resource)
when { context.hour < 6 || context.hour > 20 || context.weekday == 0 || context.weekday == 6 };`
  out['agents-delegated'] =
    `permit (principal, action in [Tessera::Action::"read", Tessera::Action::"s3:GetObject"], resource)
when { context.delegated && context.delegationDepth <= 2 && context has intent && context.intent like "*report*" };
forbid (principal, action, resource)
when { context.delegationDepth > 3 };`
  out['no-ssh-outside-ops'] =
    `forbid (principal, action == Tessera::Action::"ssh:connect", resource)
when { !(context has namespace && context.namespace == "ops") };`
  out['admins'] =
    `permit (principal in Tessera::Team::"team-0", action == Tessera::Action::"admin", resource);`
  out['inactive'] = `forbid (principal, action, resource) unless { principal.state == "active" };`
  out['unknown-resources'] =
    `forbid (principal, action in [Tessera::Action::"write", Tessera::Action::"delete", Tessera::Action::"db:write"], resource) unless { resource.inGraph };`
  for (let k = 0; k < 20; k++) {
    out[`res-rule-${k}`] =
      `permit (principal, action == Tessera::Action::"${actions[k % actions.length]}", resource in Tessera::Resource::"res-${k}")
when { principal.kind == "workload" && principal.attributes has replicas && principal.attributes.replicas >= ${1 + (k % 5)} };`
  }
  return out
}

function requests(n: number, identities: number, resources: number): AuthzRequest[] {
  const r = rng(11)
  const out: AuthzRequest[] = []
  for (let k = 0; k < n; k++) {
    const i = Math.floor(r() * identities)
    const env = envs[i % 3]!
    const delegated = r() < 0.1
    out.push({
      principal: `spiffe://${td}/ns/${env}/sa/svc-${i}`,
      action: actions[Math.floor(r() * actions.length)]!,
      resource: `res-${Math.floor(r() * resources)}`,
      context: {
        sourceNode: `node-${i % 50}`,
        selectors: [`k8s:ns:${env}`, `k8s:sa:svc-${i}`],
        ...(delegated
          ? {
              delegationChain: [`spiffe://${td}/ns/ai/sa/agent-${i % 7}`],
              intent: 'weekly report',
            }
          : {}),
      },
    })
  }
  return out
}

/** The load generator, run in a second process: closed-loop keep-alive POSTs for `seconds`. */
const loadClient = `
const http = require('node:http')
const [url, token, bodiesJson, seconds, connections] = process.argv.slice(1)
const bodies = JSON.parse(bodiesJson).map((b) => Buffer.from(JSON.stringify(b)))
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(connections) })
const target = new URL(url)
let done = 0, failed = 0, k = 0, stop = false, total = 0
const warmUntil = Date.now() + 1000
let counting = false, started = 0
function one() {
  if (stop) return
  const body = bodies[k++ % bodies.length]
  const req = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent,
    headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: 'Bearer ' + token } }, (res) => {
    res.on('data', () => {})
    res.on('end', () => {
      if (Date.now() >= warmUntil && !counting) { counting = true; started = Date.now(); done = 0; failed = 0 }
      total++
      if (res.statusCode === 200) done++; else failed++
      one()
    })
  })
  req.on('error', () => { failed++; one() })
  req.end(body)
}
for (let c = 0; c < Number(connections); c++) one()
setTimeout(() => {
  stop = true
  const elapsed = (Date.now() - started) / 1000
  process.stdout.write(JSON.stringify({ rps: done / elapsed, done, failed, total }))
  process.exit(0)
}, 1000 + Number(seconds) * 1000)
`

function load(
  url: string,
  token: string,
  bodies: unknown[],
  seconds: number,
  connections: number,
): Promise<{ rps: number; done: number; failed: number; perCpuSecond: number }> {
  const cpu0 = process.cpuUsage()
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['-e', loadClient, url, token, JSON.stringify(bodies), String(seconds), String(connections)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`load generator exited with ${code}`))
      else {
        // Requests answered per CPU-second of this (the serving) process, warm-up included.
        const cpu = process.cpuUsage(cpu0)
        const r = JSON.parse(out) as { rps: number; done: number; failed: number; total: number }
        resolve({ ...r, perCpuSecond: r.total / ((cpu.user + cpu.system) / 1e6) })
      }
    })
  })
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      identities: { type: 'string', default: '5000' },
      seconds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '32' },
      samples: { type: 'string', default: '50000' },
      'skip-http': { type: 'boolean', default: false },
    },
  })
  const identities = Number(values.identities)
  const teams = 40
  const resources = 1000
  const seconds = Number(values.seconds)
  const connections = Number(values.connections)
  const samples = Number(values.samples)

  const store = await openStore({ backend: 'pglite' })
  try {
    const inventory = createInventory({ store })
    const facts = graph(identities, teams, resources)
    await inventory.ingest(facts)
    // Counts and drops: a sink that kept every event would make the benchmark about its own heap.
    const events = { count: 0 }
    const sink: EventSink = {
      append: async () => {
        events.count++
      },
      appendMany: async (batch: readonly AuditEventInput[]) => {
        events.count += batch.length
      },
    }
    const authz = createAuthzService({ store, events: sink, extraActions: actions })
    const set = policies(teams)
    for (const [name, body] of Object.entries(set)) {
      await authz.policies.add({ name, body, activate: true })
    }
    const statements = Object.values(set).reduce(
      (n, b) => n + (b.match(/;\s*(\n|$)/g)?.length ?? 1),
      0,
    )
    heading(
      `Authorization: ${fmtInt(identities)} identities, ${teams} teams, ${resources} resources, ${statements} Cedar statements over ${actions.length} actions`,
    )

    // Warm the entity cache: every principal and resource once.
    const reqs = requests(samples, identities, resources)
    const warm: AuthzRequest[] = []
    for (let i = 0; i < identities; i++) {
      warm.push({
        principal: `spiffe://${td}/ns/${envs[i % 3]}/sa/svc-${i}`,
        action: 'read',
        resource: `res-${i % resources}`,
      })
    }
    for (const r of warm) await authz.authorizer.authorize(r)
    for (const r of reqs.slice(0, 5000)) await authz.authorizer.authorize(r)
    await authz.authorizer.flush()

    const lat: number[] = []
    let allowed = 0
    const t0 = process.hrtime.bigint()
    const cpu0 = process.cpuUsage()
    for (const r of reqs) {
      const s = process.hrtime.bigint()
      const d = await authz.authorizer.authorize(r)
      lat.push(Number(process.hrtime.bigint() - s) / 1000)
      if (d.decision === 'allow') allowed++
    }
    const wall = Number(process.hrtime.bigint() - t0) / 1e9
    const cpu = process.cpuUsage(cpu0)
    await authz.authorizer.flush()
    const p50 = percentile(lat, 50)
    const p99 = percentile(lat, 99)
    report('in-process authorize() p50', `${p50.toFixed(1)} µs`)
    report(
      'in-process authorize() p99',
      `${p99.toFixed(1)} µs`,
      `budget < 250 µs: ${p99 < 250 ? 'met' : 'MISSED'}`,
    )
    report('in-process authorize() p99.9', `${percentile(lat, 99.9).toFixed(1)} µs`)
    report(
      'in-process CPU time per decision',
      `${((cpu.user + cpu.system) / samples).toFixed(1)} µs`,
      'user + system, this process (less sensitive to a loaded machine than wall time)',
    )
    report(
      'in-process decisions/s (one caller)',
      `${fmtInt(samples / wall)} /s`,
      `${((100 * allowed) / samples).toFixed(1)}% allowed, ${fmtInt(events.count)} events`,
    )

    if (values['skip-http']) return
    // HTTP: the bare server first, then Tessera's app, each against the same load generator.
    const bare = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { action?: string }
        const out = JSON.stringify({
          decision: body.action ? 'allow' : 'deny',
          determiningPolicies: [],
          errors: [],
          decisionId: '00000000-0000-4000-8000-000000000000',
        })
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(out),
        })
        res.end(out)
      })
    })
    await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r))
    const app = await buildApp({ store, inventory, authz })
    const appUrl = await app.listen({ host: '127.0.0.1', port: 0 })
    const token = (await createApiToken(store, { name: 'bench', scopes: ['authz'] }, undefined))
      .token
    const bodies = reqs.slice(0, 500)
    const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/v1/authorize`
    try {
      const runs = { bare: [] as number[], tessera: [] as number[] }
      const cpu = { bare: [] as number[], tessera: [] as number[] }
      let failed = 0
      for (let round = 0; round < 2; round++) {
        const b = await load(bareUrl, token, bodies, seconds, connections)
        const t = await load(`${appUrl}/v1/authorize`, token, bodies, seconds, connections)
        runs.bare.push(b.rps)
        runs.tessera.push(t.rps)
        cpu.bare.push(b.perCpuSecond)
        cpu.tessera.push(t.perCpuSecond)
        failed += b.failed + t.failed
      }
      const bareRps = Math.max(...runs.bare)
      const tesseraRps = Math.max(...runs.tessera)
      report(
        'bare node:http POST (reference)',
        `${fmtInt(bareRps)} req/s`,
        `best of ${runs.bare.map(fmtInt).join(', ')}`,
      )
      report(
        'POST /v1/authorize',
        `${fmtInt(tesseraRps)} req/s`,
        `${((100 * tesseraRps) / bareRps).toFixed(0)}% of bare (budget ≥ 50%: ${tesseraRps >= bareRps / 2 ? 'met' : 'MISSED'}); best of ${runs.tessera.map(fmtInt).join(', ')}`,
      )
      const bareCpu = Math.max(...cpu.bare)
      const tesseraCpu = Math.max(...cpu.tessera)
      report('bare node:http per server CPU-second', `${fmtInt(bareCpu)} req`, 'reference')
      report(
        'POST /v1/authorize per server CPU-second',
        `${fmtInt(tesseraCpu)} req`,
        `${((100 * tesseraCpu) / bareCpu).toFixed(0)}% of bare (the same ratio, robust to a loaded machine)`,
      )
      if (failed > 0) report('non-200 answers', String(failed))
      process.stdout.write(
        `\n${connections} keep-alive connections from a second process, ${seconds} s per run after 1 s warm-up, 2 rounds\n`,
      )
    } finally {
      await app.close()
      await new Promise((r) => bare.close(r))
    }
  } finally {
    await store.close()
  }
}
