import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Option, type Command } from 'commander'
import { errorCatalog, TesseraError, type TesseraErrorCode } from '../../errors.js'
import type { LeaseView } from '../../lifecycle/dynamic/leases.js'
import { signWorkloadProof } from '../../lifecycle/dynamic/workload-auth.js'
import type { CommandContext } from '../context.js'
import { intOption, oneOf } from '../options.js'
import { normaliseServerUrl } from '../remote.js'
import { renderTable } from '../table.js'
import { parseDurationSeconds } from '../time.js'

interface IssuedJson {
  leaseId: string
  backend: string
  template: string
  spiffeId: string
  username: string
  password: string
  expiresAt: string
  connection: Record<string, unknown>
}

/**
 * `tessera dynamic`: just-in-time credentials (docs/dynamic-credentials.md). `request` is what a
 * workload runs, authenticated by its SVID (no API token); `leases` and `revoke` are for operators.
 */
export function registerDynamicCommands(program: Command, ctx: CommandContext): void {
  const dynamic = program
    .command('dynamic')
    .description('just-in-time database and cache credentials for workloads')

  dynamic
    .command('request')
    .description('get a short-lived credential for this workload, authenticated by its SVID')
    .argument('<backend>', 'the backend name configured on the server')
    .requiredOption('--template <name>', 'the template (the rights) to ask for')
    .option(
      '--svid-dir <dir>',
      'sign a proof with the X509-SVID in DIR (svid.pem, svid_key.pem, as "tessera svid fetch" writes)',
    )
    .option(
      '--jwt-svid-file <file>',
      'or present a JWT-SVID for the audience spiffe://<trust domain>/tessera/dynamic',
    )
    .option('--ttl <duration>', 'lifetime (e.g. 15m; capped by the backend maximum)')
    .addHelpText(
      'after',
      `
The server is --server or TESSERA_SERVER. The password is printed once and kept nowhere by Tessera.`,
    )
    .action(
      async (
        backend: string,
        opts: { template: string; svidDir?: string; jwtSvidFile?: string; ttl?: string },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        const serverOption = g.server ?? (ctx.io.env.TESSERA_SERVER || undefined)
        if (!serverOption) {
          throw new TesseraError('TSR_VALIDATION', 'give --server URL (or set TESSERA_SERVER)')
        }
        if ((opts.svidDir === undefined) === (opts.jwtSvidFile === undefined)) {
          throw new TesseraError(
            'TSR_VALIDATION',
            'give exactly one of --svid-dir, --jwt-svid-file',
          )
        }
        const server = normaliseServerUrl(serverOption)
        const path = `/v1/dynamic/${encodeURIComponent(backend)}`
        const body = JSON.stringify({
          template: opts.template,
          ...(opts.ttl === undefined
            ? {}
            : { ttlSeconds: parseDurationSeconds(opts.ttl, '--ttl') }),
        })
        let authorization: string
        if (opts.svidDir !== undefined) {
          const [chainPem, keyPem] = await Promise.all([
            readFile(join(opts.svidDir, 'svid.pem'), 'utf8'),
            readFile(join(opts.svidDir, 'svid_key.pem'), 'utf8'),
          ]).catch((err: unknown) => {
            throw new TesseraError(
              'TSR_VALIDATION',
              `--svid-dir: cannot read svid.pem and svid_key.pem (${(err as Error).message})`,
            )
          })
          const chain = (
            chainPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []
          ).map((pem) => new X509Certificate(pem).raw)
          if (chain.length === 0) {
            throw new TesseraError('TSR_VALIDATION', '--svid-dir: svid.pem holds no certificate')
          }
          const proof = await signWorkloadProof({
            chain,
            key: createPrivateKey(keyPem),
            method: 'POST',
            pathAndQuery: path,
            body,
            now: ctx.io.clock.now(),
          })
          authorization = `Bearer ${proof}`
        } else {
          const token = (await readFile(opts.jwtSvidFile!, 'utf8')).trim()
          authorization = `Bearer ${token}`
        }
        const doFetch = ctx.io.fetch ?? fetch
        let res: Response
        try {
          res = await doFetch(server + path, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              authorization,
              accept: 'application/json',
            },
            body,
          })
        } catch (err) {
          throw new TesseraError(
            'TSR_CLIENT_HTTP',
            `cannot reach ${server}: ${(err as Error).message}`,
          )
        }
        const text = await res.text()
        let parsed: unknown
        try {
          parsed = JSON.parse(text)
        } catch {
          throw new TesseraError('TSR_CLIENT_HTTP', `${server} answered ${res.status} without JSON`)
        }
        if (!res.ok) {
          const p = parsed as { code?: string; detail?: string }
          const code = (
            p.code && p.code in errorCatalog ? p.code : 'TSR_CLIENT_HTTP'
          ) as TesseraErrorCode
          throw new TesseraError(code, p.detail ?? `${server} answered ${res.status}`)
        }
        const issued = parsed as IssuedJson
        if (g.json) return ctx.out(JSON.stringify(issued) + '\n')
        const conn = Object.entries(issued.connection)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(' ')
        return ctx.out(
          [
            `lease     ${issued.leaseId}`,
            `backend   ${issued.backend} (${issued.template})${conn ? `  ${conn}` : ''}`,
            `username  ${issued.username}`,
            `password  ${issued.password}`,
            `expires   ${issued.expiresAt}`,
            '',
          ].join('\n'),
        )
      },
    )

  dynamic
    .command('leases')
    .description('list dynamic credential leases, newest first')
    .addOption(
      new Option('--state <state>', 'pending, active or revoked').argParser(
        oneOf(['pending', 'active', 'revoked'] as const),
      ),
    )
    .option('--spiffe-id <id>', "only this workload's leases")
    .option('--backend <name>', 'only this backend')
    .option('--limit <n>', 'at most this many (1..1000)', intOption(1, 1000), 100)
    .action(
      async (
        opts: { state?: LeaseView['state']; spiffeId?: string; backend?: string; limit: number },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        await ctx.withBackend(cmd, async (backend) => {
          const admin = needDynamic(backend.dynamic)
          const items = await admin.list({
            ...(opts.state ? { state: opts.state } : {}),
            ...(opts.spiffeId ? { spiffeId: opts.spiffeId } : {}),
            ...(opts.backend ? { backend: opts.backend } : {}),
            limit: opts.limit,
          })
          if (g.json) return ctx.out(JSON.stringify({ items }) + '\n')
          if (items.length === 0) return ctx.out('no leases\n')
          return ctx.out(renderTable(leaseColumns, items))
        })
      },
    )

  dynamic
    .command('revoke')
    .description('revoke a lease: drop the user and end its sessions')
    .argument('<lease>', 'the lease id')
    .option('--reason <text>', 'why (kept on the lease and in the event)')
    .action(async (lease: string, opts: { reason?: string }, cmd: Command) => {
      await revokeLease(ctx, cmd, lease, opts.reason)
    })
}

/** Shared by `tessera dynamic revoke` and `tessera revoke --lease`. */
export async function revokeLease(
  ctx: CommandContext,
  cmd: Command,
  lease: string,
  reason: string | undefined,
): Promise<void> {
  const g = ctx.globals(cmd)
  await ctx.withBackend(cmd, async (backend) => {
    const view = await needDynamic(backend.dynamic).revoke(lease, reason)
    if (g.json) return ctx.out(JSON.stringify(view) + '\n')
    if (view.state === 'revoked') {
      return ctx.out(`revoked lease ${view.id} (${view.username} on ${view.backend})\n`)
    }
    return ctx.out(
      `revocation of lease ${view.id} requested; the server's reaper drops ${view.username} within its interval\n`,
    )
  })
}

function needDynamic<T>(admin: T | undefined): T {
  if (!admin)
    throw new TesseraError('TSR_DYNAMIC_UNAVAILABLE', 'this backend has no dynamic leases')
  return admin
}

const leaseColumns = [
  { header: 'LEASE', value: (l: LeaseView) => l.id },
  { header: 'BACKEND', value: (l: LeaseView) => `${l.backend}/${l.template}` },
  { header: 'USER', value: (l: LeaseView) => l.username },
  { header: 'SPIFFE ID', value: (l: LeaseView) => l.spiffeId, maxWidth: 50 },
  { header: 'STATE', value: (l: LeaseView) => l.state },
  { header: 'EXPIRES', value: (l: LeaseView) => l.expiresAt },
  { header: 'REVOKED', value: (l: LeaseView) => l.revokedAt ?? '' },
]
