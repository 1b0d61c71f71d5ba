import type { HttpJsonClient, HttpResponse } from './http-client.js'

/** The `rel="next"` target of an RFC 8288 Link header (GitHub's paging). */
export function nextLink(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header.join(',') : header
  if (!value) return undefined
  for (const part of value.split(',')) {
    const m = /^\s*<([^>]+)>\s*;(.*)$/.exec(part)
    if (m && /(?:^|;)\s*rel="?next"?\s*(?:;|$)/.test(m[2]!)) return m[1]
  }
  return undefined
}

/** Guards every paging loop: a server that keeps answering "next" cannot hold a run forever. */
export const maxPages = 10_000

/**
 * Every page of a GitHub-style list (Link: rel="next"). `pick` takes the items out of one page
 * (the page itself when it is an array, or a field such as `installations`).
 */
export async function linkPages(
  client: HttpJsonClient,
  path: string,
  pick: (body: unknown) => unknown[],
  query: Record<string, string | number> = { per_page: 100 },
): Promise<{ items: unknown[]; first: HttpResponse }> {
  const items: unknown[] = []
  let res = await client.request(path, { query })
  const first = res
  for (let page = 1; ; page++) {
    items.push(...pick(res.body))
    const next = nextLink(res.headers.link)
    if (!next || page >= maxPages) break
    res = await client.request(next)
  }
  return { items, first }
}

/** Items of a page that is an array, or of one of its fields. */
export function field(name?: string): (body: unknown) => unknown[] {
  return (body) => {
    const v =
      name === undefined
        ? body
        : typeof body === 'object' && body !== null
          ? (body as Record<string, unknown>)[name]
          : undefined
    return Array.isArray(v) ? v : []
  }
}
