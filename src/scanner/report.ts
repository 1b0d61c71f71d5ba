import type { Finding, RuleSpec, Severity } from './types.js'

/** The `--json` shape of one finding (a stable contract: see docs/scanner.md). */
export interface FindingJson {
  rule: string
  title: string
  severity: Severity
  credentialType: string
  file: string
  line: number
  column: number
  fingerprint: string
  preview: string
  commit: string | null
  author: string | null
  email: string | null
  date: string | null
  /** How many places hold the same secret (same fingerprint) in this scan. */
  locations: number
}

/** Findings grouped by fingerprint: one credential, several locations ("shared credentials"). */
export function groupByFingerprint(findings: readonly Finding[]): Map<string, Finding[]> {
  const groups = new Map<string, Finding[]>()
  for (const f of findings) {
    const g = groups.get(f.fingerprint)
    if (g) g.push(f)
    else groups.set(f.fingerprint, [f])
  }
  return groups
}

export function toJson(findings: readonly Finding[]): FindingJson[] {
  const groups = groupByFingerprint(findings)
  return findings.map((f) => ({
    rule: f.rule,
    title: f.title,
    severity: f.severity,
    credentialType: f.credentialType,
    file: f.file,
    line: f.line,
    column: f.column,
    fingerprint: f.fingerprint,
    preview: f.preview,
    commit: f.commit ?? null,
    author: f.author ?? null,
    email: f.email ?? null,
    date: f.date ?? null,
    locations: groups.get(f.fingerprint)?.length ?? 1,
  }))
}

const sarifLevel: Record<Severity, 'error' | 'warning' | 'note'> = {
  critical: 'error',
  high: 'error',
  medium: 'warning',
  low: 'note',
}

/** GitHub code scanning reads `security-severity` (0-10) to rank security alerts. */
const securitySeverity: Record<Severity, string> = {
  critical: '9.5',
  high: '8.0',
  medium: '5.5',
  low: '3.0',
}

/** Percent-encodes a relative path for a SARIF `artifactLocation.uri`. */
function uriOf(file: string): string {
  return file.split('/').map(encodeURIComponent).join('/')
}

/**
 * SARIF 2.1.0, as GitHub code scanning accepts it: every rule in `tool.driver.rules`, results
 * with `ruleId`, a relative `artifactLocation.uri` and a `region.startLine`, and the keyed
 * fingerprint in `partialFingerprints` so alerts follow a secret across scans.
 */
export function toSarif(
  findings: readonly Finding[],
  rules: readonly RuleSpec[],
  version: string,
): object {
  const index = new Map(rules.map((r, i) => [r.id, i]))
  const groups = groupByFingerprint(findings)
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'tessera',
            informationUri: 'https://github.com/tessera-dev/tessera',
            semanticVersion: version,
            version,
            rules: rules.map((r) => ({
              id: r.id,
              name: r.id
                .split('-')
                .map((w) => w[0]!.toUpperCase() + w.slice(1))
                .join(''),
              shortDescription: { text: r.title },
              fullDescription: { text: r.description ?? `${r.title} found in the source.` },
              help: {
                text: `Revoke and rotate the ${r.title.toLowerCase()}, then remove it from the code and its history.`,
              },
              defaultConfiguration: { level: sarifLevel[r.severity] },
              properties: {
                tags: ['security', 'secret', r.credentialType],
                'security-severity': securitySeverity[r.severity],
                precision: r.validator ? 'very-high' : 'high',
              },
            })),
          },
        },
        columnKind: 'unicodeCodePoints',
        results: findings.map((f) => {
          const shared = groups.get(f.fingerprint)?.length ?? 1
          return {
            ruleId: f.rule,
            ...(index.has(f.rule) ? { ruleIndex: index.get(f.rule) } : {}),
            level: sarifLevel[f.severity],
            message: {
              text:
                `${f.title} (${f.preview})` +
                (f.commit ? ` added in commit ${f.commit.slice(0, 12)}` : '') +
                (shared > 1 ? `; the same secret is in ${shared} places` : ''),
            },
            locations: [
              {
                physicalLocation: {
                  artifactLocation: { uri: uriOf(f.file), uriBaseId: '%SRCROOT%' },
                  region: { startLine: f.line, startColumn: f.column },
                },
              },
            ],
            partialFingerprints: { 'tesseraSecret/v1': f.fingerprint },
            properties: {
              preview: f.preview,
              ...(f.commit ? { commit: f.commit } : {}),
              ...(f.author ? { author: f.author } : {}),
              ...(f.date ? { date: f.date } : {}),
            },
          }
        }),
      },
    ],
  }
}
