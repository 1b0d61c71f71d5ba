import type { ComplianceReport, OwnerReport } from './reports.js'

/**
 * Reports as CSV (RFC 4180; a cell starting with a formula trigger gets a leading `'`, so a name
 * like `=HYPERLINK(…)` from a connector never becomes a formula) and as one printable,
 * self-contained HTML page (inline CSS, no script, every value escaped).
 */
export const reportFormats = ['json', 'csv', 'html'] as const
export type ReportFormat = (typeof reportFormats)[number]

const formulaTrigger = /^[=+\-@\t\r]/

export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return ''
  let text = typeof value === 'object' ? JSON.stringify(value) : String(value)
  if (formulaTrigger.test(text)) text = `'${text}`
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

const row = (values: readonly unknown[]) => values.map(csvCell).join(',') + '\r\n'

export function escapeHtml(value: unknown): string {
  const text =
    value === null || value === undefined
      ? ''
      : typeof value === 'object'
        ? JSON.stringify(value)
        : String(value)
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  )
}

/** One row per open finding (most urgent first), then one per owned identity with no finding. */
export function ownerReportCsv(r: OwnerReport): string {
  let out = row([
    'identity',
    'kind',
    'source',
    'owner',
    'via',
    'confidence',
    'credentials',
    'risk',
    'severity',
    'rule',
    'subject',
    'first_seen',
  ])
  const byRef = new Map(r.identities.map((i) => [i.ref, i]))
  for (const f of r.fixFirst) {
    const i = byRef.get(f.identity)!
    out += row([
      i.ref,
      i.kind,
      i.source,
      i.owner,
      i.via,
      i.confidence,
      i.credentials.length,
      i.risk,
      f.severity,
      f.rule,
      f.subjectRef,
      f.firstSeenAt,
    ])
  }
  for (const i of r.identities) {
    if (i.findings.length === 0)
      out += row([
        i.ref,
        i.kind,
        i.source,
        i.owner,
        i.via,
        i.confidence,
        i.credentials.length,
        0,
        '',
        '',
        '',
        '',
      ])
  }
  return out
}

/** `section,key,value` rows. */
export function complianceCsv(r: ComplianceReport): string {
  let out = row(['section', 'key', 'value'])
  out += row(['identities', 'total', r.identities.total])
  for (const [k, v] of Object.entries(r.identities.byKind)) out += row(['identities.byKind', k, v])
  for (const [k, v] of Object.entries(r.identities.bySource))
    out += row(['identities.bySource', k, v])
  for (const [k, v] of Object.entries(r.ownerCoverage)) out += row(['ownerCoverage', k, v])
  for (const b of r.keyAge.buckets) out += row(['keyAge', b.bucket, b.count])
  for (const [k, v] of Object.entries(r.rotation)) out += row(['rotation', k, v])
  for (const [k, v] of Object.entries(r.findings.bySeverity))
    out += row(['findings.bySeverity', k, v])
  for (const [k, v] of Object.entries(r.findings.byRule)) out += row(['findings.byRule', k, v])
  out += row(['findings', 'open', r.findings.open])
  out += row(['findings', 'accepted', r.findings.accepted])
  return out
}

const style = `
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#111}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right}.sev-critical{color:#8b0000;font-weight:bold}.sev-high{color:#c00}
.sev-medium{color:#b36b00}.meta{color:#555}code{font-size:12px}
@media print{body{margin:0}h2{break-after:avoid}tr{break-inside:avoid}}`

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>${style}</style></head><body>
${body}
</body></html>
`
}

function table(headers: string[], rows: unknown[][], numeric: number[] = []): string {
  const head = `<tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`
  const body = rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => `<td${numeric.includes(i) ? ' class="n"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`,
    )
    .join('\n')
  return `<table>${head}\n${body}</table>`
}

export function ownerReportHtml(r: OwnerReport): string {
  const o = r.owner
  const fix = r.fixFirst.length
    ? `<table><tr><th>severity</th><th>rule</th><th>identity</th><th>subject</th><th>since</th></tr>\n${r.fixFirst
        .map(
          (f) =>
            `<tr><td class="sev-${escapeHtml(f.severity)}">${escapeHtml(f.severity)}</td><td><code>${escapeHtml(f.rule)}</code></td><td>${escapeHtml(f.identity)}</td><td>${escapeHtml(f.subjectRef)}</td><td>${escapeHtml(f.firstSeenAt)}</td></tr>`,
        )
        .join('\n')}</table>`
    : '<p>No open findings.</p>'
  return page(
    `Tessera: what ${o.name} owns`,
    `<h1>Everything ${escapeHtml(o.name)} owns</h1>
<p class="meta">${escapeHtml(o.ref)} · ${escapeHtml(o.ownerType)} · ${escapeHtml(o.status)}${o.teams.length ? ` · teams ${escapeHtml(o.teams.join(', '))}` : ''} · generated ${escapeHtml(r.generatedAt)}</p>
<p>${r.totals.identities} identities, ${r.totals.credentials} credentials, ${r.totals.openFindings} open findings (${
      Object.entries(r.totals.bySeverity)
        .filter(([, n]) => n > 0)
        .map(([s, n]) => `${n} ${escapeHtml(s)}`)
        .join(', ') || 'none'
    }).</p>
<h2>Fix first</h2>
${fix}
<h2>Identities</h2>
${table(
  ['identity', 'kind', 'source', 'owner', 'why', 'confidence', 'credentials', 'risk'],
  r.identities.map((i) => [
    i.ref,
    i.kind,
    i.source,
    i.owner,
    i.via,
    i.confidence,
    i.credentials.length,
    i.risk,
  ]),
  [5, 6, 7],
)}`,
  )
}

export function complianceHtml(r: ComplianceReport): string {
  return page(
    'Tessera compliance summary',
    `<h1>Compliance summary</h1>
<p class="meta">generated ${escapeHtml(r.generatedAt)}</p>
<h2>Identities by kind (${r.identities.total})</h2>
${table(['kind', 'count'], Object.entries(r.identities.byKind), [1])}
<h2>Owner coverage</h2>
${table(['owned', 'orphaned', 'of which owner departed', 'owner unknown', 'coverage %'], [[r.ownerCoverage.owned, r.ownerCoverage.orphaned, r.ownerCoverage.departedOwner, r.ownerCoverage.unknownOwner, r.ownerCoverage.percent]], [0, 1, 2, 3, 4])}
<h2>Static key age (${r.keyAge.staticCredentials})</h2>
${table(
  ['age', 'count'],
  r.keyAge.buckets.map((b) => [b.bucket, b.count]),
  [1],
)}
<h2>Rotation coverage</h2>
${table(['static credentials', 'ever rotated', 'rotated within 90 days', 'rotated %'], [[r.rotation.staticCredentials, r.rotation.everRotated, r.rotation.rotatedWithin90Days, r.rotation.percent]], [0, 1, 2, 3])}
<h2>Open findings by severity (${r.findings.open}; ${r.findings.accepted} accepted)</h2>
${table(['severity', 'count'], Object.entries(r.findings.bySeverity), [1])}
<h2>Open findings by rule</h2>
${table(['rule', 'count'], Object.entries(r.findings.byRule), [1])}`,
  )
}

export function renderOwnerReport(r: OwnerReport, format: ReportFormat): string {
  return format === 'csv'
    ? ownerReportCsv(r)
    : format === 'html'
      ? ownerReportHtml(r)
      : JSON.stringify(r) + '\n'
}

export function renderCompliance(r: ComplianceReport, format: ReportFormat): string {
  return format === 'csv'
    ? complianceCsv(r)
    : format === 'html'
      ? complianceHtml(r)
      : JSON.stringify(r) + '\n'
}

export const reportContentType: Record<ReportFormat, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  html: 'text/html; charset=utf-8',
}
