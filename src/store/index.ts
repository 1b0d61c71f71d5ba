export {
  openStore,
  redactUrl,
  type Store,
  type StoreConfig,
  type BulkValue,
  type StoreTransaction,
} from './store.js'
export { runMigrations, migrationNames } from './migrate.js'
export * from './schema.js'
