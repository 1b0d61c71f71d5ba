/**
 * Secret scan budget (DESIGN.md §7): recall ≥ 95% and precision ≥ 95% on the labelled corpus, and
 * throughput ≥ 3× secretlint (recommended preset) on the same files, in the same run.
 *
 *   npm run bench -- scan [--size MB] [--history-share PCT] [--workers N] [--skip-secretlint] [--keep]
 *
 * It generates a corpus of `--size` MB (default 200) in a temp dir: source files in many formats
 * with planted fake secrets, plus a git repository (built with `git fast-import`) whose history
 * holds `--history-share` percent of the bytes. Tessera scans the files and the history;
 * secretlint scans the same files (it has no history mode), and the ratio compares the two on the
 * files.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { listFiles, resolveRules, scanTarget } from '../src/scanner/index.js'
import { emptyStats } from '../src/scanner/types.js'
import { score, type Label } from '../test/scanner/corpus-builder.js'
import { createRng, fakeMakers, type Rng } from '../test/scanner/fakes.js'
import { fmtInt, heading, progress, progressDone, report } from './support.js'

const filler = [
  "import { readFile } from 'node:fs/promises'",
  'export async function loadConfig(path: string): Promise<Config> {',
  "  const text = await readFile(path, 'utf8')",
  '  return JSON.parse(text) as Config',
  '}',
  'def handler(event, context):',
  '    token_url = config.get("token_url")',
  '    if not password:',
  '        raise ValueError("missing password")',
  '    return {"statusCode": 200, "body": json.dumps(event)}',
  'func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {',
  '\tctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)',
  '\tdefer cancel()',
  '}',
  'resource "aws_s3_bucket" "logs" {',
  '  bucket = "acme-logs-${var.environment}"',
  '}',
  'spring.datasource.url=jdbc:postgresql://db:5432/orders',
  'spring.datasource.password=${DB_PASSWORD}',
  '  - name: Deploy',
  '    run: ./scripts/deploy.sh --token "$DEPLOY_TOKEN"',
  "    const res = await fetch('https://api.acme.internal/v1/items?limit=100')",
  '    logger.info("refreshing access token for %s", client_id)',
  '<dependency><groupId>org.apache.commons</groupId><artifactId>commons-lang3</artifactId></dependency>',
  '    secret_name = "orders/db"  # resolved at runtime from the secret manager',
  '// The API key is read from the environment; never commit it.',
  'SELECT id, name, created_at FROM orders WHERE customer_id = $1 ORDER BY created_at DESC;',
  '  "integrity": "sha512-3ZqY0f8pGZk0aQmD9k6o1g3L5nV2uWc0e9fGQ6a1tPq5uJ8hX2sV9wK3nY4bR7mT6xC1oE5zA0dF8gH2jL4kM==",',
  'for (let i = 0; i < items.length; i++) total += items[i].price * items[i].quantity',
  'class TokenBucket { constructor(rate, burst) { this.rate = rate; this.burst = burst } }',
]
const exts = ['ts', 'py', 'go', 'tf', 'properties', 'yaml', 'js', 'java', 'xml', 'md', 'sh', 'json']
const plantable = Object.keys(fakeMakers).filter(
  (r) => !fakeMakers[r]!.make(createRng(1)).includes('\n'),
)

function fillerText(rng: Rng, bytes: number): string {
  const lines: string[] = []
  let n = 0
  while (n < bytes) {
    const l = filler[Math.floor(rng.next() * filler.length)]!
    lines.push(l)
    n += l.length + 1
  }
  return lines.join('\n') + '\n'
}

function plantLine(rng: Rng): string {
  const rule = plantable[Math.floor(rng.next() * plantable.length)]!
  const m = fakeMakers[rule]!
  return `${m.name} = "${m.make(rng)}"`
}

/** Writes about `bytes` of source files with a planted secret in one file of 8. */
function writeFiles(dir: string, bytes: number, rng: Rng): { files: number; planted: number } {
  const fileSize = 64 * 1024
  let files = 0
  let planted = 0
  for (let written = 0; written < bytes; written += fileSize) {
    const sub = join(dir, `pkg${Math.floor(files / 200)}`)
    if (files % 200 === 0) mkdirSync(sub, { recursive: true })
    let text = fillerText(rng, fileSize)
    if (files % 8 === 0) {
      const at = text.indexOf('\n', Math.floor(text.length / 2))
      text = text.slice(0, at + 1) + plantLine(rng) + '\n' + text.slice(at + 1)
      planted++
    }
    writeFileSync(join(sub, `file${files}.${exts[files % exts.length]}`), text)
    files++
    if (files % 100 === 0) progress(`generating files: ${Math.round(written / 1e6)} MB`)
  }
  return { files, planted }
}

/** A repository whose history adds about `bytes`, built with `git fast-import`. */
async function writeHistory(
  dir: string,
  bytes: number,
  rng: Rng,
): Promise<{ commits: number; planted: number }> {
  mkdirSync(dir, { recursive: true })
  await run('git', ['init', '-q', '-b', 'main'], dir)
  const child = spawn('git', ['fast-import', '--quiet'], {
    cwd: dir,
    stdio: ['pipe', 'inherit', 'inherit'],
  })
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`git fast-import exited ${code}`)),
    )
  })
  const write = (s: string | Buffer) =>
    new Promise<void>((resolve) =>
      child.stdin.write(s) ? resolve() : child.stdin.once('drain', resolve),
    )
  const data = async (text: string) => {
    const b = Buffer.from(text)
    await write(`data ${b.length}\n`)
    await write(b)
    await write('\n')
  }
  const perCommit = 256 * 1024
  let commits = 0
  let planted = 0
  for (let written = 0; written < bytes; written += perCommit) {
    const when = 1_700_000_000 + commits * 3600
    const who = `Dev ${commits % 7} <dev${commits % 7}@acme.test> ${when} +0000`
    await write(
      `commit refs/heads/${commits % 5 === 4 ? 'feature' : 'main'}\nmark :${commits + 1}\nauthor ${who}\ncommitter ${who}\n`,
    )
    await data(`change ${commits}`)
    if (commits > 0) await write(`from :${commits}\n`)
    for (let f = 0; f < 4; f++) {
      let text = fillerText(rng, perCommit / 4)
      if ((commits * 4 + f) % 8 === 0) {
        text = plantLine(rng) + '\n' + text
        planted++
      }
      await write(`M 100644 inline src/m${commits % 50}/f${f}.${exts[f]}\n`)
      await data(text)
    }
    commits++
  }
  child.stdin.end()
  await done
  return { commits, planted }
}

function run(cmd: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd, stdio: 'ignore' })
    c.on('error', reject)
    c.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args[0]} exited ${code}`)),
    )
  })
}

async function runSecretlint(root: string): Promise<{ seconds: number; findings: number }> {
  const { createEngine } = await import('@secretlint/node')
  const engine = await createEngine({
    cwd: root,
    formatter: 'json',
    color: false,
    maskSecrets: true,
    configFileJSON: { rules: [{ id: '@secretlint/secretlint-rule-preset-recommend' }] },
  })
  const files = listFiles(root, emptyStats(), Number.MAX_SAFE_INTEGER).map((f) => f.path)
  const t0 = performance.now()
  const result = await engine.executeOnFiles({ filePathList: files })
  const seconds = (performance.now() - t0) / 1000
  const parsed = JSON.parse(result.output || '[]') as { messages: unknown[] }[]
  return { seconds, findings: parsed.reduce((n, r) => n + r.messages.length, 0) }
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      size: { type: 'string', default: '200' },
      'history-share': { type: 'string', default: '10' },
      workers: { type: 'string' },
      'skip-secretlint': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
    },
  })
  const sizeMb = Number(values.size)
  const share = Number(values['history-share']) / 100
  const workers =
    values.workers === undefined ? Math.min(availableParallelism(), 8) : Number(values.workers)
  const rules = resolveRules()
  const key = Buffer.alloc(32, 9)
  const root = mkdtempSync(join(tmpdir(), 'tessera-bench-scan-'))
  const filesDir = join(root, 'files')
  const repoDir = join(root, 'repo')
  try {
    const rng = createRng(2026)
    const historyBytes = Math.round(sizeMb * 1e6 * share)
    const fileBytes = Math.round(sizeMb * 1e6) - historyBytes
    const gen = writeFiles(filesDir, fileBytes, rng)
    const hist = await writeHistory(repoDir, historyBytes, rng)
    progressDone()

    heading(
      `secret scan: ${sizeMb} MB generated (${fmtInt(gen.files)} files, ${fmtInt(hist.commits)} commits), ${workers} workers, ${rules.length} rules`,
    )
    let t0 = performance.now()
    const files = await scanTarget({ target: filesDir, rules, key, workers })
    const filesSeconds = (performance.now() - t0) / 1000
    const filesMb = files.stats.bytes / 1e6
    report(
      'tessera, files',
      `${(filesMb / filesSeconds).toFixed(1)} MB/s`,
      `${filesMb.toFixed(0)} MB in ${filesSeconds.toFixed(1)} s; ${fmtInt(files.findings.length)} findings (${fmtInt(gen.planted)} planted)`,
    )

    t0 = performance.now()
    const history = await scanTarget({ target: repoDir, rules, key, workers, history: true })
    const histSeconds = (performance.now() - t0) / 1000
    const histMb = history.stats.bytes / 1e6
    report(
      'tessera, git history (added lines)',
      `${(histMb / histSeconds).toFixed(1)} MB/s`,
      `${histMb.toFixed(0)} MB, ${fmtInt(history.stats.commits)} commits in ${histSeconds.toFixed(1)} s; ${fmtInt(history.findings.filter((f) => f.commit).length)} findings (${fmtInt(hist.planted)} planted)`,
    )

    if (!values['skip-secretlint']) {
      const sl = await runSecretlint(filesDir)
      const ratio = filesSeconds > 0 ? sl.seconds / filesSeconds : Number.NaN
      report(
        'secretlint (preset-recommend), same files',
        `${(filesMb / sl.seconds).toFixed(1)} MB/s`,
        `${sl.seconds.toFixed(1)} s; ${fmtInt(sl.findings)} findings`,
      )
      report(
        'throughput ratio tessera / secretlint',
        `${ratio.toFixed(1)}×`,
        `budget ≥ 3× — ${ratio >= 3 ? 'met' : 'NOT met'}`,
      )
    }

    const corpus = fileURLToPath(new URL('../test/scanner/corpus/', import.meta.url))
    const labels = JSON.parse(
      readFileSync(new URL('../test/scanner/corpus-labels.json', import.meta.url), 'utf8'),
    ) as Label[]
    const labelled = await scanTarget({ target: corpus, rules, key, workers: 0 })
    const s = score(labelled.findings, labels)
    const worst = [...s.perRule.entries()]
      .map(([rule, e]) => ({
        rule,
        recall: e.tp / Math.max(1, e.tp + e.fn),
        precision: e.tp / Math.max(1, e.tp + e.fp),
      }))
      .sort((a, b) => Math.min(a.recall, a.precision) - Math.min(b.recall, b.precision))[0]
    report(
      'labelled corpus recall',
      `${(s.recall * 100).toFixed(1)}%`,
      `${labels.length} labels, ${s.perRule.size} rules; budget ≥ 95%`,
    )
    report(
      'labelled corpus precision',
      `${(s.precision * 100).toFixed(1)}%`,
      `lowest rule: ${worst?.rule} (${((worst?.recall ?? 0) * 100).toFixed(0)}% / ${((worst?.precision ?? 0) * 100).toFixed(0)}%)`,
    )
  } finally {
    if (values.keep) process.stderr.write(`corpus kept in ${root}\n`)
    else rmSync(root, { recursive: true, force: true })
  }
}
