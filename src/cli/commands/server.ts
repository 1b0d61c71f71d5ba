import { resolve } from 'node:path'
import { Option, type Command } from 'commander'
import { TesseraError } from '../../errors.js'
import type { NodeAttestorsConfig } from '../../attestation/node-attestor-registry.js'
import type { ServerOptions } from '../../server/compose.js'
import type { CommandContext } from '../context.js'
import { waitForSignal } from '../signals.js'
import { intOption, oneOf } from '../options.js'

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/**
 * `tessera server`: the control plane in the foreground. stdout carries only the banner (URL and,
 * on the first start of a store, the admin token) so a script can read it; pino's JSON logs go to
 * stderr. SIGINT or SIGTERM drains requests and closes the store; a second signal exits at once.
 */
export function registerServerCommand(program: Command, ctx: CommandContext): void {
  program
    .command('server')
    .description('run the control plane (REST API) on the embedded store or PostgreSQL')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--port <n>', 'port (0 picks a free one)', intOption(0, 65_535), 8750)
    .addOption(
      new Option('--log-level <level>', 'log level').argParser(oneOf(logLevels)).default('info'),
    )
    .option(
      '--sources <file>',
      'discovery sources file: sources with an interval run on a schedule (or TESSERA_SOURCES)',
    )
    .option('--trust-domain <td>', 'SPIFFE trust domain (first start; or TESSERA_TRUST_DOMAIN)')
    .option(
      '--kek-file <file>',
      'key-encryption key for the CA keys (or TESSERA_KEK / TESSERA_KEK_FILE)',
    )
    .option(
      '--upstream-ca-cert <file>',
      'run as an intermediate: the upstream CA certificate (PEM)',
    )
    .option('--upstream-ca-key <file>', 'the upstream CA private key (PEM)')
    .option('--upstream-bundle <file>', 'the upstream roots to publish (PEM; default the cert)')
    .option(
      '--attestors <file>',
      'node attestors (YAML or JSON: join_token, oidc issuers, x509pop roots; docs/attestation.md)',
    )
    .option(
      '--bundle-endpoint-port <n>',
      'serve the SPIFFE bundle endpoint for federation',
      intOption(0, 65_535),
    )
    .option('--bundle-endpoint-host <host>', 'its interface (default 0.0.0.0)')
    .addOption(
      new Option('--bundle-endpoint-profile <profile>', 'https_spiffe (default) or https_web')
        .argParser(oneOf(['https_spiffe', 'https_web'] as const))
        .default('https_spiffe'),
    )
    .option('--bundle-endpoint-cert <file>', 'https_web: the Web PKI certificate chain (PEM)')
    .option('--bundle-endpoint-key <file>', 'https_web: its private key (PEM)')
    .addHelpText(
      'after',
      `
The first start of a store prints an admin API token once; keep it (e.g. tessera login).
stdout: the banner (with --json one line {"url","adminToken"}); stderr: JSON logs.`,
    )
    .action(
      async (
        opts: {
          host: string
          port: number
          logLevel: string
          sources?: string
          trustDomain?: string
          kekFile?: string
          upstreamCaCert?: string
          upstreamCaKey?: string
          upstreamBundle?: string
          attestors?: string
          exchangeConfig?: string
          bundleEndpointPort?: number
          bundleEndpointHost?: string
          bundleEndpointProfile: 'https_spiffe' | 'https_web'
          bundleEndpointCert?: string
          bundleEndpointKey?: string
        },
        cmd: Command,
      ) => {
        const g = ctx.globals(cmd)
        if (g.server !== undefined) {
          throw new TesseraError('TSR_VALIDATION', '--server does not apply to "tessera server"')
        }
        if (g.dataDir !== undefined && g.database !== undefined) {
          throw new TesseraError('TSR_VALIDATION', 'give either --data-dir or --database, not both')
        }
        const [{ startServer }, { pino }] = await Promise.all([
          import('../../server/compose.js'),
          import('pino'),
        ])
        const databaseUrl =
          g.database ??
          (g.dataDir === undefined ? ctx.io.env.TESSERA_DATABASE_URL || undefined : undefined)
        const sourcesFile = opts.sources ?? (ctx.io.env.TESSERA_SOURCES || undefined)
        if ((opts.upstreamCaCert === undefined) !== (opts.upstreamCaKey === undefined)) {
          throw new TesseraError(
            'TSR_VALIDATION',
            '--upstream-ca-cert and --upstream-ca-key go together',
          )
        }
        let bundleEndpoint
        if (opts.bundleEndpointPort !== undefined) {
          if (opts.bundleEndpointProfile === 'https_web') {
            if (!opts.bundleEndpointCert || !opts.bundleEndpointKey) {
              throw new TesseraError(
                'TSR_VALIDATION',
                'the https_web bundle endpoint needs --bundle-endpoint-cert and --bundle-endpoint-key',
              )
            }
            bundleEndpoint = {
              port: opts.bundleEndpointPort,
              ...(opts.bundleEndpointHost ? { host: opts.bundleEndpointHost } : {}),
              config: {
                profile: 'https_web' as const,
                certFile: resolve(opts.bundleEndpointCert),
                keyFile: resolve(opts.bundleEndpointKey),
              },
            }
          } else {
            bundleEndpoint = {
              port: opts.bundleEndpointPort,
              ...(opts.bundleEndpointHost ? { host: opts.bundleEndpointHost } : {}),
              config: { profile: 'https_spiffe' as const },
            }
          }
        }
        const nodeAttestors = opts.attestors
          ? ((await readMapping(opts.attestors, '--attestors', [
              'join_token',
              'oidc',
              'x509pop',
            ])) as NodeAttestorsConfig)
          : undefined
        const tokenExchange = opts.exchangeConfig
          ? ((await readMapping(opts.exchangeConfig, '--exchange-config', [
              'oidc',
              'maxTtlSeconds',
              'defaultTtlSeconds',
              'maxChainDepth',
              'allowedAudiences',
            ])) as NonNullable<ServerOptions['tokenExchange']>)
          : undefined
        const server = await startServer({
          ca: {
            ...(opts.trustDomain ? { trustDomain: opts.trustDomain } : {}),
            ...(opts.kekFile ? { kekFile: resolve(opts.kekFile) } : {}),
            ...(opts.upstreamCaCert && opts.upstreamCaKey
              ? {
                  upstream: {
                    certFile: resolve(opts.upstreamCaCert),
                    keyFile: resolve(opts.upstreamCaKey),
                    ...(opts.upstreamBundle ? { bundleFile: resolve(opts.upstreamBundle) } : {}),
                  },
                }
              : {}),
          },
          ...(bundleEndpoint ? { bundleEndpoint } : {}),
          ...(nodeAttestors ? { control: { nodeAttestors } } : {}),
          ...(tokenExchange ? { tokenExchange } : {}),
          ...(databaseUrl ? { databaseUrl } : { dataDir: resolve(g.dataDir ?? '.tessera') }),
          host: opts.host,
          port: opts.port,
          logLevel: opts.logLevel,
          log: pino.destination({ dest: 2, sync: false }),
          ...(sourcesFile ? { sourcesFile: resolve(sourcesFile) } : {}),
        })
        if (g.json) {
          await ctx.out(
            JSON.stringify({
              url: server.url,
              adminToken: server.adminToken ?? null,
              trustDomain: server.trustDomain,
              ...(server.bundleEndpointUrl ? { bundleEndpoint: server.bundleEndpointUrl } : {}),
            }) + '\n',
          )
        } else {
          await ctx.out(
            banner(server.url, server.store.location, server.adminToken, server.trustDomain),
          )
        }
        await waitForSignal()
        await server.close()
      },
    )
}

/** Reads a YAML/JSON mapping file with known top-level keys; the server checks the content. */
async function readMapping(
  file: string,
  option: string,
  keys: readonly string[],
): Promise<Record<string, unknown>> {
  const { readFile } = await import('node:fs/promises')
  const { parse } = await import('yaml')
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `${option}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    )
  }
  let value: unknown
  try {
    value = parse(text, { uniqueKeys: true })
  } catch (err) {
    throw new TesseraError(
      'TSR_CONFIG',
      `${option}: ${file} is not valid YAML/JSON: ${(err as Error).message}`,
    )
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TesseraError(
      'TSR_CONFIG',
      `${option}: ${file} must hold a mapping (${keys.join(', ')})`,
    )
  }
  const unknown = Object.keys(value).filter((k) => !keys.includes(k))
  if (unknown.length > 0) {
    throw new TesseraError('TSR_CONFIG', `${option}: unknown keys ${unknown.join(', ')} in ${file}`)
  }
  return value as Record<string, unknown>
}

function banner(
  url: string,
  location: string,
  adminToken: string | undefined,
  trustDomain: string,
): string {
  let text =
    `\nTessera server listening on ${url}\n  store: ${location}\n` +
    `  trust domain: spiffe://${trustDomain}\n  API docs: ${url}/docs\n`
  if (adminToken) {
    const rule = '='.repeat(72)
    text +=
      `\n${rule}\n` +
      `  First start: an admin API token was created. It is shown only now.\n\n` +
      `    ${adminToken}\n\n` +
      `  Save it, e.g.:  tessera login --server ${url} --token <token>\n` +
      `${rule}\n`
  }
  return text + '\n'
}
