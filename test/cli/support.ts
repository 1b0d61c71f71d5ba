import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { localBackend, type Backend } from '../../src/cli/backend.js'
import { runCli } from '../../src/cli/program.js'
import type { Clock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'

/** A stream that keeps what is written to it. */
export class Capture extends Writable {
  text = ''
  isTTY = false
  override _write(
    chunk: Buffer | string,
    _enc: BufferEncoding,
    done: (err?: Error | null) => void,
  ) {
    this.text += chunk.toString()
    done()
  }
}

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

/**
 * Runs the CLI in this process on a shared store: the real commands, parsing, inventory and token
 * functions, without paying a process start and a store open per command.
 */
export function cliOn(store: Store, clock: Clock, env: NodeJS.ProcessEnv = {}) {
  let shared: Promise<Backend> | undefined
  // The store belongs to the test: closing the CLI's backend must not close it.
  const backend = async (): Promise<Backend> => ({
    ...(await (shared ??= localBackend(store, clock, { USER: 'test' }))),
    close: async () => {},
  })
  let opened = 0
  return {
    get backendOpens() {
      return opened
    },
    async run(...args: string[]): Promise<CliRun> {
      const stdout = new Capture()
      const stderr = new Capture()
      const code = await runCli(args, {
        stdout,
        stderr,
        env: { TESSERA_CONFIG: join(tempDir(), 'none.json'), ...env },
        clock,
        openBackend: async () => {
          opened++
          return backend()
        },
      })
      return { code, stdout: stdout.text, stderr: stderr.text }
    },
  }
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'tessera-cli-'))
}

/** A small import file: 6 valid observations and 3 bad lines (malformed, wrong type, unknown kind). */
export const sampleLines = [
  { type: 'owner', source: 'hr', ref: 'team-a', ownerType: 'team', name: 'Team A' },
  {
    type: 'identity',
    source: 'aws:prod',
    ref: 'arn:aws:iam::1:role/deploy',
    kind: 'iam_role',
    name: 'deploy',
    owner: 'team-a',
  },
  {
    type: 'identity',
    source: 'aws:prod',
    ref: 'arn:aws:iam::1:user/ci',
    kind: 'iam_user',
    name: 'ci-user',
    owner: 'team-a',
    lastUsedAt: '2026-01-01T00:00:00Z',
  },
  '{not json',
  { type: 'identity', source: 'aws:prod', ref: 'x', kind: 'iam_user', name: 42 },
  { type: 'identity', source: 'aws:prod', ref: 'y', kind: 'robot', name: 'r' },
  {
    type: 'credential',
    source: 'aws:prod',
    ref: 'aws-key:AKIAEXAMPLE',
    identity: 'arn:aws:iam::1:user/ci',
    credentialType: 'access_key',
    preview: 'AKIA…MPLE',
    expiresAt: '2027-01-01T00:00:00Z',
  },
  {
    type: 'location',
    source: 'scanner',
    credential: 'aws-key:AKIAEXAMPLE',
    locationType: 'git',
    repository: 'acme/app',
    file: 'config.env',
    line: 3,
    commit: 'abc1234',
  },
  {
    type: 'edge',
    source: 'aws:prod',
    edgeType: 'can_assume',
    from: { type: 'identity', ref: 'arn:aws:iam::1:user/ci' },
    to: { type: 'identity', ref: 'arn:aws:iam::1:role/deploy' },
  },
]

export function jsonl(lines: readonly unknown[]): string {
  return lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n'
}
