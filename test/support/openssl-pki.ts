import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestCert {
  certPem: string
  keyPem: string
  der: Buffer
}

/**
 * A small PKI made with the openssl CLI (an outside implementation, so what our code accepts is
 * what real peers send): a root with the given URI SAN, and leaves signed by it.
 */
export function createTestPki(rootUri: string) {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-pki-'))
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  const read = (name: string) => readFileSync(join(dir, name), 'utf8')
  const ec = (name: string) =>
    run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', name)

  ec('root.key')
  writeFileSync(
    join(dir, 'root.cnf'),
    `[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nO=test\n[ext]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectAltName=URI:${rootUri}\nsubjectKeyIdentifier=hash\n`,
  )
  run(
    'req',
    '-new',
    '-x509',
    '-key',
    'root.key',
    '-out',
    'root.pem',
    '-days',
    '2',
    '-config',
    'root.cnf',
    '-extensions',
    'ext',
  )
  const rootPem = read('root.pem')
  const der = (pem: string) =>
    Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64')
  let n = 0

  return {
    root: { certPem: rootPem, keyPem: read('root.key'), der: der(rootPem) } as TestCert,
    /** A server leaf with the given SANs (`URI:spiffe://…`, `DNS:localhost`, `IP:127.0.0.1`). */
    leaf(sans: string[]): TestCert {
      const id = `leaf${++n}`
      ec(`${id}.key`)
      writeFileSync(
        join(dir, `${id}.cnf`),
        `[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nO=test\n[ext]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${sans.join(',')}\n`,
      )
      run('req', '-new', '-key', `${id}.key`, '-out', `${id}.csr`, '-config', `${id}.cnf`)
      run(
        'x509',
        '-req',
        '-in',
        `${id}.csr`,
        '-CA',
        'root.pem',
        '-CAkey',
        'root.key',
        '-CAcreateserial',
        '-out',
        `${id}.pem`,
        '-days',
        '1',
        '-extfile',
        `${id}.cnf`,
        '-extensions',
        'ext',
      )
      const certPem = read(`${id}.pem`)
      return { certPem, keyPem: read(`${id}.key`), der: der(certPem) }
    },
  }
}
