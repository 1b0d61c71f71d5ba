export { createInventory, type InventoryDeps } from './inventory.js'
export { entityId, edgeRef, grantRef, locationRef, isUuid, type FactType } from './ids.js'
export type * from './inventory-types.js'
export * from './observation.js'
