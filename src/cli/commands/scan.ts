import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Option, type Command } from 'commander'
import type { CommandContext } from '../context.js'
import { exitCodes } from '../exit-codes.js'
import { collect, intOption } from '../options.js'
import { createDelayedProgress, formatBytes, formatCount } from '../progress.js'
import { renderTable, type Column } from '../table.js'

const version = '0.1.0'
const formats = ['table', 'json', 'sarif'] as const

interface ScanCliOptions {
  history?: boolean
  format?: (typeof formats)[number]
  baseline?: string
  writeBaseline?: string
  rules?: string[]
  ingest?: boolean
  state?: string
  keyFile?: string
  maxFileSize: number
  workers?: number
  output?: string
}

export function registerScanCommand(program: Command, ctx: CommandContext): void {
  program
    .command('scan')
    .description('find secrets in a directory, a git repository and its history, or a git URL')
    .argument('<target>', 'directory, git repository, or git URL (cloned as a mirror)')
    .option('--history', 'also scan every commit reachable from any ref')
    .addOption(new Option('--format <format>', 'output format').choices(formats))
    .option('--output <file>', 'write the report to a file instead of stdout')
    .option('--baseline <file>', 'findings in this baseline are known: they do not fail')
    .option('--write-baseline <file>', 'write every finding of this scan as a baseline')
    .option('--rules <file>', 'extra rule set (YAML or JSON; repeatable)', collect)
    .option(
      '--ingest',
      'write credentials, locations and authors into the inventory (implied by --data-dir, --database, --server)',
    )
    .option('--state <file>', 'incremental history: commits already scanned are kept here')
    .option(
      '--key-file <file>',
      'fingerprint key file when there is no store (default .tessera/scanner.key)',
    )
    .option(
      '--max-file-size <bytes>',
      'skip (and count) larger files',
      intOption(1, 2 ** 31),
      10 * 1024 * 1024,
    )
    .option('--workers <n>', 'worker threads (0 scans in the main thread)', intOption(0, 64))
    .addHelpText(
      'after',
      `
Exit codes: 0 no findings, 1 findings (not counting the baseline), 2 usage, 3 runtime error.
A finding carries a keyed fingerprint and a redacted preview, never the secret. The key is
TESSERA_SCANNER_KEY (64 hex digits), else the store's (with a store), else the key file.`,
    )
    .action(async (target: string, opts: ScanCliOptions, cmd: Command) => {
      const g = ctx.globals(cmd)
      const format = opts.format ?? (g.json ? 'json' : 'table')
      const scanner = await import('../../scanner/index.js')
      const extra = (opts.rules ?? []).map((f) => scanner.loadRuleFile(f))
      const rules = scanner.resolveRules(extra)
      const baseline = opts.baseline ? scanner.readBaseline(opts.baseline) : undefined
      const ingest =
        opts.ingest === true ||
        g.dataDir !== undefined ||
        g.database !== undefined ||
        g.server !== undefined

      const envKey = ctx.io.env.TESSERA_SCANNER_KEY
      const fileKey = () =>
        scanner.loadOrCreateKeyFile(
          resolve(opts.keyFile ?? join(g.dataDir ?? '.tessera', 'scanner.key')),
        )

      const run = async (key: Buffer) => {
        const started = performance.now()
        const progress = createDelayedProgress({
          enabled: ctx.io.stderr.isTTY === true && !g.json && !opts.output,
          total: 1,
          stream: ctx.io.stderr as NodeJS.WriteStream,
          format: 'scanning: {files} files, {done}, {commits} commits, {found} findings',
        })
        const result = await scanner
          .scanTarget({
            onProgress: (s, found) =>
              progress.update(0, {
                files: formatCount(s.files),
                done: formatBytes(s.bytes),
                commits: formatCount(s.commits),
                found: formatCount(found),
              }),
            target,
            rules,
            key,
            ...(opts.history ? { history: true } : {}),
            maxFileSize: opts.maxFileSize,
            ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
            ...(opts.state ? { stateFile: opts.state } : {}),
            ...(baseline ? { baseline } : {}),
          })
          .finally(() => progress.stop())
        const seconds = (performance.now() - started) / 1000
        if (opts.writeBaseline) scanner.writeBaseline(opts.writeBaseline, result.findings)
        let report: string
        if (format === 'json') {
          report = JSON.stringify(scanner.toJson(result.findings), null, 2) + '\n'
        } else if (format === 'sarif') {
          report = JSON.stringify(scanner.toSarif(result.findings, rules, version), null, 2) + '\n'
        } else {
          report = renderReport(result.findings, scanner.groupByFingerprint(result.findings))
        }
        if (opts.output) writeFileSync(opts.output, report)
        else await ctx.out(report)
        const s = result.stats
        ctx.note(
          `scanned ${formatCount(s.files)} files (${formatBytes(s.bytes)})` +
            (s.commits > 0 ? ` and ${formatCount(s.commits)} commits` : '') +
            ` in ${seconds.toFixed(1)} s; skipped ${s.skippedBinary} binary, ${s.skippedLarge} oversized, ` +
            `${s.ignored} ignored; ${s.suppressed} placeholders suppressed, ${s.baselined} in baseline`,
        )
        if (result.findings.length > 0) ctx.setExitCode(exitCodes.findings)
        return result
      }

      if (!ingest) {
        await run(envKey ? scanner.parseKey(envKey, 'TESSERA_SCANNER_KEY') : fileKey())
        return
      }
      await ctx.withBackend(cmd, async (backend) => {
        const key = envKey
          ? scanner.parseKey(envKey, 'TESSERA_SCANNER_KEY')
          : backend.store
            ? await scanner.loadStoreKey(backend.store)
            : fileKey()
        const result = await run(key)
        const observations = scanner.findingsToObservations(result.findings, {
          ...(result.repository ? { repository: result.repository } : {}),
        })
        const batch = 5000
        let inserted = 0
        let changed = 0
        let unchanged = 0
        for (let i = 0; i < observations.length; i += batch) {
          const r = await backend.inventory.ingest(observations.slice(i, i + batch))
          inserted += r.inserted
          changed += r.changed
          unchanged += r.unchanged
        }
        ctx.note(
          `ingested ${formatCount(observations.length)} observations into ${backend.location}: ` +
            `inserted ${inserted}, changed ${changed}, unchanged ${unchanged}`,
        )
      })
    })
}

interface Row {
  severity: string
  rule: string
  where: string
  commit: string
  preview: string
  fingerprint: string
  shared: number
}

function renderReport(
  findings: readonly {
    severity: string
    rule: string
    file: string
    line: number
    commit?: string
    preview: string
    fingerprint: string
  }[],
  groups: Map<string, unknown[]>,
): string {
  if (findings.length === 0) return 'no secrets found\n'
  const columns: Column<Row>[] = [
    { header: 'SEVERITY', value: (r) => r.severity },
    { header: 'RULE', value: (r) => r.rule },
    { header: 'LOCATION', value: (r) => r.where, maxWidth: 60, truncate: 'middle' },
    { header: 'COMMIT', value: (r) => r.commit },
    { header: 'PREVIEW', value: (r) => r.preview },
    { header: 'FINGERPRINT', value: (r) => r.fingerprint },
    { header: 'PLACES', value: (r) => r.shared, align: 'right' },
  ]
  const rows = findings.map((f) => ({
    severity: f.severity,
    rule: f.rule,
    where: `${f.file}:${f.line}`,
    commit: f.commit ? f.commit.slice(0, 10) : '',
    preview: f.preview,
    fingerprint: f.fingerprint.slice(0, 12),
    shared: groups.get(f.fingerprint)?.length ?? 1,
  }))
  const shared = [...groups.values()].filter((g) => g.length > 1).length
  return (
    renderTable(columns, rows) +
    `\n${findings.length} findings, ${groups.size} distinct secrets` +
    (shared > 0 ? `, ${shared} shared across several places` : '') +
    '\n'
  )
}
