export * from './offboarding-types.js'
export { createOffboarding, type Offboarding, type OffboardingDeps } from './offboarding.js'
export {
  createInventoryExecutors,
  offboardingSource,
  type InventoryExecutorDeps,
} from './executors.js'
export { proposePlan, type ProposedPlan } from './planner.js'
