/**
 * Just-in-time credentials (issue 7, docs/dynamic-credentials.md): JIT credentials issued and
 * revoked per second, each beside a raw reference measured in the same run:
 * - PostgreSQL: Tessera's whole issue + revoke (lease row pending → active → revoked in the store,
 *   SCRAM verifier, CREATE ROLE … VALID UNTIL, GRANT, COMMENT, ALTER ROLE SET in one transaction,
 *   then NOLOGIN, pg_terminate_backend, REASSIGN/DROP OWNED, DROP ROLE, two audit events) against a
 *   raw `CREATE ROLE … LOGIN` + `DROP ROLE` over one connection;
 * - Redis: issue + revoke (ACL SETUSER with the template's rules, CLIENT KILL USER, ACL DELUSER)
 *   against a raw `ACL SETUSER` + `ACL DELUSER` over one connection.
 *
 *   npm run bench -- jit [--seconds S] [--concurrency N] [--pg URL] [--redis URL] [--database URL]
 *
 * One request at a time by default (the reference is one connection too); `--concurrency` runs N
 * workloads at once against the service. The lease table lives in an in-memory PGlite store unless
 * `--database` (or TESSERA_BENCH_DATABASE_URL) names a PostgreSQL store (a fresh schema, dropped
 * afterwards). DESIGN.md §7 sets no budget for this; the figures are recorded in docs/benchmarks.md.
 * `runJitBench(options)` returns the figures (the `rotation` benchmark reports them beside its own).
 */
import { createHmac, randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { createClient } from 'redis'
import { createMemoryEventSink } from '../src/audit/event-sink.js'
import {
  createDynamicCredentials,
  type DynamicCredentials,
} from '../src/lifecycle/dynamic/dynamic-credentials.js'
import { parseDynamicConfig } from '../src/lifecycle/dynamic/dynamic-config.js'
import { createDynamicBackends } from '../src/lifecycle/dynamic/dynamic-registry.js'
import { systemClock } from '../src/runtime/clock.js'
import { openStore, type Store } from '../src/store/index.js'
import { dropSchema, freshSchemaName } from '../test/support/stores.js'
import { fmtInt, heading, report } from './support.js'

export interface JitBenchOptions {
  /** Seconds per measured phase (default 5). */
  seconds?: number
  /** Requests in flight at once against the service (default 1). */
  concurrency?: number
  /** Admin URL of the PostgreSQL server the roles are made in. */
  pgUrl?: string
  redisUrl?: string
  /** A PostgreSQL store for the lease table (default: in-memory PGlite). */
  databaseUrl?: string
  /** Skip Redis (e.g. none running). */
  skipRedis?: boolean
}

export interface JitFigure {
  /** Issue + revoke pairs per second (wall clock), through Tessera. */
  issueRevokePerSecond: number
  /** Raw create + drop pairs per second over one connection, same run. */
  referencePerSecond: number
  /** issueRevokePerSecond / referencePerSecond. */
  ratio: number
  /** Mean latency of one issue and of one revoke, ms. */
  issueMs: number
  revokeMs: number
  pairs: number
}

export interface JitBenchFigures {
  postgres: JitFigure
  redis?: JitFigure
  concurrency: number
  store: 'pglite' | 'postgres'
}

const spiffeId = (i: number) => `spiffe://bench.example.org/ns/bench/sa/w${i}`

/** Runs `fn` from `workers` loops until `seconds` pass; returns how many completed, and the time. */
async function forSeconds(seconds: number, workers: number, fn: (worker: number) => Promise<void>) {
  const end = performance.now() + seconds * 1000
  let done = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      while (performance.now() < end) {
        await fn(w)
        done++
      }
    }),
  )
  return { done, seconds: (performance.now() - t0) / 1000 }
}

async function measureService(
  dynamic: DynamicCredentials,
  backend: string,
  seconds: number,
  concurrency: number,
): Promise<Omit<JitFigure, 'referencePerSecond' | 'ratio'>> {
  let issueMs = 0
  let revokeMs = 0
  const pair = async (w: number) => {
    const t0 = performance.now()
    const issued = await dynamic.issue({ spiffeId: spiffeId(w), backend, template: 'bench' })
    const t1 = performance.now()
    await dynamic.revoke(issued.leaseId, { reason: 'bench' })
    revokeMs += performance.now() - t1
    issueMs += t1 - t0
  }
  for (let i = 0; i < 3; i++) await pair(0)
  issueMs = 0
  revokeMs = 0
  const { done, seconds: took } = await forSeconds(seconds, concurrency, pair)
  return {
    issueRevokePerSecond: done / took,
    issueMs: issueMs / done,
    revokeMs: revokeMs / done,
    pairs: done,
  }
}

export async function runJitBench(options: JitBenchOptions = {}): Promise<JitBenchFigures> {
  const seconds = options.seconds ?? 5
  const concurrency = options.concurrency ?? 1
  const pgUrl =
    options.pgUrl ??
    process.env.TESSERA_BENCH_PG_URL ??
    process.env.TESSERA_TEST_DATABASE_URL ??
    'postgres://postgres@127.0.0.1:5432/postgres'
  const redisUrl =
    options.redisUrl ?? process.env.TESSERA_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
  const databaseUrl = options.databaseUrl ?? (process.env.TESSERA_BENCH_DATABASE_URL || undefined)
  const schema = databaseUrl ? freshSchemaName() : undefined
  const store: Store = databaseUrl
    ? await openStore({ backend: 'postgres', url: databaseUrl, schema, poolSize: concurrency + 2 })
    : await openStore({ backend: 'pglite' })
  const tag = randomBytes(4).toString('hex')
  const templateRole = `jit_bench_${tag}`
  const admin = new pg.Client({ connectionString: pgUrl })
  await admin.connect()
  await admin.query(`CREATE ROLE ${templateRole} NOLOGIN`)
  const key = randomBytes(32)
  const config = parseDynamicConfig({
    backends: {
      pg: {
        type: 'postgres',
        url: pgUrl,
        templates: { bench: { role: templateRole, allow: ['spiffe://bench.example.org/*'] } },
      },
      ...(options.skipRedis
        ? {}
        : {
            cache: {
              type: 'redis',
              url: redisUrl,
              templates: {
                bench: {
                  rules: ['~bench:*', '+get', '+set'],
                  allow: ['spiffe://bench.example.org/*'],
                },
              },
            },
          }),
    },
  })
  const dynamic = createDynamicCredentials({
    store,
    clock: systemClock,
    backends: createDynamicBackends(config),
    events: createMemoryEventSink(),
    fingerprint: async (pw) => createHmac('sha256', key).update(pw).digest('hex'),
  })
  try {
    // Reference: raw role churn over one connection.
    let n = 0
    const pgRef = await forSeconds(seconds, 1, async () => {
      const name = `jit_ref_${tag}_${n++}`
      await admin.query(`CREATE ROLE ${name} LOGIN`)
      await admin.query(`DROP ROLE ${name}`)
    })
    const pgService = await measureService(dynamic, 'pg', seconds, concurrency)
    const postgres: JitFigure = {
      ...pgService,
      referencePerSecond: pgRef.done / pgRef.seconds,
      ratio: pgService.issueRevokePerSecond / (pgRef.done / pgRef.seconds),
    }
    let redis: JitFigure | undefined
    if (!options.skipRedis) {
      const client = createClient({ url: redisUrl })
      await client.connect()
      try {
        let m = 0
        const ref = await forSeconds(seconds, 1, async () => {
          const name = `jit_ref_${tag}_${m++}`
          await client.sendCommand(['ACL', 'SETUSER', name, 'on', '>pw', '~bench:*', '+get'])
          await client.sendCommand(['ACL', 'DELUSER', name])
        })
        const service = await measureService(dynamic, 'cache', seconds, concurrency)
        redis = {
          ...service,
          referencePerSecond: ref.done / ref.seconds,
          ratio: service.issueRevokePerSecond / (ref.done / ref.seconds),
        }
      } finally {
        await client.quit()
      }
    }
    return {
      postgres,
      ...(redis ? { redis } : {}),
      concurrency,
      store: databaseUrl ? 'postgres' : 'pglite',
    }
  } finally {
    await dynamic.close()
    await store.close()
    await admin.query(`DROP ROLE IF EXISTS ${templateRole}`)
    await admin.end()
    if (databaseUrl && schema) await dropSchema(databaseUrl, schema)
  }
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: 'string', default: '5' },
      concurrency: { type: 'string', default: '1' },
      pg: { type: 'string' },
      redis: { type: 'string' },
      database: { type: 'string' },
    },
  })
  const figures = await runJitBench({
    seconds: Number(values.seconds),
    concurrency: Number(values.concurrency),
    ...(values.pg ? { pgUrl: values.pg } : {}),
    ...(values.redis ? { redisUrl: values.redis } : {}),
    ...(values.database ? { databaseUrl: values.database } : {}),
  })
  heading(
    `JIT credentials: issue + revoke, ${figures.concurrency} at a time, lease table on ${figures.store}`,
  )
  const line = (name: string, f: JitFigure, ref: string) => {
    report(
      `${name} issued+revoked /s`,
      `${f.issueRevokePerSecond.toFixed(1)} /s`,
      `${ref} ${f.referencePerSecond.toFixed(1)} /s (${(f.ratio * 100).toFixed(0)}%)`,
    )
    report(
      `${name} mean issue / revoke`,
      `${f.issueMs.toFixed(1)} / ${f.revokeMs.toFixed(1)} ms`,
      `${fmtInt(f.pairs)} pairs`,
    )
  }
  line('PostgreSQL', figures.postgres, 'raw CREATE ROLE + DROP ROLE, one connection:')
  if (figures.redis) line('Redis', figures.redis, 'raw ACL SETUSER + DELUSER, one connection:')
  process.stdout.write(
    '\nbudget: none in DESIGN.md §7 (issue 7 asks for the figure beside a reference)\n',
  )
}
