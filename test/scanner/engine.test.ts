import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { TesseraError } from '../../src/errors.js'
import {
  builtinRuleSets,
  createDetector,
  loadOrCreateKeyFile,
  loadStoreKey,
  parseIgnore,
  redactedPreview,
  resolveRules,
  validateRuleSet,
} from '../../src/scanner/index.js'
import { createKeywordMatcher } from '../../src/scanner/keywords.js'
import { base62Crc32, validJwt, validPrefixedCrc32 } from '../../src/scanner/validators.js'
import { testBackends } from '../support/stores.js'
import { alnum, createRng, fakeMakers } from './fakes.js'
import { createRepo, tempDir, testKey } from './support.js'
import { resolveRules as rules, scanTarget } from '../../src/scanner/index.js'

describe('validators', () => {
  it('accepts GitHub and npm tokens whose last 6 characters are the base62 CRC32', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...alnum), minLength: 30, maxLength: 30 }),
        (body) => {
          const token = `ghp_${body}${base62Crc32(body)}`
          assert.ok(validPrefixedCrc32(token))
          // Any single change of the random part breaks the checksum (CRC32 detects it).
          const i = body.length >> 1
          const other = body[i] === 'a' ? 'b' : 'a'
          assert.ok(
            !validPrefixedCrc32(
              `ghp_${body.slice(0, i)}${other}${body.slice(i + 1)}${base62Crc32(body)}`,
            ),
          )
        },
      ),
    )
    assert.equal(base62Crc32('').length, 6)
  })

  it('recognises a JWT by its JSON header with alg, and rejects look-alikes', () => {
    const jwt = fakeMakers.jwt!.make(createRng(1))
    assert.ok(validJwt(jwt))
    assert.ok(!validJwt('eyJhbGciOiJub25lIn0x.eyJzdWIiOiIxIn0x.abc'))
    assert.ok(!validJwt('eyJub3Rqc29u.eyJub3Rqc29u.abc'))
  })
})

describe('redacted preview', () => {
  it('shows at most the first and last 4 characters, and at most 40% of the secret', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 200 }), (s) => {
        const p = redactedPreview(s)
        const shown = [...p].length - 1
        assert.ok(shown <= 8)
        assert.ok(shown <= 0.4 * [...s].length, `${shown} of ${[...s].length}`)
      }),
    )
    assert.equal(redactedPreview('ghp_abcdefghijklmnopqrstuvwxyz0123456789'), 'ghp_…6789')
    assert.equal(redactedPreview('short'), '…')
  })
})

describe('keyword matcher', () => {
  it('finds exactly the case-insensitive occurrences that indexOf finds, overlapping ones too', () => {
    const kwArb = fc.uniqueArray(
      fc.string({ unit: fc.constantFrom('a', 'b', 'c', '_', '-'), minLength: 1, maxLength: 4 }),
      { minLength: 1, maxLength: 6 },
    )
    const textArb = fc.string({
      unit: fc.constantFrom('a', 'B', 'c', '_', '-', 'é', '\n'),
      maxLength: 80,
    })
    fc.assert(
      fc.property(kwArb, textArb, (kws, text) => {
        const m = createKeywordMatcher(kws)
        const got: string[] = []
        m.scan(text, (k, start) => got.push(`${k}@${start}`))
        const want: string[] = []
        const lower = text.toLowerCase()
        kws.forEach((kw, k) => {
          for (let i = lower.indexOf(kw); i >= 0; i = lower.indexOf(kw, i + 1))
            want.push(`${k}@${i}`)
        })
        assert.deepEqual(got.sort(), want.sort())
      }),
    )
  })
})

describe('engine', () => {
  const detector = createDetector(resolveRules(), testKey)

  it('never returns the secret, and never throws, on arbitrary text around planted tokens', () => {
    const makers = Object.entries(fakeMakers).filter(
      ([, m]) => !m.make(createRng(1)).includes('\n'),
    )
    fc.assert(
      fc.property(
        fc.string({ maxLength: 200 }),
        fc.integer({ min: 0, max: makers.length - 1 }),
        fc.integer({ min: 1, max: 1e6 }),
        fc.string({ maxLength: 200 }),
        (before, which, seed, after) => {
          const [, m] = makers[which]!
          const secret = m.make(createRng(seed))
          const text = `${before}\n${m.name} = "${secret}"\n${after}`
          const findings = detector.scan(text, { file: 'f' })
          assert.ok(!JSON.stringify(findings).includes(secret))
        },
      ),
      { numRuns: 300 },
    )
    fc.assert(
      fc.property(fc.string({ maxLength: 2000 }), (text) => {
        detector.scan(text, { file: 'f' })
      }),
    )
  })

  it('gives one secret one fingerprint wherever it is, and another key another fingerprint', () => {
    const tok = fakeMakers['stripe-secret-key']!.make(createRng(5))
    const a = detector.scan(`k = "${tok}"`, { file: 'a' })
    const b = detector.scan(`\n\nSTRIPE=${tok}\n`, { file: 'b' })
    assert.equal(a[0]!.fingerprint, b[0]!.fingerprint)
    assert.equal(b[0]!.line, 3)
    const other = createDetector(resolveRules(), Buffer.alloc(32, 1)).scan(`k = "${tok}"`, {
      file: 'a',
    })
    assert.notEqual(other[0]!.fingerprint, a[0]!.fingerprint)
  })

  it('suppresses placeholders, templates and documentation keys', () => {
    for (const line of [
      'AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE',
      'password = "${DB_PASSWORD}"',
      'api_key: "<your-api-key>"',
      'token = "{{ .Values.token }}"',
      `secret = "${'x'.repeat(24)}"`,
      'password = "changeme123!"',
    ]) {
      assert.deepEqual(detector.scan(line, { file: 'f' }), [], line)
    }
  })
})

describe('rule sets', () => {
  it('ship at least 40 rules with unique ids, each valid against the schema', () => {
    const all = resolveRules()
    assert.ok(all.length >= 40)
    assert.equal(new Set(all.map((r) => r.id)).size, all.length)
    for (const set of builtinRuleSets) validateRuleSet(set, set.name)
  })

  it('reject a rule set that breaks the schema with TSR_SCANNER_RULES naming the rule and field', () => {
    const good = {
      id: 'x-key',
      title: 'X key',
      severity: 'high',
      credentialType: 'api_key',
      keywords: ['x_'],
      regex: 'x_[a-z]{10}',
    }
    const cases: [unknown, RegExp][] = [
      [null, /top level/],
      [{ version: 2, name: 'a', rules: [good] }, /version/],
      [{ version: 1, name: 'a', rules: [] }, /rules/],
      [
        { version: 1, name: 'a', rules: [{ ...good, regex: '(' }] },
        /rule "x-key": regex does not compile/,
      ],
      [{ version: 1, name: 'a', rules: [{ ...good, keywords: ['X_'] }] }, /keywords/],
      [{ version: 1, name: 'a', rules: [{ ...good, credentialType: 'cookie' }] }, /credentialType/],
      [{ version: 1, name: 'a', rules: [{ ...good, validator: 'luhn' }] }, /validator/],
      [{ version: 1, name: 'a', rules: [{ ...good, flags: 'g' }] }, /flags/],
      [{ version: 1, name: 'a', rules: [{ ...good, extra: 1 }] }, /unknown field "extra"/],
      [{ version: 1, name: 'a', rules: [{ ...good, id: 'Bad Id' }] }, /id must be/],
    ]
    for (const [value, message] of cases) {
      assert.throws(
        () => validateRuleSet(value, 'f.yaml'),
        (err: unknown) =>
          err instanceof TesseraError &&
          err.code === 'TSR_SCANNER_RULES' &&
          message.test(err.message),
      )
    }
  })
})

describe('.tesseraignore', () => {
  it('follows gitignore rules: anchoring, directories, **, negation, last match wins', () => {
    const m = parseIgnore(
      '# c\n/build\nnode_modules/\n**/fixtures/**\n*.log\n!keep.log\ndocs/*.md\n',
    )
    const cases: [string, boolean, boolean][] = [
      ['build', true, true],
      ['src/build', true, false],
      ['node_modules', true, true],
      ['a/node_modules', true, true],
      ['node_modules', false, false],
      ['test/fixtures/x/y.txt', false, true],
      ['x.log', false, true],
      ['deep/a/keep.log', false, false],
      ['docs/a.md', false, true],
      ['docs/sub/a.md', false, false],
    ]
    for (const [path, dir, expected] of cases) assert.equal(m.ignores(path, dir), expected, path)
    fc.assert(
      fc.property(
        fc.string(),
        fc.string(),
        (text, path) => void parseIgnore(text).ignores(path, false),
      ),
    )
  })
})

describe('fingerprint key', () => {
  it('creates a key file once (mode 0600) and reuses it', () => {
    const file = join(tempDir(), 'sub', 'scanner.key')
    const a = loadOrCreateKeyFile(file)
    assert.equal(statSync(file).mode & 0o777, 0o600)
    assert.deepEqual(loadOrCreateKeyFile(file), a)
    assert.match(readFileSync(file, 'utf8'), /^[0-9a-f]{64}\n$/)
  })

  for (const backend of testBackends()) {
    it(`keeps one key per store in the setting table (${backend.name})`, async () => {
      const s1 = await backend.open()
      const s2 = await backend.open()
      try {
        const k1 = await loadStoreKey(s1)
        assert.deepEqual(await loadStoreKey(s1), k1)
        const [x, y] = await Promise.all([loadStoreKey(s2), loadStoreKey(s2)])
        assert.deepEqual(x, y)
        assert.notDeepEqual(x, k1)
      } finally {
        await s1.close()
        await s2.close()
      }
    })
  }
})

describe('history parsing', () => {
  it('handles odd file names and added lines that look like diff headers', async () => {
    const repo = createRepo()
    const tok = fakeMakers['gitlab-pat']!.make(createRng(8))
    repo.write(
      'dir with space/naïve file.txt',
      `++ not a header\n+++ b/fake\n@@ -1 +1 @@\nT=${tok}\n`,
    )
    const c = repo.commit('odd', {
      name: 'E',
      email: 'e@x.test',
      date: '2025-01-01T00:00:00+00:00',
    })
    const r = await scanTarget({
      target: repo.dir,
      rules: rules(),
      key: testKey,
      history: true,
      workers: 0,
    })
    const h = r.findings.filter((f) => f.commit)
    assert.deepEqual(
      h.map((f) => [f.file, f.line, f.commit]),
      [['dir with space/naïve file.txt', 4, c]],
    )
  })
})

describe('git path unquoting', () => {
  it('undoes C-style quoting with octal UTF-8 escapes', async () => {
    const { unquoteGitPath } = await import('../../src/scanner/git.js')
    assert.equal(unquoteGitPath('"b/na\\303\\257ve\\tx\\"q\\\\"'), 'b/naïve\tx"q\\')
    assert.equal(unquoteGitPath('b/plain'), 'b/plain')
    fc.assert(fc.property(fc.string(), (s) => void unquoteGitPath(`"${s}"`)))
  })
})

describe('hostile input', () => {
  it('scans long adversarial lines in linear time (no catastrophic backtracking)', () => {
    const detector = createDetector(resolveRules(), testKey)
    const lines = [
      'token'.repeat(40_000),
      'password_secret_token-'.repeat(10_000) + '=',
      `https://a:${'b'.repeat(100)}@` + 'c'.repeat(200_000),
      '-----BEGIN RSA PRIVATE KEY-----\n' + 'A'.repeat(200_000),
      'sv=2022-11-02&' + 'x'.repeat(200_000),
      'AKIA'.repeat(50_000),
      `"${'secret'.repeat(30_000)}": "${'s'.repeat(1000)}`,
    ]
    for (const line of lines) {
      const t0 = performance.now()
      detector.scan(line, { file: 'f' })
      const ms = performance.now() - t0
      assert.ok(ms < 3000, `${line.slice(0, 30)}…: ${ms.toFixed(0)} ms`)
    }
  })
})

describe('many findings', () => {
  it('handles a file with 20,000 tokens in linear time and reports each', () => {
    const detector = createDetector(resolveRules(), testKey)
    const rng = createRng(77)
    const lines: string[] = []
    for (let i = 0; i < 20_000; i++) lines.push(`T${i}=${fakeMakers['slack-bot-token']!.make(rng)}`)
    const t0 = performance.now()
    const found = detector.scan(lines.join('\n'), { file: 'f' })
    assert.equal(found.length, 20_000)
    assert.ok(found.every((f) => f.rule === 'slack-bot-token'))
    assert.ok(performance.now() - t0 < 10_000)
  })
})
