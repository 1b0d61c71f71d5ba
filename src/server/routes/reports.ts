import { Type } from 'typebox'
import {
  renderCompliance,
  renderOwnerReport,
  reportContentType,
  reportFormats,
  type ReportFormat,
} from '../../reports/report-render.js'
import type { Reports } from '../../reports/reports.js'
import type { TesseraApp } from '../app-types.js'
import { bearerSecurity } from '../auth/auth-hook.js'
import { problemResponses } from '../schemas.js'

const FormatQuery = Type.Object(
  { format: Type.Optional(Type.Enum([...reportFormats], { type: 'string', default: 'json' })) },
  { additionalProperties: false },
)

const produces = (description: string) => ({
  description,
  content: {
    'application/json': { schema: { type: 'object' } },
    'text/csv': { schema: { type: 'string' } },
    'text/html': { schema: { type: 'string' } },
  },
})

/** Owner's view and compliance summary as JSON, CSV or a printable HTML page (docs/reports.md). */
export function registerReportRoutes(app: TesseraApp, deps: { reports: Reports }): void {
  app.get(
    '/v1/reports/owner/:owner',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['reports'],
        summary: 'Everything a person or team owns, and what to fix first',
        security: bearerSecurity,
        params: Type.Object({ owner: Type.String({ minLength: 1, maxLength: 1024 }) }),
        querystring: FormatQuery,
        response: { 200: produces('the report'), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      const format: ReportFormat = req.query.format ?? 'json'
      const body = renderOwnerReport(await deps.reports.owner(req.params.owner), format)
      return reply.type(reportContentType[format]).send(body)
    },
  )
  app.get(
    '/v1/reports/compliance',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['reports'],
        summary: 'Compliance summary: kinds, owner coverage, key age, rotation, open findings',
        security: bearerSecurity,
        querystring: FormatQuery,
        response: { 200: produces('the summary'), ...problemResponses(400, 401, 403) },
      },
    },
    async (req, reply) => {
      const format: ReportFormat = req.query.format ?? 'json'
      const body = renderCompliance(await deps.reports.compliance(), format)
      return reply.type(reportContentType[format]).send(body)
    },
  )
}
