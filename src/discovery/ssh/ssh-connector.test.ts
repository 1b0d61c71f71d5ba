import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { byType, collect, make, memoryFiles } from '../testing/collect.js'
import { createSshConnector, userFromPath } from './ssh-connector.js'
import { parseAuthorizedKeyLine, SshKeyError } from './ssh-keys.js'

const dir = new URL('../../../examples/ssh/', import.meta.url).pathname

/**
 * `ssh-keygen -l` for every key of a file: `bits fingerprint (TYPE)`. It refuses private key files
 * others can read, and git checks files out 0644, so it reads a 0600 copy.
 */
function keygen(file: string): { bits: number; fingerprint: string; type: string }[] {
  const copy = join(mkdtempSync(join(tmpdir(), 'tessera-ssh-')), basename(file))
  copyFileSync(file, copy)
  chmodSync(copy, 0o600)
  return execFileSync('ssh-keygen', ['-lf', copy], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => {
      const m = /^(\d+) (SHA256:\S+) .*\((\w+)\)$/.exec(l)!
      return { bits: Number(m[1]), fingerprint: m[2]!, type: m[3]! }
    })
}

describe('ssh connector on the sample host', () => {
  it('matches ssh-keygen -l for every authorized key and private key, and skips known_hosts', async () => {
    const r = await collect(
      make(
        createSshConnector,
        { paths: [dir + 'bastion', dir + 'keys'] },
        { name: 'ssh:bastion-1.prod.acme.example' },
      ),
    )
    assert.deepEqual(r.errors, [])
    assert.deepEqual(r.invalid, [])
    const creds = byType(r.observations, 'credential')
    for (const f of [
      'bastion/home/deploy/.ssh/authorized_keys',
      'bastion/root/.ssh/authorized_keys',
      'bastion/home/ci/.ssh/authorized_keys',
    ]) {
      for (const k of keygen(dir + f)) {
        const c = creds.find((x) => x.ref === `ssh-key:${k.fingerprint}`)
        assert.ok(c, `${k.fingerprint} of ${f}`)
        assert.equal(c.attributes?.bits, k.bits)
        assert.equal(c.credentialType, 'ssh_key')
      }
    }
    for (const f of [
      'keys/id_ed25519_deploy',
      'keys/legacy_rsa.pem',
      'bastion/home/ci/.ssh/id_ecdsa',
    ]) {
      const [k] = keygen(dir + f)
      const c = creds.find((x) => x.ref === `ssh-private-key:${k!.fingerprint}`)
      assert.ok(c, f)
      assert.equal(c.credentialType, 'private_key')
      assert.equal(c.attributes?.bits, k!.bits)
    }
    const enc = creds.find(
      (x) =>
        x.ref.endsWith('id_ed25519_deploy') ||
        x.attributes?.sshFingerprint === keygen(dir + 'keys/id_ed25519_deploy')[0]!.fingerprint,
    )!
    assert.equal(enc.attributes?.encrypted, true)
    assert.equal(enc.attributes?.cipher, 'aes256-ctr')
    // Encrypted PEM keys: known by where they are, never decrypted.
    const vpn = creds.find(
      (x) => x.ref === `private-key:bastion-1.prod.acme.example:${dir}keys/old-vpn.key`,
    )!
    assert.deepEqual(
      [vpn.attributes?.encrypted, vpn.attributes?.keyType, vpn.fingerprint],
      [true, 'RSA', undefined],
    )
    assert.equal(
      creds.find((x) => x.ref.endsWith('payments-signing.key'))?.attributes?.encrypted,
      true,
    )

    const ids = byType(r.observations, 'identity')
      .map((i) => i.ref)
      .sort()
    assert.deepEqual(ids, [
      'ssh:ci@bastion-1.prod.acme.example',
      'ssh:deploy@bastion-1.prod.acme.example',
      'ssh:root@bastion-1.prod.acme.example',
    ])
    // The same key lets two accounts in: one credential, used by both, found in two places.
    const ana = creds.find((c) => c.attributes?.comment === 'ana.costa@acme.example')!
    assert.equal(ana.attributes?.ownerHint, 'ana.costa@acme.example')
    const users = byType(r.observations, 'edge')
      .filter((e) => e.to.ref === ana.ref)
      .map((e) => e.from.ref)
      .sort()
    assert.deepEqual(users, [
      'ssh:deploy@bastion-1.prod.acme.example',
      'ssh:root@bastion-1.prod.acme.example',
    ])
    const locs = byType(r.observations, 'location').filter((l) => l.credential === ana.ref)
    assert.deepEqual(
      locs.map((l) => l.line),
      [2, 2],
    )
    assert.deepEqual(locs[0]!.attributes?.options, {
      from: '10.40.0.0/16,192.0.2.10',
      command: '/usr/local/bin/deploy-hook',
      'no-pty': true,
      'no-port-forwarding': true,
    })
    const backup = creds.find((c) => c.attributes?.comment === 'backup-agent')!
    assert.equal(backup.expiresAt, '2027-01-31T00:00:00.000Z')
    // known_hosts keys are not credentials of this host.
    const hostKey = readFileSync(dir + 'bastion/home/deploy/.ssh/known_hosts', 'utf8').split(
      ' ',
    )[2]!
    assert.ok(!JSON.stringify(r.observations).includes(hostKey.slice(0, 30)))
    // Never private material.
    const priv = readFileSync(dir + 'keys/legacy_rsa.pem', 'utf8').split('\n')[5]!
    assert.ok(!JSON.stringify(r.observations).includes(priv))
  })

  it('reports bad lines with file and line, keeping the good ones; a truncated key is an error', async () => {
    const good = readFileSync(dir + 'bastion/home/deploy/.ssh/authorized_keys', 'utf8').split('\n')
    const text = [
      good[2],
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKZ',
      'from="x ssh-rsa AAAA',
      'ssh-rsa !!!! x',
      good[4]!.slice(0, 60),
    ].join('\n')
    const files = memoryFiles({ '/h/home/app/.ssh/authorized_keys': text })
    const r = await collect(
      make(createSshConnector, { paths: '/h/home/app/.ssh/authorized_keys', host: 'h1' }),
      { files },
    )
    assert.deepEqual(
      r.errors.map((e) => e.message),
      [
        '/h/home/app/.ssh/authorized_keys at (line 2): key is not valid base64 (column 13)',
        '/h/home/app/.ssh/authorized_keys at (line 3): unterminated quote in option from',
        '/h/home/app/.ssh/authorized_keys at (line 4): expected key type and base64 key at column 1',
        '/h/home/app/.ssh/authorized_keys at (line 5): truncated key data',
      ],
    )
    assert.equal(byType(r.observations, 'credential').length, 1)
    assert.equal(byType(r.observations, 'identity')[0]!.ref, 'ssh:app@h1')
  })

  it('a truncated private key file names the file and line', async () => {
    const key = readFileSync(dir + 'keys/legacy_rsa.pem', 'utf8')
    const files = memoryFiles({ '/k/id_rsa': '\n' + key.slice(0, 300) })
    const r = await collect(make(createSshConnector, { paths: '/k/id_rsa', host: 'h' }), { files })
    assert.deepEqual(
      r.errors.map((e) => e.message),
      ['/k/id_rsa at (line 2): no complete private key block (BEGIN … END)'],
    )
  })

  it('user from path', () => {
    assert.equal(userFromPath('/srv/x/home/deploy/.ssh/authorized_keys'), 'deploy')
    assert.equal(userFromPath('/root/.ssh/authorized_keys'), 'root')
    assert.equal(userFromPath('/etc/ssh/keys'), undefined)
  })

  it('fuzz: any line parses or fails with SshKeyError, never anything else', () => {
    const good = readFileSync(dir + 'bastion/home/deploy/.ssh/authorized_keys', 'utf8').split(
      '\n',
    )[1]!
    fc.assert(
      fc.property(
        fc.nat({ max: good.length }),
        fc.string(),
        fc.string({ maxLength: 3 }),
        (cut, junk, ins) => {
          for (const line of [
            good.slice(0, cut) + junk,
            good.slice(0, cut) + ins + good.slice(cut),
            junk,
          ]) {
            try {
              parseAuthorizedKeyLine(line)
            } catch (e) {
              assert.ok(e instanceof SshKeyError, String(e))
            }
          }
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('fuzz: random key blobs never crash the blob reader', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(
          'ssh-rsa',
          'ssh-ed25519',
          'ecdsa-sha2-nistp256',
          'ssh-rsa-cert-v01@openssh.com',
        ),
        fc.uint8Array({ maxLength: 80 }),
        (type, bytes) => {
          const t = Buffer.from(type)
          const len = Buffer.alloc(4)
          len.writeUInt32BE(t.length)
          const blob = Buffer.concat([len, t, bytes]).toString('base64')
          try {
            parseAuthorizedKeyLine(`${type} ${blob} c`)
          } catch (e) {
            assert.ok(e instanceof SshKeyError, String(e))
          }
        },
      ),
      { numRuns: 2000 },
    )
  })
})
