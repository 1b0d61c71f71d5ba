import { basename } from 'node:path'
import type { Observation } from '../../inventory/observation.js'
import { createCollector, type Collector } from '../collector.js'
import type { Connector, ConnectorFactory, DiscoverContext } from '../connector.js'
import { OptionReader } from '../options.js'
import { asInputError, decodeUtf8, inputError } from '../parse/input-error.js'
import { describePrivateKey, parseAuthorizedKeyLine, SshKeyError } from './ssh-keys.js'

/**
 * SSH keys on a host: `authorized_keys` files (each key a credential of the account it lets in,
 * with its options and its comment as an owner hint) and private key files (OpenSSH or PEM,
 * encrypted or not: only the public fingerprint is recorded). `known_hosts` files are skipped:
 * they hold other hosts' keys, not credentials.
 */
export const createSshConnector: ConnectorFactory = (config) => {
  const o = new OptionReader(config)
  const paths = o.paths('paths', true)
  const host = o.string('host') ?? config.name.replace(/^ssh:/, '')
  const user = o.string('user')
  const problems = o.finish()
  if (problems.length > 0) return { ok: false, problems }
  const connector: Connector = {
    kind: 'ssh',
    name: config.name,
    scope: config.scope ?? 'full',
    discover: (ctx) => discoverSsh(ctx, config.name, { paths, host, user }),
  }
  return { ok: true, connector }
}

interface Options {
  paths: string[]
  host: string
  user: string | undefined
}

type FileKind = 'authorized_keys' | 'known_hosts' | 'private_key' | 'public_key' | undefined

function classify(file: string, text: string | undefined): FileKind {
  const name = basename(file)
  if (name.startsWith('known_hosts')) return 'known_hosts'
  if (name.startsWith('authorized_keys')) return 'authorized_keys'
  if (
    text !== undefined &&
    /-----BEGIN (OPENSSH |RSA |EC |DSA |ENCRYPTED |)PRIVATE KEY-----/.test(text)
  )
    return 'private_key'
  if (name.endsWith('.pub')) return 'public_key'
  return undefined
}

/** `/home/deploy/.ssh/authorized_keys` → `deploy`; `/root/.ssh/…` → `root`. */
export function userFromPath(file: string): string | undefined {
  const m = /(?:^|\/)home\/([^/]+)\/\.ssh\/|(?:^|\/)(root)\/\.ssh\//.exec(file)
  return m ? (m[1] ?? m[2]) : undefined
}

async function* discoverSsh(
  ctx: DiscoverContext,
  source: string,
  options: Options,
): AsyncGenerator<Observation> {
  const c = createCollector(source)
  let skipped = 0
  for (const root of options.paths) {
    let files: string[]
    try {
      files = await ctx.files.listFiles(root)
    } catch (err) {
      ctx.report(asInputError(err, root))
      continue
    }
    const named = files.length === 1 && files[0] === root
    for (const file of files) {
      const byName = classify(file, undefined)
      if (byName === 'known_hosts') {
        skipped++
        continue
      }
      let text: string
      try {
        const bytes = await ctx.files.readFile(file)
        // Only small text files can be keys; skip anything else found in a directory.
        if (!named && (bytes.length > 256 * 1024 || bytes.includes(0))) continue
        text = decodeUtf8(bytes, file)
      } catch (err) {
        ctx.report(asInputError(err, file))
        continue
      }
      const kind = classify(file, text)
      if (kind === 'authorized_keys' || kind === 'public_key' || (named && kind === undefined)) {
        readAuthorizedKeys(ctx, c, file, text, options, kind === 'public_key')
      } else if (kind === 'private_key') readPrivateKeys(ctx, c, file, text, options)
    }
  }
  if (skipped > 0) ctx.progress?.(`skipped ${skipped} known_hosts file(s)`)
  yield* c.drain()
}

function readAuthorizedKeys(
  ctx: DiscoverContext,
  c: Collector,
  file: string,
  text: string,
  options: Options,
  publicKeyFile: boolean,
): void {
  const user = options.user ?? userFromPath(file)
  const principal = publicKeyFile || !user ? undefined : `ssh:${user}@${options.host}`
  if (principal) {
    c.identity({
      ref: principal,
      kind: 'ssh_principal',
      name: `${user}@${options.host}`,
      state: 'active',
      attributes: { host: options.host, user },
    })
  } else if (!publicKeyFile) {
    ctx.report(inputError(file, 'cannot tell whose authorized_keys this is: give the user option'))
  }
  const lines = text.split('\n')
  lines.forEach((line, k) => {
    let parsed
    try {
      parsed = parseAuthorizedKeyLine(line)
    } catch (err) {
      if (!(err instanceof SshKeyError)) throw err
      ctx.report(inputError(file, err.message, { line: k + 1 }))
      return
    }
    if (!parsed) return
    const { key, comment } = parsed
    const ref = `ssh-key:${key.fingerprint}`
    const expiry =
      typeof parsed.options['expiry-time'] === 'string'
        ? expiryTime(parsed.options['expiry-time'])
        : undefined
    c.credential({
      ref,
      credentialType: 'ssh_key',
      fingerprint: `sha256:${key.sha256Hex}`,
      state: 'active',
      ...(principal ? { identity: principal } : {}),
      ...(expiry ? { expiresAt: expiry } : {}),
      attributes: {
        keyType: key.type,
        bits: key.bits,
        sshFingerprint: key.fingerprint,
        ...(key.certificate ? { certificate: true } : {}),
        ...(comment ? { comment } : {}),
        // The comment is often user@laptop or an email: a hint at the owner, not a fact.
        ...(comment && /^[^\s@]+@[^\s@]+$/.test(comment) ? { ownerHint: comment } : {}),
      },
    })
    if (principal) {
      c.edge(
        'uses_credential',
        { type: 'identity', ref: principal },
        { type: 'credential', ref },
        {
          ...(Object.keys(parsed.options).length ? { options: parsed.options } : {}),
        },
      )
    }
    c.location({
      credential: ref,
      locationType: 'host',
      host: options.host,
      file,
      line: k + 1,
      ...(Object.keys(parsed.options).length ? { attributes: { options: parsed.options } } : {}),
    })
  })
}

/** `expiry-time="YYYYMMDD[HHMM[SS]]"` (local time in sshd; read as UTC here). */
function expiryTime(v: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?Z?$/.exec(v)
  if (!m) return undefined
  const d = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0))
  return Number.isNaN(d) ? undefined : new Date(d).toISOString()
}

function readPrivateKeys(
  ctx: DiscoverContext,
  c: Collector,
  file: string,
  text: string,
  options: Options,
): void {
  const begin = text.search(/-----BEGIN [A-Z ]*PRIVATE KEY-----/)
  const line = text.slice(0, begin).split('\n').length
  let info
  try {
    info = describePrivateKey(text.slice(begin))
  } catch (err) {
    if (!(err instanceof SshKeyError)) throw err
    ctx.report(inputError(file, err.message, { line }))
    return
  }
  // An encrypted PEM key hides even its public half: it is known by where it is.
  const ref = info.key
    ? `ssh-private-key:${info.key.fingerprint}`
    : `private-key:${options.host}:${file}`
  c.credential({
    ref,
    credentialType: 'private_key',
    ...(info.key ? { fingerprint: `sha256:${info.key.sha256Hex}` } : {}),
    state: 'active',
    attributes: {
      format: info.format,
      encrypted: info.encrypted,
      ...(info.cipher ? { cipher: info.cipher } : {}),
      ...(info.key
        ? { keyType: info.key.type, bits: info.key.bits, sshFingerprint: info.key.fingerprint }
        : {}),
      ...(info.labelType ? { keyType: info.labelType } : {}),
    },
  })
  c.location({ credential: ref, locationType: 'host', host: options.host, file, line })
}
