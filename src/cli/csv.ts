/**
 * RFC 4180 CSV for exports that land in spreadsheets. Values come from connectors (names, refs)
 * and so from whoever created the identity: a name like `=HYPERLINK(…)` must not become a formula
 * when an operator opens the file, so cells starting with a formula trigger get a leading `'`
 * (the OWASP CSV-injection guidance).
 */

const formulaTrigger = /^[=+\-@\t\r]/
const needsQuotes = /[",\r\n]|^\s|\s$/

export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return ''
  let text = value instanceof Date ? value.toISOString() : String(value)
  if (formulaTrigger.test(text)) text = `'${text}`
  return needsQuotes.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/** One CSV record with its CRLF terminator (RFC 4180). */
export function csvRow(values: readonly unknown[]): string {
  return values.map(csvCell).join(',') + '\r\n'
}
