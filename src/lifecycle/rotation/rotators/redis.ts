import { createClient } from 'redis'
import { TesseraError } from '../../../errors.js'
import { configChecker } from '../config-check.js'
import type { CredentialVersion, Rotator, RotatorDeps, RotatorModule } from '../rotator.js'

/**
 * Redis ACL user password. Redis lets an ACL user hold several passwords, so a rotation adds the
 * new one beside the current (`ACL SETUSER u resetpass >current >new`: one atomic command that
 * also drops an orphan left by a crashed attempt), and revocation leaves only the kept one
 * (`ACL SETUSER u resetpass >keep`). Existing connections stay authenticated, as Redis never
 * re-checks them. The managed value is the password.
 */
export interface RedisRotatorConfig {
  /** redis:// URL of a user allowed to run ACL SETUSER. Secret. */
  adminUrl: string
  /** The ACL user whose password rotates (it must exist, with its permissions). */
  username: string
  /** Run `ACL SAVE` after each change (when Redis uses an ACL file). Default false. */
  aclSave: boolean
}

const aclName = /^[A-Za-z0-9_.:@-]{1,128}$/

export const redisRotatorModule: RotatorModule<RedisRotatorConfig> = {
  kind: 'redis',
  secretFields: ['adminUrl'],
  parseConfig(config) {
    const c = configChecker('redis', config, ['adminUrl', 'username', 'aclSave'])
    const adminUrl = c.url('adminUrl', ['redis:', 'rediss:'])
    const username = c.string('username', { pattern: aclName })
    const aclSave = c.boolean('aclSave') ?? false
    c.done()
    return { adminUrl: adminUrl!.toString(), username: username!, aclSave }
  },
  create: createRedisRotator,
}

export function createRedisRotator(config: RedisRotatorConfig, deps: RotatorDeps): Rotator {
  const open = async () => {
    const c = createClient({ url: config.adminUrl, disableOfflineQueue: true })
    c.on('error', () => {})
    await c.connect()
    return c
  }
  let admin: ReturnType<typeof open> | undefined
  const connect = () =>
    (admin ??= (async () => {
      return open()
    })().catch((err: unknown) => {
      admin = undefined
      throw err
    }))
  const fail = (step: string, err: unknown) =>
    err instanceof TesseraError
      ? err
      : new TesseraError(
          'TSR_ROTATION_FAILED',
          `rotator(redis): ${step}: ${(err as Error).message}`,
          { cause: err },
        )
  async function setPasswords(passwords: readonly string[]): Promise<void> {
    const c = await connect()
    const user = await c.sendCommand(['ACL', 'GETUSER', config.username])
    if (user === null) {
      throw new TesseraError(
        'TSR_ROTATION_FAILED',
        `rotator(redis): the ACL user ${config.username} does not exist`,
      )
    }
    await c.sendCommand([
      'ACL',
      'SETUSER',
      config.username,
      'resetpass',
      ...passwords.map((p) => `>${p}`),
    ])
    if (config.aclSave) await c.sendCommand(['ACL', 'SAVE'])
  }
  return {
    kind: 'redis',
    async create(ctx) {
      const password = deps.random(24).toString('base64url')
      try {
        await setPasswords(ctx.current ? [ctx.current.value, password] : [password])
      } catch (err) {
        throw fail('create', err)
      }
      return { value: password, meta: { username: config.username } }
    },
    async verify(_ctx, next) {
      const url = new URL(config.adminUrl)
      url.username = ''
      url.password = ''
      const c = createClient({
        url: url.toString(),
        username: config.username,
        password: next.value,
        disableOfflineQueue: true,
        // A refused password must fail the verification, not be retried forever.
        socket: { connectTimeout: 5000, reconnectStrategy: false },
      })
      c.on('error', () => {})
      try {
        // connect() authenticates (HELLO … AUTH): a wrong password fails here with WRONGPASS.
        await c.connect()
        // The user may lack the permission to ping: NOPERM still proves it is authenticated.
        await c.ping().catch((err: Error) => {
          if (!/^NOPERM/.test(err.message)) throw err
        })
      } catch (err) {
        throw fail('verify', err)
      } finally {
        await c.close().catch(() => {})
      }
    },
    async activate() {},
    async revoke(_ctx, keep: CredentialVersion | undefined) {
      try {
        await setPasswords(keep ? [keep.value] : [])
      } catch (err) {
        throw fail('revoke', err)
      }
    },
    async close() {
      const c = admin
      admin = undefined
      if (c) await (await c.catch(() => undefined))?.close().catch(() => {})
    },
  }
}
