import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { PGlite } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import copyStreams from 'pg-copy-streams'
import { TesseraError } from '../errors.js'
import { runMigrations } from './migrate.js'
import { createPGliteDialect } from './pglite-dialect.js'
import { discardTemplate, loadTemplate, saveTemplate } from './pglite-template.js'
import type { Database } from './schema.js'

export type StoreConfig =
  | { backend: 'pglite'; /** on-disk directory; omitted means in memory */ dataDir?: string }
  | {
      backend: 'postgres'
      url: string
      /** schema to create and use instead of `public` */ schema?: string
      poolSize?: number
    }

export type BulkValue = string | number | boolean | Date | null | undefined | string[] | object

/**
 * The one handle on the identity graph. Both backends run the same SQL; they differ only in the
 * Kysely dialect and in how `bulkInsert` moves rows (COPY on PostgreSQL, multi-row INSERT on PGlite).
 */
export interface Store {
  readonly db: Kysely<Database>
  readonly backend: 'pglite' | 'postgres'
  /** Where the data lives, for humans (never includes a password). */
  readonly location: string
  /** Appends rows fast. Columns must be plain table columns; values are encoded per column. */
  bulkInsert(table: string, columns: readonly string[], rows: readonly BulkValue[][]): Promise<void>
  /**
   * Runs `fn` in one transaction on one connection: committed when it resolves, rolled back when it
   * throws. `tx.bulkInsert` writes inside that transaction (COPY on PostgreSQL).
   */
  transaction<T>(fn: (tx: StoreTransaction) => Promise<T>): Promise<T>
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<void>
  close(): Promise<void>
}

/** The part of a Store bound to one open transaction. */
export interface StoreTransaction {
  readonly db: Kysely<Database>
  bulkInsert(table: string, columns: readonly string[], rows: readonly BulkValue[][]): Promise<void>
}

export async function openStore(config: StoreConfig): Promise<Store> {
  let fresh: PGlite | undefined
  const store =
    config.backend === 'pglite'
      ? await openPGlite(config.dataDir, (p) => (fresh = p))
      : await openPostgres(config)
  try {
    await runMigrations(store.db as unknown as Kysely<unknown>, store.backend)
    // A cluster that went through initdb here becomes the template for the next fresh store.
    if (fresh) await saveTemplate(fresh)
  } catch (err) {
    await store.close()
    throw err
  }
  return store
}

async function createPGlite(
  dataDir: string | undefined,
  onInitdb: (p: PGlite) => void,
): Promise<PGlite> {
  const options = {
    ...(dataDir === undefined ? {} : { dataDir: join(dataDir, 'pgdata') }),
    extensions: { pg_trgm },
    parsers: { 20: (v: string) => Number(v) },
  }
  const isNew = dataDir === undefined || !existsSync(join(dataDir, 'pgdata', 'PG_VERSION'))
  if (isNew) {
    const template = await loadTemplate()
    if (template !== undefined) {
      try {
        return await PGlite.create({ ...options, loadDataDir: template })
      } catch {
        // A damaged template: forget it and initialise from scratch.
        discardTemplate()
        if (dataDir !== undefined) rmSync(join(dataDir, 'pgdata'), { recursive: true, force: true })
      }
    }
  }
  const pglite = await PGlite.create(options)
  if (isNew) onInitdb(pglite)
  return pglite
}

async function openPGlite(
  dataDir: string | undefined,
  onInitdb: (p: PGlite) => void,
): Promise<Store> {
  let release = () => {}
  if (dataDir !== undefined) {
    mkdirSync(dataDir, { recursive: true })
    release = lockDataDir(dataDir)
  }
  let pglite: PGlite
  try {
    pglite = await createPGlite(dataDir, onInitdb)
  } catch (err) {
    release()
    throw new TesseraError(
      'TSR_STORE_UNAVAILABLE',
      `cannot open the embedded store in ${dataDir}`,
      {
        cause: err,
      },
    )
  }
  const db = new Kysely<Database>({ dialect: createPGliteDialect(pglite) })
  let closed = false
  return {
    db,
    backend: 'pglite',
    location: dataDir ?? 'memory',
    bulkInsert: (table, columns, rows) => multiRowInsert(db, table, columns, rows),
    transaction: (fn) =>
      db.transaction().execute((trx) =>
        fn({
          db: trx,
          bulkInsert: (table, columns, rows) => multiRowInsert(trx, table, columns, rows),
        }),
      ),
    ping: async () => {
      await sql`select 1`.execute(db)
    },
    close: async () => {
      if (closed) return
      closed = true
      await db.destroy()
      await pglite.close()
      release()
    },
  }
}

/**
 * PGlite is one process's database: a second process opening the same directory would corrupt it.
 * A pid file refuses that with a clear error; a pid file left by a dead process is taken over.
 */
function lockDataDir(dataDir: string): () => void {
  const lockPath = join(dataDir, 'tessera.pid')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx')
      writeSync(fd, String(process.pid))
      closeSync(fd)
      return () => rmSync(lockPath, { force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number(readFileSync(lockPath, 'utf8').trim())
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new TesseraError(
          'TSR_STORE_UNAVAILABLE',
          `the data dir ${dataDir} is in use by process ${pid}; stop it, or talk to it with --server`,
          { details: { pid } },
        )
      }
      rmSync(lockPath, { force: true })
    }
  }
  throw new TesseraError('TSR_STORE_UNAVAILABLE', `cannot lock the data dir ${dataDir}`)
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const int8Oid = 20

async function openPostgres(config: Extract<StoreConfig, { backend: 'postgres' }>): Promise<Store> {
  const schema = config.schema
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new TesseraError('TSR_CONFIG', `invalid schema name ${JSON.stringify(schema)}`)
  }
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolSize ?? 10,
    ...(schema === undefined ? {} : { options: `-c search_path=${schema},public` }),
    // int8 counts and sequences fit a double; keep them numbers on both backends.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === int8Oid
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  })
  pool.on('error', () => {
    // An idle client lost its connection; the pool replaces it on next use.
  })
  try {
    const client = await pool.connect()
    try {
      if (schema !== undefined) {
        // Two processes creating one schema at once race inside IF NOT EXISTS; the loser's
        // unique violation means the schema is there.
        await client
          .query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
          .catch((err: { code?: string }) => {
            if (err.code !== '23505' && err.code !== '42P06') throw err
          })
      }
    } finally {
      client.release()
    }
  } catch (err) {
    await pool.end()
    throw new TesseraError(
      'TSR_STORE_UNAVAILABLE',
      `cannot connect to PostgreSQL at ${redactUrl(config.url)}`,
      {
        cause: err,
      },
    )
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  let closed = false
  return {
    db,
    backend: 'postgres',
    location: redactUrl(config.url) + (schema ? ` (schema ${schema})` : ''),
    bulkInsert: (table, columns, rows) => copyInsert(pool, table, columns, rows),
    transaction: (fn) => pgTransaction(pool, fn),
    ping: async () => {
      await sql`select 1`.execute(db)
    },
    close: async () => {
      if (closed) return
      closed = true
      await db.destroy()
    },
  }
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return 'postgres://(unparseable url)'
  }
}

function quoteIdent(name: string): string {
  return '"' + name.replaceAll('"', '""') + '"'
}

async function copyInsert(
  pool: pg.Pool,
  table: string,
  columns: readonly string[],
  rows: readonly BulkValue[][],
): Promise<void> {
  if (rows.length === 0) return
  const client = await pool.connect()
  try {
    await copyInto(client, table, columns, rows)
  } finally {
    client.release()
  }
}

async function copyInto(
  client: pg.PoolClient,
  table: string,
  columns: readonly string[],
  rows: readonly BulkValue[][],
): Promise<void> {
  if (rows.length === 0) return
  const target = `${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')})`
  const stream = client.query(copyStreams.from(`COPY ${target} FROM STDIN`))
  await pipeline(Readable.from(copyChunks(rows)), stream)
}

/**
 * A transaction on one pooled client. Kysely sees that client through a one-connection "pool", so
 * its queries and our COPY share the transaction.
 */
async function pgTransaction<T>(
  pool: pg.Pool,
  fn: (tx: StoreTransaction) => Promise<T>,
): Promise<T> {
  const client = await pool.connect()
  const pinned = {
    connect: async () => ({
      query: client.query.bind(client) as pg.PoolClient['query'],
      release: () => {},
    }),
    end: async () => {},
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: pinned }) })
  let broken: Error | undefined
  try {
    await client.query('begin')
    const result = await fn({
      db,
      bulkInsert: (table, columns, rows) => copyInto(client, table, columns, rows),
    })
    await client.query('commit')
    return result
  } catch (err) {
    await client.query('rollback').catch((rollbackErr: Error) => {
      broken = rollbackErr
    })
    throw err
  } finally {
    // A client whose rollback failed is in an unknown state: drop it instead of pooling it.
    client.release(broken)
  }
}

function* copyChunks(rows: readonly BulkValue[][]): Generator<string> {
  let chunk = ''
  for (const row of rows) {
    let line = ''
    for (let i = 0; i < row.length; i++) line += (i === 0 ? '' : '\t') + copyText(row[i])
    chunk += line + '\n'
    if (chunk.length > 1 << 18) {
      yield chunk
      chunk = ''
    }
  }
  if (chunk) yield chunk
}

const copySpecial = /[\\\n\r\t]/

/** Encodes one value in COPY's text format. */
export function copyText(value: BulkValue): string {
  if (value === null || value === undefined) return '\\N'
  let text: string
  if (typeof value === 'string') text = value
  else if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  else if (value instanceof Date) return value.toISOString()
  else if (Array.isArray(value)) text = pgArrayLiteral(value)
  else text = JSON.stringify(value)
  // Most values have nothing to escape: test once instead of rewriting every string.
  if (!copySpecial.test(text)) return text
  return text.replace(/[\\\n\r\t]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t',
  )
}

function pgArrayLiteral(values: readonly string[]): string {
  return '{' + values.map((v) => '"' + v.replace(/["\\]/g, (c) => '\\' + c) + '"').join(',') + '}'
}

async function multiRowInsert(
  db: Kysely<Database>,
  table: string,
  columns: readonly string[],
  rows: readonly BulkValue[][],
): Promise<void> {
  if (rows.length === 0) return
  // PostgreSQL accepts at most 65,535 bind parameters in one statement.
  const perStatement = Math.max(1, Math.floor(30_000 / columns.length))
  const target = sql.raw(`${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')})`)
  for (let i = 0; i < rows.length; i += perStatement) {
    const slice = rows.slice(i, i + perStatement)
    const values = sql.join(
      slice.map((row) => sql`(${sql.join(row.map(bindValue))})`),
      sql`, `,
    )
    await sql`insert into ${target} values ${values}`.execute(db)
  }
}

function bindValue(value: BulkValue) {
  if (value === undefined) return null
  if (Array.isArray(value)) return value
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    return JSON.stringify(value)
  }
  return value
}
