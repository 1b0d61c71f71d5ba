import {
  instant,
  isObj,
  problemSink,
  recordProblem,
  str,
  type UsageParseResult,
  type UsageRecord,
} from './usage-record.js'

/**
 * AWS CloudTrail log files (`{"Records":[…]}`, as delivered to S3, gunzipped). Each successful call
 * becomes one record per resource it names: identity = the IAM principal ARN (an assumed-role
 * session is attributed to its role), action = `<service>:<eventName>` as IAM spells actions
 * (`s3:GetObject`), resource = the ARN in `resources`, else the S3 bucket from the request, else
 * `aws-service:<eventSource>`. Failed calls (`errorCode`) are attempts, not usage, and are skipped.
 */
export function parseCloudTrail(text: string): UsageParseResult {
  const result: UsageParseResult = { records: [], problems: [], read: 0, ignored: 0 }
  const problem = problemSink(result)
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    problem(0, `not JSON: ${(err as Error).message}`)
    return result
  }
  const records = isObj(doc) && Array.isArray(doc.Records) ? doc.Records : undefined
  if (!records) {
    problem(0, 'not a CloudTrail log: expected {"Records": [...]}')
    return result
  }
  records.forEach((rec: unknown, i) => {
    result.read++
    const n = i + 1
    if (!isObj(rec)) return problem(n, 'record is not an object')
    if (str(rec.errorCode) !== undefined) {
      result.ignored++
      return
    }
    const who = isObj(rec.userIdentity) ? rec.userIdentity : undefined
    const identity = who ? principalOf(who) : undefined
    if (identity === undefined) {
      // Calls AWS services make on their own behalf name no principal of ours.
      if (who && str(who.type) === 'AWSService') {
        result.ignored++
        return
      }
      return problem(n, 'userIdentity has no ARN')
    }
    const source = str(rec.eventSource)
    const name = str(rec.eventName)
    if (source === undefined || name === undefined) {
      return problem(n, 'eventSource or eventName is missing')
    }
    const service = source.replace(/\.amazonaws\.com$/, '')
    const at = instant(rec.eventTime)
    const base: Omit<UsageRecord, 'resource'> = {
      identity,
      action: `${service}:${name}`,
      at: at ?? new Date(NaN),
      ...(str(who?.accessKeyId) ? { accessKeyId: str(who?.accessKeyId)! } : {}),
      ...(str(rec.sourceIPAddress) ? { sourceAddress: str(rec.sourceIPAddress)! } : {}),
    }
    const resources = resourcesOf(rec, service, source)
    for (const resource of resources) {
      const r = { ...base, resource }
      const why = recordProblem(r)
      if (why) return problem(n, why)
    }
    for (const resource of resources) result.records.push({ ...base, resource })
  })
  return result
}

/** The IAM principal: a role for an assumed-role session, the user or root otherwise. */
function principalOf(who: Record<string, unknown>): string | undefined {
  const ctx = isObj(who.sessionContext) ? who.sessionContext : undefined
  const issuer = ctx && isObj(ctx.sessionIssuer) ? str(ctx.sessionIssuer.arn) : undefined
  if (str(who.type) === 'AssumedRole' && issuer) return issuer
  const arn = str(who.arn)
  if (arn === undefined) return undefined
  // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION → arn:aws:iam::ACCOUNT:role/ROLE
  const m = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/.+$/.exec(arn)
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : arn
}

function resourcesOf(rec: Record<string, unknown>, service: string, source: string): string[] {
  const listed = Array.isArray(rec.resources)
    ? rec.resources.flatMap((r: unknown) => (isObj(r) && str(r.ARN) ? [str(r.ARN)!] : []))
    : []
  if (listed.length > 0) return [...new Set(listed)]
  const params = isObj(rec.requestParameters) ? rec.requestParameters : undefined
  const bucket = params ? str(params.bucketName) : undefined
  if (service === 's3' && bucket) return [`arn:aws:s3:::${bucket}`]
  return [`aws-service:${source}`]
}
