import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { chmod, open, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { Command } from 'commander'
import { TesseraError } from '../../errors.js'
import { parseDuration } from '../../lifecycle/rotation/policy.js'
import type { SecretView } from '../../lifecycle/rotation/secrets-service.js'
import type { CommandContext } from '../context.js'
import { collect } from '../options.js'
import type { SecretAdmin } from '../secret-admin.js'
import { waitForSignal } from '../signals.js'
import { renderTable } from '../table.js'

interface ManageOptions {
  rotator: string
  config: string
  consumer?: string[]
  period: string
  window?: string
  grace: string
  valueFile?: string
  fromCredential?: string
}

interface FetchOptions {
  socket?: string
  out: string
  spiffeId?: string
  cmd?: string
  signal?: string
  once?: boolean
}

/** `--config '{"…"}'` or `--config @file.json` (keeps admin credentials out of `ps`). */
function readJsonOption(text: string, option: string): unknown {
  let raw = text
  if (text.startsWith('@')) {
    try {
      raw = readFileSync(text.slice(1), 'utf8')
    } catch (err) {
      throw new TesseraError(
        'TSR_VALIDATION',
        `${option}: cannot read ${text.slice(1)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      )
    }
  }
  try {
    return JSON.parse(raw) as unknown
  } catch {
    throw new TesseraError('TSR_VALIDATION', `${option} must be JSON (or @file holding JSON)`)
  }
}

function readValue(file: string): string {
  let text: string
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8')
  } catch (err) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `--value-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    )
  }
  // One trailing newline is the file's, not the secret's.
  return text.replace(/\r?\n$/, '')
}

const when = (iso: string | undefined) => iso ?? '-'

const secretColumns = [
  { header: 'NAME', value: (s: SecretView) => s.name },
  { header: 'ROTATOR', value: (s: SecretView) => s.rotator },
  { header: 'VERSION', value: (s: SecretView) => String(s.version) },
  { header: 'LAST ROTATED', value: (s: SecretView) => when(s.lastRotatedAt) },
  { header: 'NEXT ROTATION', value: (s: SecretView) => s.nextRotationAt },
  { header: 'CONSUMERS', value: (s: SecretView) => String(s.consumers.length) },
  { header: 'ERROR', value: (s: SecretView) => s.lastError ?? '' },
]

function describe(s: SecretView): string {
  const lines = [
    `name:            ${s.name}`,
    `rotator:         ${s.rotator} ${JSON.stringify(s.config)}`,
    `credential:      ${s.credentialRef}${s.identityRef ? ` (identity ${s.identityRef})` : ''}`,
    `consumers:       ${s.consumers.join(', ') || '(none)'}`,
    `policy:          every ${s.periodSeconds} s${s.window ? ` in ${s.window} UTC` : ''}, grace ${s.graceSeconds} s`,
    `version:         ${s.version}${s.fingerprint ? ` (fingerprint ${s.fingerprint.slice(0, 16)}…)` : ' (no value yet)'}`,
    `last rotated:    ${when(s.lastRotatedAt)}`,
    `next rotation:   ${s.nextRotationAt}`,
  ]
  if (s.previousValidUntil) lines.push(`previous valid:  until ${s.previousValidUntil}`)
  if (s.lastError) lines.push(`last error:      ${s.lastError} (${s.consecutiveFailures} failed)`)
  return lines.join('\n') + '\n'
}

/**
 * `tessera secret manage|list|show|rotate` administers managed secrets (docs/rotation.md);
 * `tessera secret fetch` is the workload side: it reads a secret from the node agent's socket and
 * keeps a file current.
 */
export function registerSecretCommands(program: Command, ctx: CommandContext): void {
  const secret = program
    .command('secret')
    .description('managed secrets: put a credential under rotation, inspect it, deliver it')

  const admin = async <T>(cmd: Command, fn: (s: SecretAdmin) => Promise<T>): Promise<T> =>
    ctx.withBackend(cmd, async (backend) => {
      if (!backend.secrets) {
        throw new TesseraError('TSR_CONTROL_UNAVAILABLE', 'this backend has no managed secrets')
      }
      return fn(backend.secrets)
    })

  secret
    .command('manage <name>')
    .description('put a credential under management: sealed value, consumers, rotation policy')
    .requiredOption('--rotator <kind>', 'pg | redis | http | aws-iam')
    .requiredOption(
      '--config <json>',
      "the rotator's configuration as JSON, or @file (it holds admin credentials: prefer a file)",
    )
    .option(
      '--consumer <spiffe-id...>',
      'a SPIFFE ID allowed to read the value (repeatable, comma-separated)',
      collect,
    )
    .requiredOption('--period <duration>', 'rotate every (e.g. 30d, 12h)')
    .option('--window <HH:MM-HH:MM>', 'only rotate inside this daily UTC window')
    .requiredOption('--grace <duration>', 'how long the old value keeps working after a rotation')
    .option(
      '--value-file <file>',
      'the value consumers hold now ("-" for stdin); without it the first rotation runs at once',
    )
    .option('--from-credential <id>', 'a discovered credential (inventory id or ref) to take over')
    .addHelpText(
      'after',
      `
The value is sealed under the server's key-encryption key and never printed. Values by rotator:
pg {"username","password"}; redis the password; aws-iam {"accessKeyId","secretAccessKey"}; http
whatever the webhook issues. See docs/rotation.md for each rotator's --config.`,
    )
    .action(async (name: string, opts: ManageOptions, cmd: Command) => {
      const g = ctx.globals(cmd)
      const input = {
        name,
        rotator: opts.rotator,
        config: readJsonOption(opts.config, '--config'),
        consumers: opts.consumer ?? [],
        periodSeconds: parseDuration(opts.period, '--period'),
        graceSeconds: parseDuration(opts.grace, '--grace'),
        ...(opts.window ? { window: opts.window } : {}),
        ...(opts.valueFile ? { value: readValue(opts.valueFile) } : {}),
        ...(opts.fromCredential ? { fromCredential: opts.fromCredential } : {}),
      }
      const view = await admin(cmd, (s) => s.manage(input))
      await ctx.out(
        g.json
          ? JSON.stringify(view) + '\n'
          : `managing ${view.name} (${view.rotator}); next rotation ${view.nextRotationAt}\n`,
      )
    })

  secret
    .command('list')
    .description('managed secrets (never their values)')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      const items = await admin(cmd, (s) => s.list())
      if (g.json) return ctx.out(JSON.stringify({ items }) + '\n')
      if (items.length === 0) return ctx.out('no managed secrets\n')
      return ctx.out(renderTable(secretColumns, items))
    })

  secret
    .command('show <name>')
    .description('a managed secret: policy, consumers, next rotation and rotation history')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      const shown = await admin(cmd, (s) => s.show(name))
      if (g.json) return ctx.out(JSON.stringify(shown) + '\n')
      let text = describe(shown)
      text +=
        shown.rotations.length === 0 ? '\nno rotations yet\n' : '\nrotations (newest first):\n'
      for (const r of shown.rotations) {
        text += `  ${r.startedAt}  ${r.state.padEnd(9)} ${r.reason}${r.error ? `  error: ${r.error}` : ''}\n`
        for (const step of r.steps) text += `      ${step.at}  ${step.state}\n`
      }
      return ctx.out(text)
    })

  secret
    .command('rotate <name>')
    .description('rotate now (or resume the open rotation) up to its grace period')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      const rotation = await admin(cmd, (s) => s.rotate(name))
      await ctx.out(
        g.json
          ? JSON.stringify(rotation) + '\n'
          : `${name}: rotation ${rotation.id} is ${rotation.state}${rotation.graceUntil ? `; the old value works until ${rotation.graceUntil}` : ''}\n`,
      )
    })

  secret
    .command('fetch <name>')
    .description('get a secret from the node agent and keep a file current as it rotates')
    .requiredOption('--out <file>', 'the file to write (mode 0600, replaced atomically)')
    .option('--socket <path>', 'the agent socket (default $SPIFFE_ENDPOINT_SOCKET or ./agent.sock)')
    .option('--spiffe-id <id>', 'which of this workload SPIFFE IDs to ask as')
    .option('--cmd <command>', 'run this (through /bin/sh) after the first write')
    .option(
      '--signal <name>',
      'on each later rotation send this signal to --cmd (e.g. SIGHUP); without it --cmd runs again',
    )
    .option('--once', 'write the current value and exit')
    .addHelpText(
      'after',
      `
The agent attests this process, and serves the secret only when one of its SPIFFE IDs is a consumer.
Readers never see a partial file: each version is written to a temporary file and renamed over --out.`,
    )
    .action(async (name: string, opts: FetchOptions, cmd: Command) => {
      const g = ctx.globals(cmd)
      const socket = resolve(
        opts.socket ??
          (ctx.io.env.SPIFFE_ENDPOINT_SOCKET?.replace(/^unix:\/\//, '') || undefined) ??
          'agent.sock',
      )
      if (opts.signal !== undefined && !opts.cmd) {
        throw new TesseraError('TSR_VALIDATION', '--signal needs --cmd')
      }
      const out = resolve(opts.out)
      const { createSecretsClient } = await import('../../workload-api/secrets-service.js')
      const client = createSecretsClient(socket)
      let child: ChildProcess | undefined
      let writes = 0
      const runCmd = () => {
        child = spawn('/bin/sh', ['-c', opts.cmd!], { stdio: 'inherit' })
        child.once('exit', () => (child = undefined))
      }
      try {
        await new Promise<void>((resolvePromise, reject) => {
          let chain = Promise.resolve()
          const cancel = client.watch(
            { name, ...(opts.spiffeId ? { spiffeId: opts.spiffeId } : {}) },
            (m) => {
              chain = chain
                .then(async () => {
                  await writeAtomically(out, m.value)
                  writes++
                  ctx.note(
                    JSON.stringify({
                      time: ctx.io.clock.now().toISOString(),
                      event: 'secret.written',
                      name: m.name,
                      version: Number(m.version),
                      file: out,
                    }),
                  )
                  if (opts.once) {
                    cancel()
                    resolvePromise()
                    return
                  }
                  if (!opts.cmd) return
                  if (writes === 1 || !opts.signal) runCmd()
                  else child?.kill(opts.signal as NodeJS.Signals)
                })
                .catch((err: unknown) => {
                  cancel()
                  reject(err instanceof Error ? err : new Error(String(err)))
                })
            },
            (err) => {
              const code =
                err.code === 7
                  ? 'TSR_SECRET_DENIED'
                  : err.code === 5
                    ? 'TSR_NOT_FOUND'
                    : 'TSR_CONTROL_UNAVAILABLE'
              reject(new TesseraError(code, `secret ${name}: ${err.details || err.message}`))
            },
          )
          if (!opts.once) {
            void waitForSignal().then(() => {
              cancel()
              resolvePromise()
            })
          }
        })
      } finally {
        client.close()
        child?.kill('SIGTERM')
      }
      if (g.json) await ctx.out(JSON.stringify({ name, file: out, writes }) + '\n')
    })
}

/** Writes `value` to a new 0600 file beside `file`, fsyncs it, and renames it over `file`. */
export async function writeAtomically(file: string, value: Buffer): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${Date.now()}.tmp`)
  const fh = await open(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(value)
    await fh.sync()
  } catch (err) {
    await fh.close()
    await unlink(tmp).catch(() => {})
    throw err
  }
  await fh.close()
  await chmod(tmp, 0o600)
  await rename(tmp, file)
}
