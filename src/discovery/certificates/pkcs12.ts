import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Certificates of a PKCS#12 file, through the `openssl pkcs12` command (node:crypto has no
 * PKCS#12 reader). The password travels in the child's environment, never on its command line,
 * and only certificates are asked for (`-nokeys`): the private key is never decrypted. Legacy
 * files (RC2/3DES) are retried with `-legacy`.
 */
export async function readPkcs12Certificates(der: Buffer, password: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-p12-'))
  try {
    const file = join(dir, 'in.p12')
    await writeFile(file, der, { mode: 0o600 })
    const run = (legacy: boolean) =>
      new Promise<string>((resolve, reject) => {
        execFile(
          'openssl',
          [
            'pkcs12',
            '-in',
            file,
            '-nokeys',
            '-passin',
            'env:TESSERA_P12_PASSWORD',
            ...(legacy ? ['-legacy'] : []),
          ],
          {
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TESSERA_P12_PASSWORD: password },
            timeout: 10_000,
            maxBuffer: 16 << 20,
          },
          (err, stdout, stderr) => {
            if (!err) return resolve(stdout)
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
              return reject(new Pkcs12Error('needs the openssl command, which is not installed'))
            }
            const wrong = /mac verify|invalid password/i.test(stderr)
            reject(new Pkcs12Error(wrong ? 'wrong password' : firstLine(stderr)))
          },
        )
      })
    try {
      return await run(false)
    } catch (err) {
      const final =
        err instanceof Pkcs12Error &&
        (err.message === 'wrong password' || err.message.startsWith('needs the openssl'))
      if (final) throw err
      return await run(true)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

export class Pkcs12Error extends Error {
  override name = 'Pkcs12Error'
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? 'openssl failed'
  // openssl prefixes a process id and a source location: keep the reason only.
  return line.replace(/^[0-9A-F]+:error:[0-9A-F]+:/i, '').slice(0, 200)
}
