import { createClient } from 'redis'
import { TesseraError } from '../../errors.js'
import { redisPasswordHash } from './credential-material.js'
import type { DynamicBackendConfig } from './dynamic-config.js'
import type { DynamicBackend } from './dynamic-backend.js'

/**
 * Redis dynamic credentials: an ACL user with the template's key, channel and command rules and one
 * password given as its SHA-256 (`#<hex>`), so the clear password is never in a command that
 * MONITOR or the slow log could show. Redis has no user expiry: the lease table and the reaper
 * remove the user. `ACL DELUSER` disconnects the user's clients (Redis 7); `CLIENT KILL USER` is
 * sent first so older servers end them too.
 */
export function createRedisBackend(
  config: Pick<DynamicBackendConfig, 'name' | 'url' | 'templates'>,
): DynamicBackend {
  const client = createClient({ url: config.url, disableOfflineQueue: false })
  // Errors surface on the commands; the client reconnects by itself.
  client.on('error', () => {})
  let connecting: Promise<unknown> | undefined
  const url = new URL(config.url)
  const backendError = (what: string, err: unknown) =>
    new TesseraError(
      'TSR_DYNAMIC_BACKEND',
      `redis(${config.name}): ${what}: ${(err as Error).message}`,
      { cause: err },
    )
  const send = async <T>(args: string[], what: string): Promise<T> => {
    try {
      connecting ??= client.connect()
      await connecting
      return await client.sendCommand<T>(args)
    } catch (err) {
      if (!client.isOpen) connecting = undefined
      throw backendError(what, err)
    }
  }

  return {
    type: 'redis',
    name: config.name,
    templates: Object.keys(config.templates),
    connection: { host: url.hostname, port: Number(url.port || 6379) },

    async create(r) {
      const template = config.templates[r.template]
      if (!template) throw new TesseraError('TSR_NOT_FOUND', `no template ${r.template}`)
      await send(
        [
          'ACL',
          'SETUSER',
          r.username,
          'reset',
          'resetchannels',
          ...(template.rules ?? []),
          `#${redisPasswordHash(r.password)}`,
          'on',
        ],
        `creating user ${r.username} failed`,
      )
    },

    async revoke(username) {
      const killed = await send<number>(
        ['CLIENT', 'KILL', 'USER', username],
        `disconnecting ${username} failed`,
      ).catch((err: TesseraError) => {
        // "No such user" (it never existed, or is gone): nothing to end.
        if (/no such user/i.test(String((err.cause as Error | undefined)?.message))) return 0
        throw err
      })
      await send<number>(['ACL', 'DELUSER', username], `deleting user ${username} failed`)
      return { sessionsTerminated: Number(killed) }
    },

    async listManaged(prefix) {
      const users = await send<string[]>(['ACL', 'USERS'], 'listing users failed')
      return users.filter((u) => u.startsWith(prefix))
    },

    async sessions(usernames) {
      const out = new Map<string, number>()
      if (usernames.length === 0) return out
      const wanted = new Set(usernames)
      const list = await send<string>(['CLIENT', 'LIST'], 'listing clients failed')
      for (const line of String(list).split('\n')) {
        const user = / user=(\S+)/.exec(line)?.[1]
        if (user && wanted.has(user)) out.set(user, (out.get(user) ?? 0) + 1)
      }
      return out
    },

    close: async () => {
      if (client.isOpen) await client.quit().catch(() => client.destroy())
    },
  }
}
