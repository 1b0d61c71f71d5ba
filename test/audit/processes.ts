import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { freshSchemaName } from '../support/stores.js'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** A PostgreSQL schema of its own and the URL that puts the server in it (search_path). */
export async function schemaUrl(base: string): Promise<{ url: string; schema: string }> {
  const schema = freshSchemaName()
  const client = new pg.Client({ connectionString: base })
  await client.connect()
  try {
    await client.query(`CREATE SCHEMA ${schema}`)
  } finally {
    await client.end()
  }
  const url = new URL(base)
  url.searchParams.set('options', `-c search_path=${schema},public`)
  return { url: url.toString(), schema }
}

export interface ServerProcess {
  child: ChildProcess
  url: string
  adminToken: string | null
  stderr(): string
  /** SIGTERM and wait (SIGKILL after 10 s). */
  stop(): Promise<void>
  /** SIGKILL and wait. */
  kill(): Promise<void>
}

/** `tessera server --json` as a child process, through the real CLI entry point. */
export async function spawnServer(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 180_000,
): Promise<ServerProcess> {
  const clean = { ...process.env }
  for (const k of ['TESSERA_SERVER', 'TESSERA_TOKEN', 'TESSERA_DATABASE_URL', 'TESSERA_NATS_URL'])
    delete clean[k]
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'server',
      '--port',
      '0',
      '--json',
      '--log-level',
      'warn',
      ...args,
    ],
    { cwd: repoRoot, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const banner = await new Promise<{ url: string; adminToken: string | null }>(
    (resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`server did not start: ${stderr}`)),
        timeoutMs,
      )
      child.stdout!.on('data', (d) => {
        stdout += d
        const nl = stdout.indexOf('\n')
        if (nl >= 0) {
          clearTimeout(timer)
          resolve(JSON.parse(stdout.slice(0, nl)) as { url: string; adminToken: string | null })
        }
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`server exited (${code}): ${stderr}`))
      })
    },
  )
  return {
    child,
    url: banner.url,
    adminToken: banner.adminToken,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGKILL')
      await exited
    },
  }
}
