import type { DiscoverContext } from './connector.js'
import { inputError } from './parse/input-error.js'
import { formatPath, parseJsonInput } from './parse/json.js'

export type Json = Record<string, unknown>
export const isObj = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v)
export const str = (v: unknown): string | undefined =>
  typeof v === 'string' && v !== '' ? v : undefined

/**
 * A CLI export that is a JSON array of objects (`gcloud … --format=json`, `az … list`): the objects
 * that parsed, each with its JSON path. A syntax error or a non-object element is reported; the
 * valid elements before it are kept.
 */
export async function readJsonArray(
  ctx: DiscoverContext,
  file: string,
  what: string,
): Promise<{ item: Json; path: string }[]> {
  ctx.progress?.(`reading ${file}`)
  const parsed = parseJsonInput(await ctx.files.readFile(file), file)
  if (parsed.error) ctx.report(parsed.error)
  const v = parsed.value
  // `az rest` and the Graph API wrap lists in {"value": [...]}.
  const list = Array.isArray(v) ? v : isObj(v) && Array.isArray(v.value) ? v.value : undefined
  if (!list) {
    if (v !== undefined)
      ctx.report(inputError(file, `expected a JSON array of ${what}`, { path: '$' }))
    return []
  }
  const prefix = Array.isArray(v) ? [] : ['value']
  const out: { item: Json; path: string }[] = []
  list.forEach((item, i) => {
    const path = formatPath([...prefix, i])
    if (isObj(item)) out.push({ item, path })
    else ctx.report(inputError(file, `expected an object (one of the ${what})`, { path }))
  })
  return out
}
