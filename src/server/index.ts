export { buildApp, defaultBodyLimit, type AppDeps } from './app.js'
export {
  startServer,
  defaultPort,
  defaultDataDir,
  type ServerOptions,
  type RunningServer,
} from './compose.js'
export {
  createApiToken,
  verifyApiToken,
  listApiTokens,
  revokeApiToken,
  ensureAdminToken,
  scopeAllows,
  type ApiTokenView,
  type CreatedApiToken,
  type VerifiedApiToken,
  type TokenVerification,
} from './auth/api-tokens.js'
export { generateOpenApiDocument } from './openapi.js'
