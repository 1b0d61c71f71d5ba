import type { Command } from 'commander'
import type { Clock } from '../runtime/clock.js'
import { openBackend, type Backend, type BackendDeps, type BackendOptions } from './backend.js'
import type { ExitCode } from './exit-codes.js'

/** The process edges a command touches; tests run the CLI in-process with their own. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean }
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }
  env: NodeJS.ProcessEnv
  clock: Clock
  fetch?: typeof fetch
  /** Replaces `openBackend`; tests hand in a backend on a shared store. */
  openBackend?: (options: BackendOptions, deps: BackendDeps) => Promise<Backend>
}

/** Options every command accepts (declared once on the root program). */
export interface GlobalOptions {
  json: boolean
  server?: string
  token?: string
  dataDir?: string
  database?: string
}

/** What a command file gets: the io, the parsed global options, and a backend on demand. */
export interface CommandContext {
  readonly io: CliIo
  globals(cmd: Command): GlobalOptions
  /** Opens the backend, runs `fn`, and closes it whatever happens. */
  withBackend<T>(cmd: Command, fn: (backend: Backend) => Promise<T>): Promise<T>
  /** Writes to stdout, waiting when the pipe is full (exports can be large). */
  out(text: string): Promise<void>
  /** A line on stderr (notes, warnings, invalid-line reports). */
  note(text: string): void
  /** The exit code when the command returns normally (default 0). */
  setExitCode(code: ExitCode): void
}

export function createCommandContext(io: CliIo, exit: { code: ExitCode }): CommandContext {
  const globals = (cmd: Command): GlobalOptions => {
    const o = cmd.optsWithGlobals<Record<string, unknown>>()
    return {
      json: o.json === true,
      ...(typeof o.server === 'string' ? { server: o.server } : {}),
      ...(typeof o.token === 'string' ? { token: o.token } : {}),
      ...(typeof o.dataDir === 'string' ? { dataDir: o.dataDir } : {}),
      ...(typeof o.database === 'string' ? { database: o.database } : {}),
    }
  }
  const note = (text: string) => {
    io.stderr.write(text.endsWith('\n') ? text : text + '\n')
  }
  return {
    io,
    globals,
    async withBackend(cmd, fn) {
      const open = io.openBackend ?? openBackend
      const backend = await open(globals(cmd), {
        env: io.env,
        clock: io.clock,
        ...(io.fetch ? { fetch: io.fetch } : {}),
        warn: (m) => note(`warning: ${m}`),
      })
      try {
        return await fn(backend)
      } finally {
        await backend.close()
      }
    },
    out: (text) => writeAll(io.stdout, text),
    note,
    setExitCode(code) {
      // The worst outcome wins: a later success does not hide earlier findings.
      exit.code = Math.max(exit.code, code) as ExitCode
    },
  }
}

/** Writes and, when the stream asks for it, waits for `drain`. */
export function writeAll(stream: NodeJS.WritableStream, text: string): Promise<void> {
  if (stream.write(text)) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      stream.off('error', onError)
      resolve()
    }
    const onError = (err: Error) => {
      stream.off('drain', onDrain)
      reject(err)
    }
    stream.once('drain', onDrain)
    stream.once('error', onError)
  })
}
