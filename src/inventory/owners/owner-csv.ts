import { TesseraError } from '../../errors.js'
import { personRef, slugify, type OwnerRecord } from './owner-records.js'

/**
 * People and teams from CSV (RFC 4180: quoted fields, doubled quotes, CRLF or LF line ends, an
 * optional UTF-8 BOM). The first row names the columns; order is free, names are case-insensitive.
 *
 * | column | |
 * |---|---|
 * | `type` | `person` or `team` (required) |
 * | `name` | display name (required) |
 * | `ref` | owner ref; default: a person's email, a team's name as a slug |
 * | `email` | |
 * | `status` | `active` (default), `departed` or `suspended` |
 * | `team` | a person's teams, `;`-separated team refs (the first is the primary team) |
 * | `github` | GitHub login or team slug, matched against CODEOWNERS |
 * | `cost_center`, `department`, `external_id` | kept as attributes |
 */
export const ownerCsvColumns = [
  'type',
  'name',
  'ref',
  'email',
  'status',
  'team',
  'github',
  'cost_center',
  'department',
  'external_id',
] as const

export const maxCsvField = 1024
export const maxCsvRows = 200_000

function csvError(line: number, problem: string, column?: string): never {
  throw new TesseraError('TSR_VALIDATION', `CSV line ${line}: ${problem}`, {
    details: { line, ...(column !== undefined ? { column } : {}) },
  })
}

/** Splits CSV text into records of fields, each with the line it starts on. */
export function parseCsvRecords(text: string): Array<{ line: number; fields: string[] }> {
  const s = text.startsWith('\ufeff') ? text.slice(1) : text
  const records: Array<{ line: number; fields: string[] }> = []
  let fields: string[] = []
  let field = ''
  let line = 1
  let recordLine = 1
  let i = 0
  let quoted = false
  let wasQuoted = false
  const endField = () => {
    if (field.length > maxCsvField) csvError(recordLine, `a field is longer than ${maxCsvField}`)
    fields.push(field)
    field = ''
    wasQuoted = false
  }
  const endRecord = () => {
    endField()
    // A blank line is no record.
    if (!(fields.length === 1 && fields[0] === '')) records.push({ line: recordLine, fields })
    if (records.length > maxCsvRows) csvError(recordLine, `more than ${maxCsvRows} rows`)
    fields = []
  }
  while (i < s.length) {
    const c = s[i]!
    if (quoted) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"'
          i += 2
          continue
        }
        quoted = false
        i++
        continue
      }
      if (c === '\n') line++
      field += c
      i++
      continue
    }
    if (c === '"') {
      if (field !== '' || wasQuoted) csvError(line, 'a quote inside an unquoted field')
      quoted = true
      wasQuoted = true
      i++
    } else if (c === ',') {
      endField()
      i++
    } else if (c === '\r' || c === '\n') {
      endRecord()
      i += c === '\r' && s[i + 1] === '\n' ? 2 : 1
      line++
      recordLine = line
    } else {
      if (wasQuoted) csvError(line, 'text after a closing quote')
      field += c
      i++
    }
  }
  if (quoted) csvError(recordLine, 'a quoted field is not closed')
  if (field !== '' || fields.length > 0 || wasQuoted) endRecord()
  return records
}

const statuses = new Set(['active', 'departed', 'suspended'])

/** Reads an owners CSV into records; every problem names its line. */
export function parseOwnerCsv(text: string): OwnerRecord[] {
  const records = parseCsvRecords(text)
  const header = records.shift()
  if (!header) csvError(1, 'the file is empty; the first line names the columns')
  const names = header.fields.map((f) => f.trim().toLowerCase().replace(/-/g, '_'))
  const known = new Set<string>(ownerCsvColumns)
  names.forEach((n) => {
    if (!known.has(n)) csvError(header.line, `unknown column "${n}"`, n)
  })
  if (new Set(names).size !== names.length) csvError(header.line, 'a column is named twice')
  for (const required of ['type', 'name']) {
    if (!names.includes(required)) csvError(header.line, `the "${required}" column is missing`)
  }
  const out: OwnerRecord[] = []
  const seen = new Set<string>()
  for (const { line, fields } of records) {
    if (fields.length !== names.length) {
      csvError(line, `${fields.length} fields where the header has ${names.length}`)
    }
    const row: Record<string, string | undefined> = {}
    names.forEach((n, i) => {
      const v = fields[i]!.trim()
      // eslint-disable-next-line no-control-regex -- refusing control characters is the point
      if (/[\u0000-\u001f\u007f]/.test(v)) csvError(line, 'control characters in a field', n)
      row[n] = v === '' ? undefined : v
    })
    const type = row.type
    if (type !== 'person' && type !== 'team') csvError(line, 'type must be person or team', 'type')
    const name = row.name ?? csvError(line, 'name is required', 'name')
    const status = row.status ?? 'active'
    if (!statuses.has(status)) {
      csvError(line, 'status must be active, departed or suspended', 'status')
    }
    const email = row.email?.toLowerCase()
    if (email !== undefined && !/^[^\s@]+@[^\s@]+$/.test(email)) {
      csvError(line, 'email is not an email address', 'email')
    }
    let ref = row.ref
    if (ref === undefined) {
      if (type === 'person') {
        if (email === undefined) csvError(line, 'a person needs a ref or an email', 'ref')
        ref = personRef(email, email)
      } else {
        ref = slugify(name)
        if (ref === '') csvError(line, 'a team needs a ref, or a name with letters', 'ref')
      }
    }
    if (seen.has(ref)) csvError(line, `ref ${ref} appears twice`, 'ref')
    seen.add(ref)
    const record: OwnerRecord = {
      ref,
      ownerType: type,
      name,
      status: status as OwnerRecord['status'],
    }
    if (email !== undefined) record.email = email
    if (row.team !== undefined) {
      const teams = row.team
        .split(';')
        .map((t) => t.trim())
        .filter((t) => t !== '')
      if (teams.length > 0) {
        record.teams = [...new Set(teams)]
        record.team = record.teams[0]!
      }
    }
    if (row.github !== undefined) record.github = row.github.replace(/^@/, '')
    if (row.cost_center !== undefined) record.costCenter = row.cost_center
    if (row.department !== undefined) record.department = row.department
    if (row.external_id !== undefined) record.externalId = row.external_id
    out.push(record)
  }
  return out
}
