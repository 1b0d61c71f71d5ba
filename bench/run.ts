/**
 * `npm run bench -- NAME [options]` runs one benchmark. Each benchmark prints its figures beside the
 * reference it is compared with in the same run, and the budget from DESIGN.md §7.
 */
const benchmarks: Record<
  string,
  { summary: string; load: () => Promise<{ main(args: string[]): Promise<void> }> }
> = {
  inventory: {
    summary:
      'ingest the seeded 1,000,000-identity sample into PostgreSQL and PGlite, then time filtered and as-of queries',
    load: () => import('./inventory.js'),
  },
  'workload-api': {
    summary:
      'FetchX509SVID p50/p99 with a warm cache, and a start storm of 10,000 workloads (real signing)',
    load: () => import('./workload-api.js'),
  },
  issuance: {
    summary:
      'X.509-SVIDs and JWT-SVIDs per second on one core beside the raw crypto.sign P-256 rate',
    load: () => import('./issuance.js'),
  },
  authz: {
    summary:
      'in-process Cedar decision p50/p99 over ~60 policies and a 5,000-identity graph; POST /v1/authorize req/s beside a bare node:http server',
    load: () => import('./authz.js'),
  },
  scan: {
    summary:
      'generate a 200 MB corpus (files and git history), scan it, compare with secretlint, score the labelled corpus',
    load: () => import('./scan.js'),
  },
  detection: {
    summary:
      'anomaly detection precision and recall on the simulated estate, and the scorer events/s in-process',
    load: () => import('./detection.js'),
  },
  posture: {
    summary:
      'evaluate every posture rule over the seeded 1,000,000-identity sample on PostgreSQL (time and findings per rule)',
    load: () => import('./posture.js'),
  },
  events: {
    summary:
      'sustained audit events/s into PostgreSQL with the hash chain, alone and with a scoring EventObserver',
    load: () => import('./events.js'),
  },
  rotation: {
    summary:
      'managed secret rotations per second (Redis ACL, PostgreSQL role) end to end, beside the raw system calls',
    load: () => import('./rotation.js'),
  },
  jit: {
    summary:
      'JIT PostgreSQL roles and Redis users issued and revoked per second, beside raw CREATE/DROP ROLE and ACL SETUSER/DELUSER',
    load: () => import('./jit.js'),
  },
}

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  const bench = name === undefined ? undefined : benchmarks[name]
  if (bench === undefined) {
    const list = Object.entries(benchmarks)
      .map(([key, b]) => `  ${key.padEnd(12)} ${b.summary}`)
      .join('\n')
    process.stderr.write(
      `${name === undefined ? 'usage' : `unknown benchmark "${name}"`}: npm run bench -- NAME [options]\n\nbenchmarks:\n${list}\n`,
    )
    return 2
  }
  const mod = await bench.load()
  await mod.main(rest)
  return 0
}

process.exitCode = await run(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(
    `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  )
  return 3
})
