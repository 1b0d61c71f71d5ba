/**
 * IAM policy documents: the statements of identity policies (grants) and trust policies
 * (`can_assume`). The API returns documents URL-encoded; the AWS CLI decodes them to objects.
 */
export interface Statement {
  effect: 'Allow' | 'Deny'
  actions: string[]
  /** True when the statement lists `NotAction` (everything except `actions`). */
  notAction: boolean
  resources: string[]
  notResource: boolean
  principals: Principal[]
  conditional: boolean
  condition?: Record<string, unknown>
}

export type Principal =
  | { type: 'AWS'; value: string }
  | { type: 'Service'; value: string }
  | { type: 'Federated'; value: string }
  | { type: 'CanonicalUser'; value: string }
  | { type: 'Any' }

/** A document as found in the export, or a reason it is not one. */
export function decodePolicyDocument(
  doc: unknown,
): { ok: true; statements: Statement[] } | { ok: false; reason: string } {
  let value = doc
  if (typeof value === 'string') {
    const text = value
    try {
      value = JSON.parse(text) as unknown
    } catch {
      try {
        value = JSON.parse(decodeURIComponent(text.replace(/\+/g, '%20'))) as unknown
      } catch {
        return { ok: false, reason: 'policy document is neither JSON nor URL-encoded JSON' }
      }
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'policy document is not an object' }
  }
  const raw = (value as { Statement?: unknown }).Statement
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]
  const statements: Statement[] = []
  for (const s of list) {
    if (typeof s !== 'object' || s === null)
      return { ok: false, reason: 'statement is not an object' }
    const st = s as Record<string, unknown>
    const effect = st.Effect
    if (effect !== 'Allow' && effect !== 'Deny') {
      return { ok: false, reason: 'statement Effect must be Allow or Deny' }
    }
    const condition =
      typeof st.Condition === 'object' && st.Condition !== null
        ? (st.Condition as Record<string, unknown>)
        : undefined
    statements.push({
      effect,
      actions: strings(st.Action ?? st.NotAction),
      notAction: st.Action === undefined && st.NotAction !== undefined,
      resources: strings(st.Resource ?? st.NotResource),
      notResource: st.Resource === undefined && st.NotResource !== undefined,
      principals: principals(st.Principal ?? st.NotPrincipal),
      conditional: condition !== undefined,
      ...(condition ? { condition } : {}),
    })
  }
  return { ok: true, statements }
}

function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v]
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string')
  return []
}

function principals(v: unknown): Principal[] {
  if (v === '*') return [{ type: 'Any' }]
  if (typeof v !== 'object' || v === null) return []
  const out: Principal[] = []
  for (const [type, values] of Object.entries(v as Record<string, unknown>)) {
    for (const value of strings(values)) {
      if (type === 'AWS' && value === '*') out.push({ type: 'Any' })
      else if (
        type === 'AWS' ||
        type === 'Service' ||
        type === 'Federated' ||
        type === 'CanonicalUser'
      ) {
        out.push({ type, value })
      }
    }
  }
  return out
}

/** An AWS principal as an identity ref: a bare account id becomes the account's root ARN. */
export function awsPrincipalRef(value: string): string {
  if (/^\d{12}$/.test(value)) return `arn:aws:iam::${value}:root`
  return value
}

/** `arn:aws:s3:::bucket/*` → `{ service: 's3', name: 'bucket/*' }`. */
export function parseArn(
  arn: string,
):
  | { partition: string; service: string; region: string; account: string; resource: string }
  | undefined {
  const m = /^arn:([^:]+):([^:]+):([^:]*):([^:]*):(.+)$/.exec(arn)
  if (!m) return undefined
  return { partition: m[1]!, service: m[2]!, region: m[3]!, account: m[4]!, resource: m[5]! }
}
