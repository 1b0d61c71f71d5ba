import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { TesseraError } from '../errors.js'

/** What `tessera login` saves: the server to talk to and the API token for it. */
export interface CliConfig {
  server?: string
  token?: string
}

/** `$TESSERA_CONFIG`, else `$XDG_CONFIG_HOME/tessera/config.json`, else `~/.config/tessera/config.json`. */
export function configPath(env: NodeJS.ProcessEnv): string {
  if (env.TESSERA_CONFIG) return env.TESSERA_CONFIG
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config')
  return join(base, 'tessera', 'config.json')
}

export interface LoadedConfig {
  config: CliConfig
  path: string
  /** Set when the file holds a token but other users can read it. */
  warning?: string
}

/** Reads the config file; a missing file is an empty config, a malformed one a TSR_CONFIG error. */
export function loadConfig(env: NodeJS.ProcessEnv): LoadedConfig {
  const path = configPath(env)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { config: {}, path }
    throw new TesseraError('TSR_CONFIG', `cannot read the config file ${path}`, { cause: err })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new TesseraError('TSR_CONFIG', `the config file ${path} is not valid JSON`, {
      cause: err,
    })
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TesseraError('TSR_CONFIG', `the config file ${path} must hold a JSON object`)
  }
  const raw = parsed as Record<string, unknown>
  const config: CliConfig = {}
  for (const key of ['server', 'token'] as const) {
    const v = raw[key]
    if (v === undefined) continue
    if (typeof v !== 'string' || v === '') {
      throw new TesseraError('TSR_CONFIG', `the config file ${path}: "${key}" must be a string`)
    }
    config[key] = v
  }
  let warning: string | undefined
  if (config.token !== undefined && process.platform !== 'win32') {
    const mode = statSync(path).mode & 0o777
    if (mode & 0o077) {
      warning = `the config file ${path} holds a token but is readable by others (mode ${mode.toString(8)}); run chmod 600 on it`
    }
  }
  return { config, path, ...(warning ? { warning } : {}) }
}

/** Writes the config with mode 0600 (directory 0700), atomically: never a moment with a readable token. */
export function saveConfig(env: NodeJS.ProcessEnv, config: CliConfig): string {
  const path = configPath(env)
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600, flag: 'w' })
  // writeFileSync's mode only applies when it creates the file; make sure of it either way.
  chmodSync(tmp, 0o600)
  renameSync(tmp, path)
  return path
}
