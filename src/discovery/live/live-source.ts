import { TesseraError } from '../../errors.js'
import type { DiscoverContext, FileReader } from '../connector.js'
import type { OptionReader } from '../options.js'
import { createHttpJsonClient, type HttpClientOptions, type HttpJsonClient } from './http-client.js'

/**
 * The live mode every platform connector shares. A connector given `api` instead of export files
 * reads the provider's API, assembles the very document its export would hold, and parses that
 * with the same code as a file: one parser, so live and file discovery can never disagree.
 *
 * Options (in the sources file):
 * - `api`: the API's base URL (`https://api.github.com`, `https://vault:8200`, …)
 * - `tokenEnv`: the environment variable holding the token (never the token itself in the file)
 * - `tokenFile`: or a file holding it, read at every run (a Kubernetes projected token rotates)
 * - `caFile`: PEM CA certificates for an API served under a private CA
 * - `timeoutSeconds`: per request (default 30)
 * - `allowInsecureHttp`: send the token over plain http to a non-loopback host (tests only)
 */
export interface LiveApiConfig {
  url: string
  token?: string
  tokenFile?: string
  caFile?: string
  timeoutMs: number
  allowInsecureHttp: boolean
}

/** Reads the live options; undefined when `api` is absent (the connector reads files). */
export function readLiveApi(
  o: OptionReader,
  defaults: { tokenEnv?: string; env?: NodeJS.ProcessEnv } = {},
): LiveApiConfig | undefined {
  const url = o.string('api')
  const tokenFromEnv = o.secretFromEnv('tokenEnv')
  const tokenFile = o.path('tokenFile')
  const caFile = o.path('caFile')
  const timeout = o.int('timeoutSeconds', 1, 600)
  const insecure = o.boolean('allowInsecureHttp')
  if (url === undefined) {
    for (const key of ['tokenEnv', 'tokenFile', 'caFile', 'timeoutSeconds', 'allowInsecureHttp']) {
      if (o.has(key)) o.problems.push(`${key}: only with api`)
    }
    return undefined
  }
  if (tokenFromEnv !== undefined && tokenFile !== undefined) {
    o.problems.push('tokenEnv and tokenFile: give one')
  }
  const fallback =
    tokenFromEnv === undefined && tokenFile === undefined && defaults.tokenEnv
      ? defaults.env?.[defaults.tokenEnv]
      : undefined
  const token = tokenFromEnv ?? (fallback === '' ? undefined : fallback)
  return {
    url,
    ...(token === undefined ? {} : { token }),
    ...(tokenFile === undefined ? {} : { tokenFile }),
    ...(caFile === undefined ? {} : { caFile }),
    timeoutMs: (timeout ?? 30) * 1000,
    allowInsecureHttp: insecure ?? false,
  }
}

/** `file` (or the connector's file options) xor `api`: the problems when neither or both. */
export function requireOneInput(
  o: OptionReader,
  haveFiles: boolean,
  live: LiveApiConfig | undefined,
  fileOptions: string,
): void {
  if (haveFiles && live) o.problems.push(`${fileOptions} or api: give one, not both`)
  else if (!haveFiles && !live && !o.problems.some((p) => p.startsWith('api:'))) {
    o.problems.push(`${fileOptions} or api: give one (an export file, or the live API)`)
  }
}

/** A client for the configured API; the token file and CA file are read now, through ctx.files. */
export async function openLiveClient(
  ctx: DiscoverContext,
  live: LiveApiConfig,
  extra: Pick<HttpClientOptions, 'auth' | 'headers'> = {},
): Promise<HttpJsonClient> {
  let token = live.token
  if (live.tokenFile !== undefined) {
    token = (await ctx.files.readFile(live.tokenFile)).toString('utf8').trim()
    if (token === '')
      throw new TesseraError('TSR_CONFIG', `${live.tokenFile}: the token file is empty`)
  }
  const ca = live.caFile === undefined ? undefined : await ctx.files.readFile(live.caFile)
  return createHttpJsonClient({
    baseUrl: live.url,
    ...(token === undefined ? {} : { token }),
    ...(ca === undefined ? {} : { ca }),
    timeoutMs: live.timeoutMs,
    allowInsecureHttp: live.allowInsecureHttp,
    ...extra,
  })
}

/** The context the file parser runs in: the assembled documents are its files. */
export function withDocuments(
  ctx: DiscoverContext,
  documents: ReadonlyMap<string, unknown>,
): DiscoverContext {
  const files: FileReader = {
    readFile: async (path) => {
      if (documents.has(path)) return Buffer.from(JSON.stringify(documents.get(path)))
      return ctx.files.readFile(path)
    },
    listFiles: async (path) => (documents.has(path) ? [path] : ctx.files.listFiles(path)),
  }
  return { ...ctx, files }
}

/**
 * Runs a fetch step that may fail on its own (one repository's keys, one endpoint the token may
 * not read): the failure is reported (the run is marked failed, so nothing is closed for it) and
 * discovery goes on with the rest.
 */
export async function tryFetch<T>(
  ctx: DiscoverContext,
  step: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await step()
  } catch (err) {
    if (err instanceof TesseraError && err.code === 'TSR_DISCOVERY_SOURCE') {
      ctx.report(err)
      return undefined
    }
    throw err
  }
}
