import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { runCli } from '../../src/cli/program.js'
import { resolveRules, scanTarget } from '../../src/scanner/index.js'
import { Capture } from '../cli/support.js'
import { createRng, fakeMakers } from './fakes.js'
import { createRepo, tempDir, testKey, testKeyHex } from './support.js'

const alice = { name: 'Alice Dev', email: 'alice@acme.test', date: '2025-03-01T10:00:00+00:00' }
const bob = { name: 'Bob Ops', email: 'bob@acme.test', date: '2025-04-02T11:30:00+00:00' }

function repoWithDeletedSecret() {
  const rng = createRng(99)
  const token = fakeMakers['github-pat']!.make(rng)
  const stripe = fakeMakers['stripe-secret-key']!.make(rng)
  const repo = createRepo()
  repo.write('README.md', '# app\n')
  const c1 = repo.commit('initial', alice)
  repo.write('config/app.env', `LOG_LEVEL=info\nGITHUB_TOKEN=${token}\n`)
  const c2 = repo.commit('add config', alice)
  repo.write('config/app.env', 'LOG_LEVEL=info\nGITHUB_TOKEN=${GITHUB_TOKEN}\n')
  const c3 = repo.commit('remove the token', bob)
  return { repo, token, stripe, commits: [c1, c2, c3] }
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const stdout = new Capture()
  const stderr = new Capture()
  const code = await runCli(args, {
    stdout,
    stderr,
    env: { TESSERA_SCANNER_KEY: testKeyHex, TESSERA_CONFIG: '/nonexistent/tessera.json', ...env },
  })
  return { code, stdout: stdout.text, stderr: stderr.text }
}

describe('git history', () => {
  it('finds a secret that only a merge commit introduced, and credits branch secrets to their own commit', async () => {
    const rng = createRng(7)
    const branchToken = fakeMakers['github-pat']!.make(rng)
    const mergeToken = fakeMakers['stripe-secret-key']!.make(rng)
    const repo = createRepo()
    repo.write('config/app.env', 'MODE=base\n')
    repo.commit('base', alice)
    repo.git(['checkout', '-q', '-b', 'feature'])
    repo.write('config/app.env', 'MODE=feature\n')
    repo.write('ci/deploy.env', `GITHUB_TOKEN=${branchToken}\n`)
    const featureCommit = repo.commit('feature', bob)
    repo.git(['checkout', '-q', 'main'])
    repo.write('config/app.env', 'MODE=main\n')
    repo.commit('main change', alice)
    // The merge conflicts; its resolution writes a secret that neither parent has.
    const identity = {
      GIT_AUTHOR_NAME: bob.name,
      GIT_AUTHOR_EMAIL: bob.email,
      GIT_COMMITTER_NAME: bob.name,
      GIT_COMMITTER_EMAIL: bob.email,
    }
    assert.throws(() => repo.git(['merge', '-q', '--no-ff', 'feature'], identity))
    assert.ok(existsSync(join(repo.dir, '.git', 'MERGE_HEAD')), 'the merge stops on its conflict')
    repo.write('config/app.env', `MODE=merged\nSTRIPE_KEY=${mergeToken}\n`)
    const mergeCommit = repo.commit('merge feature', bob)
    assert.equal(repo.git(['rev-list', '--parents', '-n', '1', 'HEAD']).trim().split(' ').length, 3)
    const r = await scanTarget({
      target: repo.dir,
      rules: resolveRules(),
      key: testKey,
      history: true,
      workers: 1,
    })
    const inHistory = r.findings.filter((f) => f.commit !== undefined)
    const stripe = inHistory.filter((f) => f.rule === 'stripe-secret-key')
    assert.equal(stripe.length, 1)
    assert.equal(stripe[0]!.commit, mergeCommit)
    assert.equal(stripe[0]!.file, 'config/app.env')
    assert.equal(stripe[0]!.line, 2)
    const github = inHistory.filter((f) => f.rule === 'github-pat')
    assert.deepEqual(
      github.map((f) => f.commit),
      [featureCommit],
    )
  })

  it('finds a secret that was added then deleted, with its commit, author and date', async () => {
    const { repo, commits } = repoWithDeletedSecret()
    const r = await scanTarget({
      target: repo.dir,
      rules: resolveRules(),
      key: testKey,
      history: true,
      workers: 1,
    })
    assert.equal(r.stats.commits, 3)
    const hit = r.findings.filter((f) => f.rule === 'github-pat')
    assert.equal(hit.length, 1)
    assert.equal(hit[0]!.commit, commits[1])
    assert.equal(hit[0]!.file, 'config/app.env')
    assert.equal(hit[0]!.line, 2)
    assert.equal(hit[0]!.author, 'Alice Dev')
    assert.equal(hit[0]!.email, 'alice@acme.test')
    assert.equal(hit[0]!.date, '2025-03-01T10:00:00+00:00')
    // The working tree no longer has it.
    assert.equal(r.findings.filter((f) => f.commit === undefined).length, 0)
  })

  it('rescans only new commits with a state file', async () => {
    const { repo, stripe } = repoWithDeletedSecret()
    const state = join(tempDir(), 'state.json')
    const opts = {
      target: repo.dir,
      rules: resolveRules(),
      key: testKey,
      history: true,
      workers: 0,
    }
    const first = await scanTarget({ ...opts, stateFile: state })
    assert.equal(first.commitsScanned.length, 3)
    repo.write('src/pay.py', `STRIPE = "${stripe}"\n`)
    const c4 = repo.commit('payments', bob)
    repo.git(['checkout', '-q', '-b', 'feature'])
    repo.write('src/other.txt', 'nothing here\n')
    const c5 = repo.commit('feature work', bob)
    const second = await scanTarget({ ...opts, stateFile: state })
    assert.deepEqual(new Set(second.commitsScanned), new Set([c4, c5]))
    assert.equal(second.stats.commits, 2)
    const h = second.findings.filter((f) => f.commit !== undefined)
    assert.deepEqual(
      h.map((f) => [f.rule, f.commit, f.email]),
      [['stripe-secret-key', c4, 'bob@acme.test']],
    )
    const third = await scanTarget({ ...opts, stateFile: state })
    assert.equal(third.stats.commits, 0)
  })

  it('clones a git URL as a mirror and scans every ref', async () => {
    const { repo, commits } = repoWithDeletedSecret()
    // A secret only on a side branch.
    repo.git(['checkout', '-q', '-b', 'side', commits[0]!])
    repo.write('x.yaml', `slack: ${fakeMakers['slack-bot-token']!.make(createRng(3))}\n`)
    const side = repo.commit('side branch', bob)
    const r = await cli(['scan', `file://${repo.dir}`, '--json'])
    assert.equal(r.code, 1, r.stderr)
    const out = JSON.parse(r.stdout) as { rule: string; commit: string }[]
    assert.deepEqual(
      out.map((f) => [f.rule, f.commit]).sort(),
      [
        ['github-pat', commits[1]!],
        ['slack-bot-token', side],
      ].sort(),
    )
  })

  it('reports a clear error for a clone that fails, without the URL credentials', async () => {
    const r = await cli(['scan', 'https://user:hunter2secret@127.0.0.1:1/none.git'])
    assert.equal(r.code, 3)
    assert.match(r.stderr, /TSR_SCANNER_GIT/)
    assert.ok(!r.stderr.includes('hunter2secret'))
  })
})

describe('tessera scan', () => {
  it('exits 0 with no findings and 1 with findings; 2 on usage errors', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'a.txt'), 'hello\n')
    assert.equal((await cli(['scan', dir])).code, 0)
    writeFileSync(join(dir, 'b.env'), `NPM_TOKEN=${fakeMakers['npm-token']!.make(createRng(1))}\n`)
    const r = await cli(['scan', dir])
    assert.equal(r.code, 1)
    assert.match(r.stdout, /npm-token +b\.env:1/)
    assert.equal((await cli(['scan', dir, '--format', 'xml'])).code, 2)
    assert.equal((await cli(['scan'])).code, 2)
  })

  it('writes SARIF 2.1.0 that code scanning accepts', async () => {
    const { repo } = repoWithDeletedSecret()
    const r = await cli(['scan', repo.dir, '--history', '--format', 'sarif'])
    assert.equal(r.code, 1)
    const sarif = JSON.parse(r.stdout) as {
      version: string
      $schema: string
      runs: {
        tool: {
          driver: { name: string; rules: { id: string; shortDescription: { text: string } }[] }
        }
        results: {
          ruleId: string
          ruleIndex: number
          message: { text: string }
          locations: {
            physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } }
          }[]
          partialFingerprints: Record<string, string>
        }[]
      }[]
    }
    assert.equal(sarif.version, '2.1.0')
    assert.match(sarif.$schema, /sarif-2\.1\.0/)
    assert.equal(sarif.runs.length, 1)
    const run = sarif.runs[0]!
    assert.equal(run.tool.driver.name, 'tessera')
    assert.ok(run.tool.driver.rules.length >= 40)
    assert.equal(new Set(run.tool.driver.rules.map((x) => x.id)).size, run.tool.driver.rules.length)
    assert.equal(run.results.length, 1)
    for (const res of run.results) {
      assert.equal(run.tool.driver.rules[res.ruleIndex]!.id, res.ruleId)
      assert.ok(res.message.text.length > 0)
      const loc = res.locations[0]!.physicalLocation
      assert.equal(loc.artifactLocation.uri, 'config/app.env')
      assert.ok(!loc.artifactLocation.uri.startsWith('/'))
      assert.ok(Number.isInteger(loc.region.startLine) && loc.region.startLine >= 1)
      assert.match(Object.values(res.partialFingerprints)[0]!, /^[0-9a-f]{64}$/)
    }
  })

  it('baselines known findings so only new ones fail', async () => {
    const dir = tempDir()
    const rng = createRng(11)
    writeFileSync(join(dir, 'old.env'), `SLACK=${fakeMakers['slack-bot-token']!.make(rng)}\n`)
    const baseline = join(tempDir(), 'baseline.json')
    const first = await cli(['scan', dir, '--write-baseline', baseline])
    assert.equal(first.code, 1)
    assert.ok(existsSync(baseline))
    assert.equal((await cli(['scan', dir, '--baseline', baseline])).code, 0)
    writeFileSync(join(dir, 'new.env'), `HF=${fakeMakers['huggingface-token']!.make(rng)}\n`)
    const r = await cli(['scan', dir, '--baseline', baseline, '--json'])
    assert.equal(r.code, 1)
    assert.deepEqual(
      (JSON.parse(r.stdout) as { rule: string }[]).map((f) => f.rule),
      ['huggingface-token'],
    )
  })

  it('honours .tesseraignore, inline allow comments, and skips binary and oversized files', async () => {
    const dir = tempDir()
    const rng = createRng(12)
    const tok = () => fakeMakers['gitlab-pat']!.make(rng)
    writeFileSync(join(dir, '.tesseraignore'), '# generated\nvendor/\n*.snap\n!keep.snap\n')
    const files: Record<string, string> = {
      'vendor/lib.js': `t = "${tok()}"\n`,
      'a.snap': `t = "${tok()}"\n`,
      'keep.snap': `t = "${tok()}"\n`,
      'allowed.py': `T = "${tok()}"  # tessera:allow\n`,
      'next.py': `# tessera:allow-next-line\nT = "${tok()}"\n`,
      'big.txt': `T = "${tok()}"\n` + 'x'.repeat(5000),
    }
    for (const [p, t] of Object.entries(files)) {
      const abs = join(dir, p)
      await import('node:fs').then((fs) => fs.mkdirSync(join(abs, '..'), { recursive: true }))
      writeFileSync(abs, t)
    }
    writeFileSync(
      join(dir, 'blob.bin'),
      Buffer.concat([Buffer.from(`T=${tok()}\n`), Buffer.alloc(10)]),
    )
    const r = await cli(['scan', dir, '--json', '--max-file-size', '4000'])
    assert.deepEqual(
      (JSON.parse(r.stdout) as { file: string }[]).map((f) => f.file),
      ['keep.snap'],
    )
    assert.match(r.stderr, /skipped 1 binary, 1 oversized, 2 ignored; 2 placeholders suppressed/)
  })

  it('loads user rules with --rules and rejects a bad rule file with TSR_SCANNER_RULES', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'app.cfg'), 'acme_key = ACME-7f3k9q2m8x4v6b1n5c0z\n')
    const rules = join(tempDir(), 'acme.yaml')
    writeFileSync(
      rules,
      [
        'version: 1',
        'name: acme',
        'rules:',
        '  - id: acme-key',
        '    title: ACME internal key',
        '    severity: high',
        '    credentialType: api_key',
        '    keywords: [acme-]',
        "    regex: '\\b(?<secret>ACME-[a-z0-9]{20})\\b'",
        '    entropy: 3',
      ].join('\n'),
    )
    const r = await cli(['scan', dir, '--rules', rules, '--json'])
    assert.equal(r.code, 1, r.stderr)
    assert.deepEqual(
      (JSON.parse(r.stdout) as { rule: string }[]).map((f) => f.rule),
      ['acme-key'],
    )
    writeFileSync(rules, readFileSync(rules, 'utf8').replace('severity: high', 'severity: huge'))
    const bad = await cli(['scan', dir, '--rules', rules])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /TSR_SCANNER_RULES/)
    assert.match(bad.stderr, /rule "acme-key": severity/)
  })
})
