export * from './observed.js'
export * from './reconcile.js'
