import type { TesseraError } from '../../errors.js'
import { decodeUtf8, inputError } from './input-error.js'

export interface CsvRow {
  /** Line where the record starts (1-based; the header is line 1). */
  line: number
  record: Record<string, string>
}

export interface CsvResult {
  header: string[]
  rows: CsvRow[]
  /** One per bad record; the good records around it are kept. */
  errors: TesseraError[]
}

/**
 * RFC 4180 CSV with a header row: commas, double quotes with `""` escapes, CRLF or LF, quoted line
 * breaks. A record with the wrong number of fields (a truncated last line, say) is reported with its
 * line and skipped; an unterminated quote ends the parse there. Never throws on content, only on a
 * file that is not UTF-8 (a `TesseraError` too).
 */
export function parseCsv(input: Buffer | string, file: string): CsvResult {
  const text = typeof input === 'string' ? input.replace(/^\uFEFF/, '') : decodeUtf8(input, file)
  const errors: TesseraError[] = []
  const records: { line: number; fields: string[] }[] = []
  let i = 0
  let line = 1
  const n = text.length
  while (i < n) {
    const start = line
    const fields: string[] = []
    let field = ''
    let done = false
    let broken = false
    while (!done) {
      if (i < n && text[i] === '"') {
        const quoteLine = line
        i++
        for (;;) {
          if (i >= n) {
            errors.push(
              inputError(file, 'unterminated quoted field (file truncated?)', {
                line: quoteLine,
              }),
            )
            broken = true
            break
          }
          const c = text[i]!
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"'
              i += 2
              continue
            }
            i++
            break
          }
          if (c === '\n') line++
          field += c
          i++
        }
        if (broken) break
        if (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
          errors.push(inputError(file, 'text after a closing quote', { line }))
          // Skip to the end of the line and drop the record.
          while (i < n && text[i] !== '\n') i++
          if (i < n) i++
          line++
          broken = true
          break
        }
      } else {
        while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
          field += text[i]
          i++
        }
      }
      fields.push(field)
      field = ''
      if (i >= n) done = true
      else if (text[i] === ',') i++
      else {
        if (text[i] === '\r') i++
        if (text[i] === '\n') i++
        line++
        done = true
      }
    }
    if (broken) {
      if (i >= n) break
      continue
    }
    // A blank line (one empty field) is no record.
    if (fields.length === 1 && fields[0] === '') continue
    records.push({ line: start, fields })
  }
  const [head, ...body] = records
  if (!head) return { header: [], rows: [], errors }
  const header = head.fields.map((h) => h.trim())
  const rows: CsvRow[] = []
  for (const r of body) {
    if (r.fields.length !== header.length) {
      errors.push(
        inputError(
          file,
          `expected ${header.length} fields, got ${r.fields.length} (truncated or malformed record)`,
          { line: r.line },
        ),
      )
      continue
    }
    const record: Record<string, string> = Object.create(null) as Record<string, string>
    header.forEach((h, k) => (record[h] = r.fields[k]!))
    rows.push({ line: r.line, record })
  }
  return { header, rows, errors }
}
