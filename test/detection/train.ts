import type { DetectionEvent } from '../../src/detection/index.js'

export const td = 'spiffe://example.org/ns/prod'
export const start = Date.parse('2026-11-02T00:00:00Z')

/**
 * Four days of routine: three reporting bots reading the reports database from their nodes in
 * working hours, three web replicas serving the API and reading the app database around the clock.
 */
export function routine(days = 4): DetectionEvent[] {
  const out: DetectionEvent[] = []
  for (let h = 0; h < days * 24; h++) {
    const hod = h % 24
    for (let r = 1; r <= 3; r++) {
      for (let i = 0; i < 6; i++) {
        const at = start + h * 3_600_000 + i * 600_000 + r * 1000
        out.push({
          identity: `${td}/web/web-${r}`,
          action: i % 2 ? 'http:handle' : 'db:select',
          resource: i % 2 ? 'svc/api' : 'db-01/app',
          at,
          node: `web-0${r}`,
          address: `10.1.0.${r}`,
        })
        if (hod >= 8 && hod < 18) {
          out.push({
            identity: `${td}/reporting/report-bot-${r}`,
            action: 'db:select',
            resource: 'db-01/reports',
            at: at + 500,
            node: `worker-${r}`,
            address: `10.2.0.${r}`,
          })
        }
      }
    }
  }
  return out
}
