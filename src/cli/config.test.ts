import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { isTesseraError } from '../errors.js'
import { chooseBackend } from './backend.js'
import { configPath, loadConfig, saveConfig } from './config.js'

const tmp = () => mkdtempSync(join(tmpdir(), 'tessera-cli-config-'))

describe('configPath', () => {
  it('prefers TESSERA_CONFIG, then XDG_CONFIG_HOME, then ~/.config', () => {
    assert.equal(configPath({ TESSERA_CONFIG: '/x/c.json', XDG_CONFIG_HOME: '/xdg' }), '/x/c.json')
    assert.equal(configPath({ XDG_CONFIG_HOME: '/xdg', HOME: '/h' }), '/xdg/tessera/config.json')
    assert.equal(configPath({ HOME: '/h' }), '/h/.config/tessera/config.json')
  })
})

describe('saveConfig / loadConfig', () => {
  it('writes mode 0600 in a 0700 directory and reads it back', () => {
    const dir = tmp()
    const env = { XDG_CONFIG_HOME: dir }
    const path = saveConfig(env, { server: 'http://127.0.0.1:8750', token: 'tsr_x_y' })
    assert.equal(statSync(path).mode & 0o777, 0o600)
    assert.equal(statSync(join(dir, 'tessera')).mode & 0o777, 0o700)
    assert.deepEqual(loadConfig(env).config, { server: 'http://127.0.0.1:8750', token: 'tsr_x_y' })
    assert.equal(loadConfig(env).warning, undefined)
  })
  it('tightens an existing readable file on save, and warns when reading one', () => {
    const dir = tmp()
    const path = join(dir, 'c.json')
    writeFileSync(path, JSON.stringify({ server: 'http://h', token: 't' }))
    chmodSync(path, 0o644)
    assert.match(loadConfig({ TESSERA_CONFIG: path }).warning ?? '', /readable by others/)
    saveConfig({ TESSERA_CONFIG: path }, { server: 'http://h', token: 't2' })
    assert.equal(statSync(path).mode & 0o777, 0o600)
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).token, 't2')
  })
  it('treats a missing file as empty and a malformed one as TSR_CONFIG', () => {
    const dir = tmp()
    assert.deepEqual(loadConfig({ TESSERA_CONFIG: join(dir, 'none.json') }).config, {})
    const bad = join(dir, 'bad.json')
    writeFileSync(bad, '{ nope')
    assert.throws(
      () => loadConfig({ TESSERA_CONFIG: bad }),
      (e) => isTesseraError(e, 'TSR_CONFIG'),
    )
    writeFileSync(bad, '{"token": 42}')
    assert.throws(
      () => loadConfig({ TESSERA_CONFIG: bad }),
      (e) => isTesseraError(e, 'TSR_CONFIG'),
    )
  })
})

describe('chooseBackend', () => {
  const saved = () => {
    const path = join(tmp(), 'c.json')
    writeFileSync(
      path,
      JSON.stringify({ server: 'http://saved.example:8750/', token: 'saved-token' }),
      {
        mode: 0o600,
      },
    )
    return path
  }
  it('uses the embedded store in ./.tessera when nothing is configured', () => {
    const env = { TESSERA_CONFIG: join(tmp(), 'none.json') }
    assert.deepEqual(chooseBackend({}, { env }), {
      kind: 'local',
      dataDir: join(process.cwd(), '.tessera'),
    })
  })
  it('lets options beat the environment, and the environment beat the config file', () => {
    const env = {
      TESSERA_CONFIG: saved(),
      TESSERA_SERVER: 'http://env:1',
      TESSERA_TOKEN: 'env-token',
    }
    assert.deepEqual(chooseBackend({ dataDir: 'd' }, { env }), {
      kind: 'local',
      dataDir: join(process.cwd(), 'd'),
    })
    assert.deepEqual(chooseBackend({ database: 'postgres://x/y' }, { env }), {
      kind: 'local',
      databaseUrl: 'postgres://x/y',
    })
    assert.deepEqual(chooseBackend({}, { env }), {
      kind: 'remote',
      server: 'http://env:1',
      token: 'env-token',
    })
    assert.deepEqual(chooseBackend({ server: 'https://opt', token: 'opt-token' }, { env }), {
      kind: 'remote',
      server: 'https://opt',
      token: 'opt-token',
    })
    assert.deepEqual(
      chooseBackend(
        {},
        { env: { TESSERA_CONFIG: env.TESSERA_CONFIG, TESSERA_DATABASE_URL: 'postgres://db' } },
      ),
      {
        kind: 'local',
        databaseUrl: 'postgres://db',
      },
    )
  })
  it('uses the saved server and token after login', () => {
    assert.deepEqual(chooseBackend({}, { env: { TESSERA_CONFIG: saved() } }), {
      kind: 'remote',
      server: 'http://saved.example:8750',
      token: 'saved-token',
    })
  })
  it('never sends the saved token to a different server', () => {
    assert.deepEqual(
      chooseBackend({ server: 'http://other.example' }, { env: { TESSERA_CONFIG: saved() } }),
      {
        kind: 'remote',
        server: 'http://other.example',
        token: undefined,
      },
    )
  })
  it('refuses contradicting or malformed options as usage errors', () => {
    const env = { TESSERA_CONFIG: join(tmp(), 'none.json') }
    for (const options of [
      { dataDir: 'd', database: 'postgres://x' },
      { server: 'http://h', dataDir: 'd' },
      { server: 'ftp://h' },
      { server: 'not a url' },
      { server: 'http://user:pw@h' },
    ]) {
      assert.throws(
        () => chooseBackend(options, { env }),
        (e) => isTesseraError(e, 'TSR_VALIDATION'),
        JSON.stringify(options),
      )
    }
  })
})
