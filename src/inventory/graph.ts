import type { Kysely } from 'kysely'
import type { Database } from '../store/index.js'
import type { Graph, NeighbourhoodOptions } from './inventory-types.js'

export async function neighbourhood(
  _db: Kysely<Database>,
  _idOrRef: string,
  _options: NeighbourhoodOptions = {},
): Promise<Graph | undefined> {
  throw new Error('not implemented yet')
}
