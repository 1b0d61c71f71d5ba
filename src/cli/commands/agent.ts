import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { TesseraError } from '../../errors.js'
import type { CommandContext } from '../context.js'
import { waitForSignal } from '../signals.js'
import { listOf } from '../options.js'
import { addAgentAdminCommands } from './agent-admin.js'
import { createTlsFetch } from '../../runtime/tls-fetch.js'
import { parseBundle } from '../../spiffe/bundle.js'

/**
 * The CA certificates of `--trust-bundle` as PEM: PEM as given, or the X.509 authorities of a
 * SPIFFE bundle (JWKS). A file with neither is refused rather than trusting nothing.
 */
export function trustBundlePem(text: string): string {
  if (text.trimStart().startsWith('{')) {
    // The trust domain only names the bundle in errors; the authorities are what is trusted.
    const bundle = parseBundle(text, 'trust-bundle.invalid')
    if (bundle.x509Authorities.length === 0) {
      throw new TesseraError(
        'TSR_VALIDATION',
        '--trust-bundle: the SPIFFE bundle has no X.509 authority',
      )
    }
    return bundle.x509Authorities.map((der) => new X509Certificate(der).toString()).join('')
  }
  const certs = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  if (certs.length === 0) {
    throw new TesseraError(
      'TSR_VALIDATION',
      '--trust-bundle: no PEM certificate and not a SPIFFE bundle',
    )
  }
  for (const c of certs) new X509Certificate(c)
  return certs.join('\n') + '\n'
}

const workloadAttestors = ['unix', 'k8s'] as const

interface AgentOptions {
  joinToken?: string
  oidcTokenFile?: string
  x509popCert?: string
  x509popKey?: string
  socket?: string
  attestor?: ('unix' | 'k8s')[]
  kubeletUrl?: string
  kubeletTokenFile?: string
  insecureBootstrap?: boolean
  trustBundle?: string
  secretPollMs?: number
}

/**
 * `tessera agent --server URL (--join-token T | --oidc-token-file F | --x509pop-cert F --x509pop-key F)
 * --socket PATH` runs the node agent in the foreground; `agent list` and `agent ban` manage agents.
 */
export function registerAgentCommand(program: Command, ctx: CommandContext): void {
  const agent = program
    .command('agent')
    .description('run the node agent (serves the SPIFFE Workload API); list or ban agents')
    .option('--join-token <token>', 'attest with a single-use join token (tessera token create)')
    .option(
      '--oidc-token-file <file>',
      'attest with the OIDC token in this file, re-read at each attestation (CI, Kubernetes PSAT)',
    )
    .option(
      '--x509pop-cert <file>',
      'attest by proof of possession: the node certificate chain (PEM)',
    )
    .option('--x509pop-key <file>', 'the private key of --x509pop-cert (PEM)')
    .option(
      '--socket <path>',
      'Workload API socket (default $SPIFFE_ENDPOINT_SOCKET or ./agent.sock)',
    )
    .option(
      '--attestor <name...>',
      `workload attestors: ${workloadAttestors.join(', ')} (default unix)`,
      listOf(workloadAttestors),
    )
    .option(
      '--kubelet-url <url>',
      'k8s attestor: the kubelet pods URL (https://127.0.0.1:10250/pods)',
    )
    .option('--kubelet-token-file <file>', 'k8s attestor: a bearer token for the kubelet')
    .option(
      '--trust-bundle <file>',
      'CA certificates (PEM, or a SPIFFE bundle JSON) to trust for an https --server under a private CA',
    )
    .option(
      '--secret-poll-ms <ms>',
      'how often a workload streaming a managed secret is re-checked for a rotation (default 5000)',
      (v: string) => {
        const n = Number(v)
        if (!Number.isInteger(n) || n < 100) {
          throw new TesseraError('TSR_VALIDATION', '--secret-poll-ms must be an integer ≥ 100')
        }
        return n
      },
    )
    .option(
      '--insecure-bootstrap',
      'allow a plain-http server that is not on this host (the join token travels unencrypted)',
    )
    .addHelpText(
      'after',
      `
The agent attests to --server (or TESSERA_SERVER), then serves SVIDs to local workloads over the
socket. It keeps serving cached SVIDs while the server is unreachable and catches up by itself.
stdout: one banner line (with --json {"spiffeId","socket"}); stderr: JSON log lines.`,
    )
    .action(async (opts: AgentOptions, cmd: Command) => {
      const g = ctx.globals(cmd)
      const server = g.server ?? (ctx.io.env.TESSERA_SERVER || undefined)
      if (!server) {
        throw new TesseraError('TSR_VALIDATION', 'give the control plane with --server URL')
      }
      const url = new URL(server)
      const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)
      if (url.protocol === 'http:' && !loopback && !opts.insecureBootstrap) {
        throw new TesseraError(
          'TSR_VALIDATION',
          `${server} is plain http on another host: use https, or --insecure-bootstrap if you accept it`,
        )
      }
      if (opts.trustBundle !== undefined && url.protocol !== 'https:') {
        throw new TesseraError('TSR_VALIDATION', '--trust-bundle is for an https --server')
      }
      const methods = [opts.joinToken, opts.oidcTokenFile, opts.x509popCert].filter(
        (m) => m !== undefined,
      )
      if (methods.length !== 1) {
        throw new TesseraError(
          'TSR_VALIDATION',
          'give one attestation method: --join-token, --oidc-token-file, or --x509pop-cert with --x509pop-key',
        )
      }
      const [attestation, { createAgentControlClient }, { startAgent }] = await Promise.all([
        Promise.all([
          import('../../attestation/join-token-attestor.js'),
          import('../../attestation/oidc-attestor.js'),
          import('../../attestation/x509pop-attestor.js'),
        ]),
        import('../../agent/sync/control-client.js'),
        import('../../agent/start-agent.js'),
      ])
      const [{ joinTokenEvidence }, { oidcEvidence }, { x509popEvidence }] = attestation
      const readText = (file: string, option: string) => {
        try {
          return readFileSync(file, 'utf8')
        } catch (err) {
          throw new TesseraError(
            'TSR_VALIDATION',
            `${option}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
          )
        }
      }
      let attestor
      if (opts.joinToken !== undefined) {
        attestor = joinTokenEvidence(opts.joinToken)
      } else if (opts.oidcTokenFile !== undefined) {
        const file = opts.oidcTokenFile
        attestor = oidcEvidence(async () => readText(file, '--oidc-token-file').trim())
      } else {
        if (opts.x509popKey === undefined) {
          throw new TesseraError('TSR_VALIDATION', '--x509pop-cert needs --x509pop-key')
        }
        const pem = readText(opts.x509popCert!, '--x509pop-cert')
        const chain = (
          pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
        ).map((c) => Buffer.from(new X509Certificate(c).raw))
        if (chain.length === 0) {
          throw new TesseraError('TSR_VALIDATION', '--x509pop-cert holds no PEM certificate')
        }
        attestor = x509popEvidence(
          chain,
          createPrivateKey(readText(opts.x509popKey, '--x509pop-key')),
        )
      }
      const socketPath = resolve(
        opts.socket ??
          (ctx.io.env.SPIFFE_ENDPOINT_SOCKET?.replace(/^unix:\/\//, '') || undefined) ??
          'agent.sock',
      )
      const log = (event: string, fields: Record<string, unknown>) =>
        ctx.note(JSON.stringify({ time: ctx.io.clock.now().toISOString(), event, ...fields }))
      const serverFetch =
        ctx.io.fetch ??
        (opts.trustBundle !== undefined
          ? createTlsFetch({ ca: trustBundlePem(readText(opts.trustBundle, '--trust-bundle')) })
          : undefined)
      const client = createAgentControlClient({
        serverUrl: url.toString().replace(/\/$/, ''),
        attestor,
        clock: ctx.io.clock,
        ...(serverFetch ? { fetch: serverFetch } : {}),
        onEvent: (e) => log(`control.${e.type}`, { ...e }),
      })
      await client.start()
      let running
      try {
        running = await startAgent({
          port: client,
          socketPath,
          attestors: opts.attestor ?? ['unix'],
          clock: ctx.io.clock,
          log,
          secrets: {
            fetch: (name: string, spiffeId: string) => client.secret(name, spiffeId),
            ...(opts.secretPollMs === undefined ? {} : { pollMs: opts.secretPollMs }),
          },
          ...(opts.kubeletUrl
            ? {
                kubelet: {
                  url: opts.kubeletUrl,
                  ...(opts.kubeletTokenFile
                    ? { token: readText(opts.kubeletTokenFile, '--kubelet-token-file').trim() }
                    : {}),
                },
              }
            : {}),
        })
      } catch (err) {
        await client.stop()
        throw err
      }
      const spiffeId = client.spiffeId()
      await ctx.out(
        g.json
          ? JSON.stringify({ spiffeId, socket: socketPath }) + '\n'
          : `tessera agent ${spiffeId} serving the Workload API on unix://${socketPath}\n`,
      )
      await waitForSignal()
      await running.close()
      await client.stop()
    })
  addAgentAdminCommands(agent, ctx)
}
