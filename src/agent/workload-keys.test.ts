import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createEntryIndex } from './selectors.js'
import { encodeKeyPair, generateEncodedKeyPair } from './workload-keys.js'

describe('workload key encoding', () => {
  it("is byte-identical to OpenSSL's PKCS#8 and SPKI encoders for P-256", () => {
    for (let i = 0; i < 300; i++) {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const e = encodeKeyPair(publicKey, privateKey)
      assert.deepEqual(e.spki, publicKey.export({ type: 'spki', format: 'der' }))
      assert.deepEqual(e.pkcs8, privateKey.export({ type: 'pkcs8', format: 'der' }))
    }
  })

  it('falls back to OpenSSL for other key types', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' })
    const e = encodeKeyPair(publicKey, privateKey)
    assert.deepEqual(e.pkcs8, privateKey.export({ type: 'pkcs8', format: 'der' }))
    assert.deepEqual(e.spki, publicKey.export({ type: 'spki', format: 'der' }))
  })

  it('generates pairs the openssl CLI reads, whose halves belong together', async () => {
    const { spki, pkcs8 } = await generateEncodedKeyPair()
    const data = Buffer.from('tessera')
    const sig = sign('sha256', data, createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }))
    assert.ok(
      verify('sha256', data, createPublicKey({ key: spki, format: 'der', type: 'spki' }), sig),
    )
    const dir = mkdtempSync(join(tmpdir(), 'tessera-keys-'))
    try {
      writeFileSync(join(dir, 'k.der'), pkcs8)
      const text = execFileSync(
        'openssl',
        ['pkey', '-inform', 'DER', '-in', join(dir, 'k.der'), '-text_pub', '-noout'],
        { encoding: 'utf8' },
      )
      assert.match(text, /prime256v1|P-256/)
      const pub = execFileSync('openssl', [
        'pkey',
        '-inform',
        'DER',
        '-in',
        join(dir, 'k.der'),
        '-pubout',
        '-outform',
        'DER',
      ])
      assert.deepEqual(pub, spki)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('entry index', () => {
  const sel = (k: string): { type: string; value: string } => ({ type: 'k', value: k })
  const entry = (id: string, keys: string[]) =>
    ({ id, revision: 1, spiffeId: `spiffe://td/${id}`, selectors: keys.map(sel) }) as never

  it('matches by the subset rule whichever selector an entry is filed under (fuzz vs naive)', () => {
    const keyArb = fc.constantFrom('a', 'b', 'c', 'd', 'e')
    fc.assert(
      fc.property(
        fc.array(fc.array(keyArb, { maxLength: 3 }), { maxLength: 12 }),
        fc.array(keyArb, { maxLength: 5 }),
        fc.array(fc.nat(11), { maxLength: 4 }),
        (entryKeys, workload, deleted) => {
          const index = createEntryIndex()
          entryKeys.forEach((keys, i) =>
            index.upsert(entry(`e${String(i).padStart(2, '0')}`, keys)),
          )
          for (const d of deleted) index.delete(`e${String(d).padStart(2, '0')}`)
          const gone = new Set(deleted.map((d) => `e${String(d).padStart(2, '0')}`))
          const expected = entryKeys
            .map((keys, i) => ({ id: `e${String(i).padStart(2, '0')}`, keys }))
            .filter(
              (e) =>
                !gone.has(e.id) && e.keys.length > 0 && e.keys.every((k) => workload.includes(k)),
            )
            .map((e) => e.id)
          assert.deepEqual(
            index.match(workload.map(sel)).map((e) => e.id),
            expected,
          )
        },
      ),
    )
  })

  it('does not scan a selector shared by every entry for each workload', () => {
    const index = createEntryIndex()
    for (let i = 0; i < 20_000; i++) index.upsert(entry(`w${i}`, [`own:${i}`, 'uid:1000']))
    const t0 = process.cpuUsage()
    for (let i = 0; i < 20_000; i++) {
      assert.equal(index.match([sel(`own:${i}`), sel('uid:1000')]).length, 1)
    }
    const { user, system } = process.cpuUsage(t0)
    // Scanning the shared selector would be 4·10^8 steps (minutes); filed by anchor it is ~40,000.
    assert.ok(user + system < 5_000_000, `took ${(user + system) / 1000} ms CPU`)
  })
})
