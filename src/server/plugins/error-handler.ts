import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  errorCatalog,
  isTesseraError,
  problemType,
  TesseraError,
  type TesseraErrorCode,
} from '../../errors.js'

/** RFC 9457 problem details with Tessera's extension members. */
export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  instance?: string
  code: TesseraErrorCode
  requestId: string
  errors?: unknown[]
  [extension: string]: unknown
}

export const problemContentType = 'application/problem+json'

const internalDetail = 'an internal error occurred; quote the request id when you report it'
/** A body with thousands of bad fields gets the first few listed, not a response as big as it. */
const maxListedErrors = 20
const reserved = new Set(['type', 'title', 'status', 'detail', 'instance', 'code', 'requestId'])

/**
 * Every error response is application/problem+json, whatever raised it: a TesseraError from a
 * domain, fastify's validation and body parsing, an unknown route, or a bug. A 5xx never carries
 * the original message or stack, which could hold SQL, paths or hostnames; those go to the log.
 */
export function registerErrorHandling(app: FastifyInstance): void {
  const routes = new Map<string, { pattern: RegExp; methods: Set<string> }>()
  app.addHook('onRoute', (route) => {
    const url = route.url ?? route.path
    if (!url) return
    const entry = routes.get(url) ?? { pattern: routePattern(url), methods: new Set<string>() }
    for (const m of [route.method].flat()) entry.methods.add(m.toUpperCase())
    routes.set(url, entry)
  })

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/'
    const allowed = new Set<string>()
    for (const { pattern, methods } of routes.values()) {
      if (pattern.test(path)) for (const m of methods) allowed.add(m)
    }
    if (allowed.size > 0) {
      const allow = [...allowed].sort().join(', ')
      void reply.header('allow', allow)
      return sendProblem(
        request,
        reply,
        new TesseraError(
          'TSR_METHOD_NOT_ALLOWED',
          `${request.method} is not allowed here; allowed: ${allow}`,
        ),
      )
    }
    return sendProblem(
      request,
      reply,
      new TesseraError('TSR_NOT_FOUND', `no route ${request.method} ${path}`),
    )
  })

  app.setErrorHandler((error: unknown, request, reply) => {
    const tessera = toTesseraError(error)
    if (tessera.status >= 500) {
      request.log.error({ err: error }, 'request failed')
    } else {
      request.log.info({ code: tessera.code, status: tessera.status }, tessera.message)
    }
    return sendProblem(request, reply, tessera)
  })
}

/** Maps anything thrown to the TesseraError the response describes. */
export function toTesseraError(error: unknown): TesseraError {
  if (isTesseraError(error)) return error
  const fe = error as Partial<FastifyError> & { validation?: unknown[] }
  if (Array.isArray(fe.validation)) {
    const context = fe.validationContext ?? 'body'
    const all = fe.validation.flatMap(validationItems(context))
    // TypeBox reports a forbidden property twice: at the property, and as a summary at its parent.
    const specific = all.filter((e) => e.message !== 'must not have additional properties')
    const errors = (specific.length > 0 ? specific : all).slice(0, maxListedErrors)
    const first = errors[0]
    return new TesseraError(
      'TSR_VALIDATION',
      first
        ? `${first.in}${first.path === '/' ? '' : first.path} ${first.message}`
        : 'invalid request',
      { details: { errors } },
    )
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new TesseraError('TSR_PAYLOAD_TOO_LARGE', 'the request body is larger than allowed')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new TesseraError(
        'TSR_UNSUPPORTED_MEDIA_TYPE',
        'unsupported Content-Type; send application/json (or application/x-ndjson where documented)',
      )
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new TesseraError('TSR_VALIDATION', 'the request body is not valid JSON')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new TesseraError('TSR_VALIDATION', 'the request body is empty but must be JSON')
  }
  // Other client errors raised by fastify itself (bad content length, bad URL…): their messages
  // describe the request, not the server.
  if (
    typeof fe.statusCode === 'number' &&
    fe.statusCode >= 400 &&
    fe.statusCode < 500 &&
    typeof fe.code === 'string' &&
    fe.code.startsWith('FST_')
  ) {
    return new TesseraError('TSR_VALIDATION', fe.message ?? 'invalid request')
  }
  return new TesseraError('TSR_INTERNAL', 'internal error', { cause: error })
}

interface ValidationItem {
  instancePath?: string
  message?: string
  params?: { missingProperty?: unknown; requiredProperties?: unknown }
}

/** One entry per bad field; a missing-properties error becomes one entry per missing property. */
function validationItems(context: string) {
  return (raw: unknown): Array<{ in: string; path: string; message: string }> => {
    const item = raw as ValidationItem
    const base = item.instancePath ?? ''
    const missing = [item.params?.missingProperty, item.params?.requiredProperties]
      .flat()
      .filter((p): p is string => typeof p === 'string')
    if (missing.length > 0) {
      return missing.map((name) => ({
        in: context,
        path: `${base}/${name}`,
        message: 'is required',
      }))
    }
    // TypeBox reports a property that `additionalProperties: false` forbids as "schema is false".
    const message = item.message === 'schema is false' ? 'is not allowed' : item.message
    return [{ in: context, path: base || '/', message: message ?? 'is invalid' }]
  }
}

export function buildProblem(request: FastifyRequest, error: TesseraError): Problem {
  const status = error.status
  const problem: Problem = {
    type: problemType(error.code),
    title: errorCatalog[error.code].title,
    status,
    detail: status >= 500 ? internalDetailFor(error.code) : error.message,
    instance: request.url.split('?')[0],
    code: error.code,
    requestId: request.id,
  }
  if (status < 500 && error.details) {
    for (const [key, value] of Object.entries(error.details)) {
      if (!reserved.has(key)) problem[key] = value
    }
  }
  return problem
}

function internalDetailFor(code: TesseraErrorCode): string {
  if (code === 'TSR_STORE_UNAVAILABLE') return 'the store is unavailable; try again later'
  return internalDetail
}

export function sendProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  error: TesseraError,
): FastifyReply {
  const problem = buildProblem(request, error)
  if (error.code === 'TSR_AUTH_MISSING') {
    void reply.header('www-authenticate', 'Bearer realm="tessera"')
  } else if (error.code === 'TSR_AUTH_INVALID') {
    void reply.header('www-authenticate', 'Bearer realm="tessera", error="invalid_token"')
  } else if (error.code === 'TSR_AUTH_SCOPE') {
    const scope = error.details?.requiredScope
    void reply.header(
      'www-authenticate',
      `Bearer realm="tessera", error="insufficient_scope"${typeof scope === 'string' ? `, scope="${scope}"` : ''}`,
    )
  }
  // A string body skips the route's response serialiser, so extension members survive as sent.
  return reply.code(problem.status).type(problemContentType).send(JSON.stringify(problem))
}

/** find-my-way style route path → regex, for telling 405 from 404. */
function routePattern(url: string): RegExp {
  const body = url
    .split('/')
    .map((part) =>
      part.startsWith(':')
        ? '[^/]+'
        : part === '*'
          ? '.*'
          : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('/')
  return new RegExp(`^${body}/?$`)
}
