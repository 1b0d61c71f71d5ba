/**
 * Plain-text tables and cell hygiene for human output. Every cell passes through `cleanCell`:
 * names and refs come from connectors, and an identity named with terminal escape sequences must
 * not be able to rewrite the operator's screen.
 */

export interface Column<T> {
  header: string
  value: (row: T) => string | number | null | undefined
  /** Longer cells are cut with `…` (in the middle when `truncate` is `middle`). */
  maxWidth?: number
  truncate?: 'end' | 'middle'
  align?: 'left' | 'right'
}

// C0 and C1 control characters, DEL, and the bidi overrides that can disguise text.
// eslint-disable-next-line no-control-regex
const unsafeChars = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g

/** Replaces control characters with `?` so untrusted text is safe to print on a terminal. */
export function cleanCell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-'
  return String(value).replace(unsafeChars, '?')
}

/** Cuts `text` to `width` characters, marking the cut with `…`. */
export function truncate(text: string, width: number, where: 'end' | 'middle' = 'end'): string {
  const chars = [...text]
  if (chars.length <= width) return text
  if (width <= 1) return '…'.slice(0, width)
  if (where === 'end') return chars.slice(0, width - 1).join('') + '…'
  const head = Math.ceil((width - 1) / 2)
  const tail = width - 1 - head
  return chars.slice(0, head).join('') + '…' + (tail > 0 ? chars.slice(-tail).join('') : '')
}

/** Renders rows as aligned columns separated by two spaces, headers first; no trailing spaces. */
export function renderTable<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const cells = rows.map((row) =>
    columns.map((col) => {
      const text = cleanCell(col.value(row))
      return col.maxWidth === undefined ? text : truncate(text, col.maxWidth, col.truncate)
    }),
  )
  const widths = columns.map((col, i) =>
    Math.max([...col.header].length, ...cells.map((r) => [...r[i]!].length)),
  )
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => {
        const pad = ' '.repeat(widths[i]! - [...v].length)
        return columns[i]!.align === 'right' ? pad + v : v + pad
      })
      .join('  ')
      .trimEnd()
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n') + '\n'
}

/** Two-column `key  value` listing for detail views; rows with an undefined value are skipped. */
export function renderFields(fields: readonly [string, unknown][], indent = ''): string {
  const shown = fields.filter(([, v]) => v !== undefined)
  const width = Math.max(0, ...shown.map(([k]) => k.length))
  return shown.map(([k, v]) => `${indent}${k.padEnd(width)}  ${cleanCell(v)}\n`).join('')
}
