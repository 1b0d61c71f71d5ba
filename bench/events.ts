/**
 * `npm run bench -- events`: sustained audit events per second into PostgreSQL with the hash chain
 * on (DESIGN.md §7 budget: ≥ 50,000/s), first alone, then with an EventObserver scoring every
 * durable batch. The scorer is a per-subject counting scorer of this file unless `--observer FILE`
 * names a module whose default export makes one (`() => EventObserver | Promise<EventObserver>`),
 * so the real anomaly detector can be measured the same way.
 *
 * Options: --database URL (else TESSERA_BENCH_DATABASE_URL, TESSERA_TEST_DATABASE_URL),
 * --seconds N per phase (default 10), --producers N concurrent appenders (default 64),
 * --batch N events per appendMany (default 100), --insert copy|json (default copy).
 * Runs in a schema of its own, dropped afterwards.
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { resolve } from 'node:path'
import { createAuditLog } from '../src/audit/audit-log.js'
import type { AuditEventInput, EventObserver, StoredAuditEvent } from '../src/audit/event-sink.js'
import { verifyChain } from '../src/audit/verify.js'
import { openStore } from '../src/store/index.js'
import { dropSchema, freshSchemaName } from '../test/support/stores.js'
import { fmtInt, heading, report } from './support.js'

const budget = 50_000

/**
 * A small streaming scorer: counts per subject and per (subject, action), and scores an event
 * high when its subject has never done that action before after a learning period. Stands in for
 * the anomaly detector's cost per event (a few map lookups and updates).
 */
export function createCountingScorer(learning = 20): EventObserver & {
  scored: number
  flagged: number
} {
  const perSubject = new Map<string, { n: number; actions: Map<string, number> }>()
  const scorer = {
    scored: 0,
    flagged: 0,
    observe(events: readonly StoredAuditEvent[]) {
      for (const e of events) {
        const key = e.subject ?? e.actor ?? '-'
        let s = perSubject.get(key)
        if (s === undefined) {
          s = { n: 0, actions: new Map() }
          perSubject.set(key, s)
        }
        const action = e.action ?? e.type
        const seen = s.actions.get(action) ?? 0
        if (s.n >= learning && seen === 0) scorer.flagged++
        s.actions.set(action, seen + 1)
        s.n++
        scorer.scored++
      }
    },
  }
  return scorer
}

function makeEvents(n: number, offset: number): AuditEventInput[] {
  const out: AuditEventInput[] = new Array(n)
  for (let i = 0; i < n; i++) {
    const k = offset + i
    out[i] = {
      type: 'authz.decision',
      actor: `spiffe://bench.example/ns/app/sa/svc-${k % 1000}`,
      subject: `spiffe://bench.example/ns/app/sa/svc-${k % 1000}`,
      resource: `db-${k % 200}`,
      action: `read-${k % 7}`,
      decision: k % 50 === 0 ? 'deny' : 'allow',
      requestId: `req-${k}`,
      data: { decisionId: `d-${k}`, policies: ['p-allow-reads'] },
    }
  }
  return out
}

async function phase(
  url: string,
  seconds: number,
  producers: number,
  batch: number,
  insertMode: 'copy' | 'json',
  observer: EventObserver | undefined,
): Promise<{
  rate: number
  written: number
  lagMs: number
  verifyMs: number
  ok: boolean
  nodeCpuUs: number
  pgCpuUs: number | undefined
}> {
  const schema = freshSchemaName()
  const tagged = new URL(url)
  tagged.searchParams.set('application_name', `tessera-bench-${schema}`)
  const store = await openStore({
    backend: 'postgres',
    url: tagged.toString(),
    schema,
    poolSize: 4,
  })
  try {
    const log = createAuditLog({
      store,
      insertMode,
      ...(observer ? { observers: [observer] } : {}),
    })
    await log.append({ type: 'bench.start' })
    const pgBefore = await backendCpu(store.db, schema)
    const cpuBefore = process.cpuUsage()
    let written = 0
    let stop = false
    const pool = Array.from({ length: 64 }, (_, i) => makeEvents(batch, i * batch))
    const t0 = performance.now()
    const deadline = t0 + seconds * 1000
    await Promise.all(
      Array.from({ length: producers }, async (_, p) => {
        let round = 0
        while (!stop) {
          await log.appendMany(pool[(p + round++) % pool.length]!)
          written += batch
          if (performance.now() >= deadline) stop = true
        }
      }),
    )
    const elapsed = performance.now() - t0
    const tFlush = performance.now()
    await log.close()
    const lagMs = performance.now() - tFlush
    const cpu = process.cpuUsage(cpuBefore)
    const pgAfter = await backendCpu(store.db, schema)
    const tVerify = performance.now()
    const verdict = await verifyChain(store.db)
    const verifyMs = performance.now() - tVerify
    return {
      rate: written / (elapsed / 1000),
      written,
      lagMs,
      verifyMs,
      ok: verdict.ok && verdict.checked === written + 1,
      nodeCpuUs: (cpu.user + cpu.system) / written,
      pgCpuUs: ((d) => (d === undefined ? undefined : (d * 1e6) / written))(
        cpuDelta(pgBefore, pgAfter),
      ),
    }
  } finally {
    await store.close()
    await dropSchema(url, schema).catch(() => {})
  }
}

/**
 * CPU seconds used so far by this store's PostgreSQL backends (same machine only: read from
 * /proc/PID/stat; undefined when PostgreSQL is elsewhere). On a machine shared with other work,
 * CPU time per event says more than wall-clock rate.
 */
async function backendCpu(
  db: Parameters<typeof verifyChain>[0],
  schema: string,
): Promise<Map<number, number> | undefined> {
  const { sql } = await import('kysely')
  const rows = await sql<{ pid: number }>`select pid from pg_stat_activity
    where application_name = ${`tessera-bench-${schema}`}`.execute(db)
  const ticks = 100 // USER_HZ on Linux
  const perPid = new Map<number, number>()
  try {
    for (const { pid } of rows.rows) {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
      perPid.set(pid, (Number(fields[11]) + Number(fields[12])) / ticks)
    }
  } catch {
    return undefined
  }
  return perPid
}

/** CPU seconds the backends used between two readings (a backend closed in between is lost). */
function cpuDelta(
  before: Map<number, number> | undefined,
  after: Map<number, number> | undefined,
): number | undefined {
  if (before === undefined || after === undefined) return undefined
  let total = 0
  for (const [pid, t] of after) total += t - (before.get(pid) ?? 0)
  return total
}

function cpuLine(r: { nodeCpuUs: number; pgCpuUs: number | undefined }): void {
  const pg = r.pgCpuUs
  report(
    '  CPU per event: this process / PostgreSQL',
    `${r.nodeCpuUs.toFixed(1)} / ${pg === undefined ? '?' : pg.toFixed(1)} µs`,
    pg === undefined
      ? ''
      : `projection on 2 idle cores: ${fmtInt(1e6 / Math.max(r.nodeCpuUs, pg))}/s pipelined, ${fmtInt(1e6 / (r.nodeCpuUs + pg))}/s one at a time`,
  )
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      database: { type: 'string' },
      seconds: { type: 'string', default: '10' },
      producers: { type: 'string', default: '64' },
      batch: { type: 'string', default: '100' },
      insert: { type: 'string', default: 'copy' },
      observer: { type: 'string' },
    },
  })
  const url =
    values.database ??
    process.env.TESSERA_BENCH_DATABASE_URL ??
    process.env.TESSERA_TEST_DATABASE_URL ??
    'postgres://postgres@127.0.0.1:5432/postgres'
  const seconds = Number(values.seconds)
  const producers = Number(values.producers)
  const batch = Number(values.batch)
  const insertMode = values.insert === 'json' ? 'json' : 'copy'
  let observer: EventObserver & { scored?: number; flagged?: number }
  let observerName = 'per-subject counting scorer (bench/events.ts)'
  if (values.observer) {
    const mod = (await import(pathToFileURL(resolve(values.observer)).href)) as {
      default: () => EventObserver | Promise<EventObserver>
    }
    observer = await mod.default()
    observerName = values.observer
  } else {
    observer = createCountingScorer()
  }

  heading(
    `Audit events into PostgreSQL, hash chain on (${producers} producers × ${batch} events, ${seconds} s per phase, ${insertMode})`,
  )
  const plain = await phase(url, seconds, producers, batch, insertMode, undefined)
  report(
    'events/s, chain on',
    fmtInt(plain.rate),
    `budget ≥ ${fmtInt(budget)}/s  ${plain.rate >= budget ? 'ok' : 'BELOW BUDGET'}`,
  )
  cpuLine(plain)
  report(
    '  chain verified after the run',
    plain.ok ? 'yes' : 'NO',
    `${fmtInt(plain.written + 1)} events in ${fmtInt(plain.verifyMs)} ms`,
  )
  const scored = await phase(url, seconds, producers, batch, insertMode, observer)
  report(
    'events/s, chain on + scoring',
    fmtInt(scored.rate),
    `budget ≥ ${fmtInt(budget)}/s  ${scored.rate >= budget ? 'ok' : 'BELOW BUDGET'}`,
  )
  report(
    '  scorer caught up after the last write in',
    `${fmtInt(scored.lagMs)} ms`,
    `${observerName}${observer.scored !== undefined ? `: ${fmtInt(observer.scored)} scored, ${fmtInt(observer.flagged ?? 0)} flagged` : ''}`,
  )
  cpuLine(scored)
  report(
    '  chain verified after the run',
    scored.ok ? 'yes' : 'NO',
    `${fmtInt(scored.written + 1)} events`,
  )
}
