import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { openStore, type Store } from '../../src/store/index.js'

export interface TestBackend {
  name: 'pglite' | 'postgres'
  /** A fresh, migrated, empty store of its own (its own schema on PostgreSQL). */
  open(): Promise<Store>
}

/** PGlite always; PostgreSQL too when TESSERA_TEST_DATABASE_URL is set (CI sets it). */
export function testBackends(): TestBackend[] {
  const backends: TestBackend[] = [{ name: 'pglite', open: () => openStore({ backend: 'pglite' }) }]
  const url = process.env.TESSERA_TEST_DATABASE_URL
  if (url) {
    backends.push({
      name: 'postgres',
      open: () => openStore({ backend: 'postgres', url, schema: freshSchemaName(), poolSize: 4 }),
    })
  }
  return backends
}

export function freshSchemaName(): string {
  return `t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
}

/** Drops a schema made by `freshSchemaName` (best effort; the per-run database is thrown away). */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  } finally {
    await client.end()
  }
}
