import assert from 'node:assert/strict'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { isTesseraError } from '../errors.js'
import { resolveKeyManagerConfig } from './kek.js'
import { createDiskKeyManager, createKeyManager, createMemoryKeyManager } from './key-manager.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-kek-'))
after(() => rmSync(dir, { recursive: true, force: true }))

describe('disk key manager', () => {
  const kek = randomBytes(32)
  const km = createDiskKeyManager(kek)
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const der = privateKey.export({ type: 'pkcs8', format: 'der' })
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url')

  it('seals with a fresh data key each time, holding no key bytes in the clear', () => {
    const a = km.seal('k1', privateKey)
    const b = km.seal('k1', privateKey)
    assert.notDeepEqual(a.encryptedPrivateKey, b.encryptedPrivateKey)
    assert.notDeepEqual(a.wrappedDataKey, b.wrappedDataKey)
    for (const blob of [a.encryptedPrivateKey, a.wrappedDataKey]) {
      assert.equal(blob.indexOf(d), -1)
      assert.equal(blob.indexOf(der.subarray(0, 32)), -1)
      assert.equal(blob.indexOf(kek), -1)
    }
    assert.match(a.kekId, /^kek:[0-9a-f]{16}$/)
    assert.equal(km.unseal('k1', a).export({ type: 'pkcs8', format: 'der' }).equals(der), true)
  })

  it('refuses another KEK, another key id, and tampered bytes with TSR_CA_KEY', () => {
    const sealed = km.seal('k1', privateKey)
    const other = createDiskKeyManager(randomBytes(32))
    assert.throws(() => other.unseal('k1', sealed), { code: 'TSR_CA_KEY' })
    assert.throws(() => other.unseal('k1', { ...sealed, kekId: other.kekId }), {
      code: 'TSR_CA_KEY',
    })
    assert.throws(() => km.unseal('k2', sealed), { code: 'TSR_CA_KEY' })
    const flipped = Buffer.from(sealed.encryptedPrivateKey)
    flipped[flipped.length - 1]! ^= 1
    assert.throws(() => km.unseal('k1', { ...sealed, encryptedPrivateKey: flipped }), {
      code: 'TSR_CA_KEY',
    })
    assert.throws(() => createDiskKeyManager(randomBytes(16)), { code: 'TSR_CONFIG' })
  })

  it('memory keys live only in their own process', () => {
    const m = createKeyManager({ kind: 'memory' })
    const sealed = m.seal('k', privateKey)
    assert.equal(sealed.encryptedPrivateKey.length, 0)
    assert.equal(m.unseal('k', sealed), privateKey)
    assert.throws(() => createMemoryKeyManager().unseal('k', sealed), { code: 'TSR_CA_KEY' })
  })
})

describe('KEK resolution', () => {
  const kek = randomBytes(32)

  it('takes TESSERA_KEK first, then a KEK file', () => {
    const c = resolveKeyManagerConfig({
      env: { TESSERA_KEK: kek.toString('base64') },
      store: { backend: 'postgres' },
    })
    assert.equal(c.kind, 'disk')
    assert.ok(c.kind === 'disk' && c.kek.equals(kek))
    const file = join(dir, 'kek-file')
    writeFileSync(file, kek.toString('base64') + '\n', { mode: 0o600 })
    const f = resolveKeyManagerConfig({
      env: { TESSERA_KEK_FILE: file },
      store: { backend: 'postgres' },
    })
    assert.ok(f.kind === 'disk' && f.kek.equals(kek))
  })

  it('refuses a persistent PostgreSQL store without a KEK, and a malformed KEK', () => {
    assert.throws(
      () => resolveKeyManagerConfig({ env: {}, store: { backend: 'postgres' } }),
      (err) => isTesseraError(err, 'TSR_CONFIG') && /TESSERA_KEK/.test(err.message),
    )
    for (const bad of [
      'short',
      randomBytes(31).toString('base64'),
      randomBytes(32).toString('hex'),
    ]) {
      assert.throws(
        () =>
          resolveKeyManagerConfig({ env: { TESSERA_KEK: bad }, store: { backend: 'postgres' } }),
        {
          code: 'TSR_CONFIG',
        },
      )
    }
  })

  it('generates a 0600 KEK file beside the embedded data, warns once, and reuses it', () => {
    const warnings: string[] = []
    const first = resolveKeyManagerConfig({
      env: {},
      store: { backend: 'pglite', dataDir: dir },
      warn: (m) => warnings.push(m),
    })
    assert.equal(first.kind, 'disk')
    assert.equal(warnings.length, 1)
    assert.equal(statSync(join(dir, 'kek')).mode & 0o777, 0o600)
    assert.equal(Buffer.from(readFileSync(join(dir, 'kek'), 'utf8').trim(), 'base64').length, 32)
    const again = resolveKeyManagerConfig({
      env: {},
      store: { backend: 'pglite', dataDir: dir },
      warn: (m) => warnings.push(m),
    })
    assert.equal(warnings.length, 1)
    assert.ok(first.kind === 'disk' && again.kind === 'disk' && first.kek.equals(again.kek))
    assert.equal(resolveKeyManagerConfig({ env: {}, store: { backend: 'pglite' } }).kind, 'memory')
  })
})
