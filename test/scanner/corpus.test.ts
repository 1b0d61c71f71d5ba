import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it, before } from 'node:test'
import { fileURLToPath } from 'node:url'
import { resolveRules, scanTarget, type Finding } from '../../src/scanner/index.js'
import { score, type Label } from './corpus-builder.js'
import { testKey } from './support.js'

const corpus = fileURLToPath(new URL('./corpus/', import.meta.url))
const labels = JSON.parse(
  readFileSync(new URL('./corpus-labels.json', import.meta.url), 'utf8'),
) as Label[]

describe('labelled corpus', () => {
  let findings: Finding[]
  let suppressed = 0
  before(async () => {
    const r = await scanTarget({ target: corpus, rules: resolveRules(), key: testKey, workers: 2 })
    findings = r.findings
    suppressed = r.stats.suppressed
  })

  it('labels at least 40 credential types in at least 12 formats', () => {
    assert.ok(new Set(labels.map((l) => l.rule)).size >= 40)
    const exts = new Set(labels.map((l) => l.file.replace(/^.*\//, '').replace(/^[^.]*/, '')))
    assert.ok(exts.size >= 12, [...exts].join(' '))
  })

  it('has recall and precision of at least 95% per rule and overall', () => {
    const s = score(findings, labels)
    for (const [rule, e] of s.perRule) {
      const recall = e.tp / Math.max(1, e.tp + e.fn)
      const precision = e.tp / Math.max(1, e.tp + e.fp)
      assert.ok(recall >= 0.95, `${rule}: recall ${recall}`)
      assert.ok(precision >= 0.95, `${rule}: precision ${precision}`)
    }
    assert.ok(s.recall >= 0.95, `recall ${s.recall}`)
    assert.ok(s.precision >= 0.95, `precision ${s.precision}`)
  })

  it('reports nothing in decoy files: public keys, certificates, lockfiles, fixtures', () => {
    const decoys = [
      'keys/id_ed25519.pub',
      'keys/server.crt',
      'keys/public.pem',
      'package-lock.json',
      'yarn.lock',
      'go.sum',
      'tests/fixtures/tokens.py',
      'docs/README.md:6',
    ]
    for (const d of decoys) {
      const [file, line] = d.split(':')
      assert.deepEqual(
        findings.filter((f) => f.file === file && (line === undefined || f.line === Number(line))),
        [],
        d,
      )
    }
    assert.ok(suppressed >= 3, `placeholders suppressed: ${suppressed}`)
  })

  it('finds the same secret in two files as one fingerprint with two locations', () => {
    const gh = findings.filter((f) => f.rule === 'github-pat')
    assert.equal(gh.length, 2)
    assert.equal(gh[0]!.fingerprint, gh[1]!.fingerprint)
    assert.notEqual(gh[0]!.file, gh[1]!.file)
  })
})
