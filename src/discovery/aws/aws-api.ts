import {
  GenerateCredentialReportCommand,
  GetAccountAuthorizationDetailsCommand,
  GetCredentialReportCommand,
  IAMClient,
  type GetAccountAuthorizationDetailsCommandOutput,
} from '@aws-sdk/client-iam'
import { TesseraError } from '../../errors.js'
import type { DiscoverContext } from '../connector.js'
import { maxPages } from '../live/pagination.js'

export interface AwsLiveConfig {
  /** IAM endpoint override (another partition, a VPC endpoint, a test server). */
  endpoint?: string
  region: string
  /** Static credentials from the environment; otherwise the SDK's default provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
  /** How long to wait for the credential report to be generated (default 60 s). */
  reportTimeoutMs: number
  /** Poll interval while the report is generated (default 2 s). */
  reportPollMs?: number
}

/**
 * Reads IAM through the AWS API: `GetAccountAuthorizationDetails` (all pages, merged into one
 * document as `aws iam get-account-authorization-details` prints it) and the credential report
 * (`GenerateCredentialReport` until COMPLETE, then `GetCredentialReport`). The caller needs
 * `iam:GetAccountAuthorizationDetails`, `iam:GenerateCredentialReport` and
 * `iam:GetCredentialReport` (the AWS managed `SecurityAudit` policy has them).
 */
export async function fetchAwsIam(
  ctx: DiscoverContext,
  config: AwsLiveConfig,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<{
  authorizationDetails: Record<string, unknown>
  credentialReport: Buffer | undefined
}> {
  const client = new IAMClient({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
    maxAttempts: 4,
  })
  try {
    const merged = {
      UserDetailList: [] as unknown[],
      GroupDetailList: [] as unknown[],
      RoleDetailList: [] as unknown[],
      Policies: [] as unknown[],
    }
    let marker: string | undefined
    for (let page = 1; page <= maxPages; page++) {
      ctx.progress?.(`AWS IAM: authorization details, page ${page}`)
      const out: GetAccountAuthorizationDetailsCommandOutput = await call(() =>
        client.send(
          new GetAccountAuthorizationDetailsCommand({
            ...(marker ? { Marker: marker } : {}),
            MaxItems: 1000,
          }),
        ),
      )
      merged.UserDetailList.push(...(out.UserDetailList ?? []))
      merged.GroupDetailList.push(...(out.GroupDetailList ?? []))
      merged.RoleDetailList.push(...(out.RoleDetailList ?? []))
      merged.Policies.push(...(out.Policies ?? []))
      marker = out.IsTruncated ? out.Marker : undefined
      if (!marker) break
    }
    // Dates become ISO strings, as the CLI prints them.
    const authorizationDetails = JSON.parse(JSON.stringify(merged)) as Record<string, unknown>

    let credentialReport: Buffer | undefined
    const deadline = Date.now() + config.reportTimeoutMs
    for (;;) {
      ctx.progress?.('AWS IAM: credential report')
      const state = await call(() => client.send(new GenerateCredentialReportCommand({})))
      if (state.State === 'COMPLETE') break
      if (Date.now() > deadline) {
        throw new TesseraError(
          'TSR_DISCOVERY_SOURCE',
          `AWS IAM: the credential report was not ready within ${config.reportTimeoutMs} ms (state ${state.State ?? 'unknown'})`,
        )
      }
      await sleep(config.reportPollMs ?? 2000)
    }
    const report = await call(() => client.send(new GetCredentialReportCommand({})))
    if (report.Content) credentialReport = Buffer.from(report.Content)
    return { authorizationDetails, credentialReport }
  } finally {
    client.destroy()
  }
}

/** SDK errors become TSR_DISCOVERY_SOURCE with AWS's code and message (which never hold secrets). */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof TesseraError) throw err
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } }
    const status = e.$metadata?.httpStatusCode
    throw new TesseraError(
      'TSR_DISCOVERY_SOURCE',
      `AWS IAM: ${e.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${(e.message ?? String(err)).slice(0, 300)}`,
      { cause: err },
    )
  }
}
