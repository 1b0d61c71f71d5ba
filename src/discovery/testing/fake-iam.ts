import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * The slice of the AWS IAM query API that discovery reads, on a loopback port: form-encoded
 * `Action=…` requests in, XML out, as the real endpoint answers. The SDK under test talks to it
 * unchanged (SigV4 signed; the signature is recorded, not checked).
 */
export interface FakeIam {
  url: string
  requests: { action: string; params: URLSearchParams; headers: IncomingHttpHeaders }[]
  close(): Promise<void>
}

export interface FakeIamData {
  /** The `get-account-authorization-details` document (policy documents as objects or URL-encoded). */
  authorizationDetails: Record<string, unknown[]>
  credentialReportCsv: string
  /** Items per page of GetAccountAuthorizationDetails, so Marker paging is exercised. */
  pageSize?: number
  /** GenerateCredentialReport answers STARTED this many times before COMPLETE. */
  reportDelayPolls?: number
  /** Answer every request with this IAM error instead. */
  error?: { status: number; code: string; message: string }
}

const xmlEscape = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** The query protocol's XML: lists as `<member>` elements, policy documents URL-encoded. */
function toXml(name: string, value: unknown): string {
  if (value === null || value === undefined) return ''
  if (Array.isArray(value))
    return `<${name}>${value.map((v) => toXml('member', v)).join('')}</${name}>`
  if (typeof value === 'object') {
    if (/Document$/.test(name))
      return `<${name}>${xmlEscape(encodeURIComponent(JSON.stringify(value)))}</${name}>`
    const inner = Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => toXml(k, v))
      .join('')
    return `<${name}>${inner}</${name}>`
  }
  return `<${name}>${xmlEscape(String(value))}</${name}>`
}

function envelope(action: string, result: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<${action}Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><${action}Result>${result}</${action}Result><ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata></${action}Response>`
}

export async function startFakeIam(data: FakeIamData): Promise<FakeIam> {
  const requests: FakeIam['requests'] = []
  // One flat list of (kind, item) so pages can cut across kinds, as the real API's do.
  const kinds = ['UserDetailList', 'GroupDetailList', 'RoleDetailList', 'Policies'] as const
  const all = kinds.flatMap((k) =>
    (data.authorizationDetails[k] ?? []).map((item) => ({ k, item })),
  )
  let polls = 0
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
      const action = params.get('Action') ?? ''
      requests.push({ action, params, headers: req.headers })
      const send = (status: number, body: string) => {
        res.writeHead(status, { 'content-type': 'text/xml' })
        res.end(body)
      }
      if (data.error) {
        return send(
          data.error.status,
          `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>${data.error.code}</Code><Message>${xmlEscape(data.error.message)}</Message></Error><RequestId>1</RequestId></ErrorResponse>`,
        )
      }
      if (action === 'GetAccountAuthorizationDetails') {
        const size = data.pageSize ?? 1000
        const start = Number(params.get('Marker') ?? 0)
        const page = all.slice(start, start + size)
        const truncated = start + size < all.length
        const lists = kinds
          .map((k) =>
            toXml(
              k,
              page.filter((p) => p.k === k).map((p) => p.item),
            ),
          )
          .join('')
        return send(
          200,
          envelope(
            action,
            `${lists}<IsTruncated>${truncated}</IsTruncated>${truncated ? `<Marker>${start + size}</Marker>` : ''}`,
          ),
        )
      }
      if (action === 'GenerateCredentialReport') {
        const done = polls++ >= (data.reportDelayPolls ?? 0)
        return send(
          200,
          envelope(
            action,
            `<State>${done ? 'COMPLETE' : 'STARTED'}</State><Description>report</Description>`,
          ),
        )
      }
      if (action === 'GetCredentialReport') {
        return send(
          200,
          envelope(
            action,
            `<Content>${Buffer.from(data.credentialReportCsv).toString('base64')}</Content><ReportFormat>text/csv</ReportFormat><GeneratedTime>2026-11-20T12:00:00Z</GeneratedTime>`,
          ),
        )
      }
      return send(
        400,
        `<ErrorResponse><Error><Code>InvalidAction</Code><Message>${xmlEscape(action)}</Message></Error></ErrorResponse>`,
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
