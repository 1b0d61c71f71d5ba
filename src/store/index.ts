export { openStore, redactUrl, type Store, type StoreConfig, type BulkValue } from './store.js'
export { runMigrations, migrationNames } from './migrate.js'
export * from './schema.js'
