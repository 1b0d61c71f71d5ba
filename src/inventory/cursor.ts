import { TesseraError } from '../errors.js'
import { isUuid } from './ids.js'

/** The keyset position of a page: the last (name, id) it returned, as opaque base64url. */
export function encodeCursor(name: string, id: string): string {
  return Buffer.from(JSON.stringify([name, id]), 'utf8').toString('base64url')
}

export function decodeCursor(cursor: string): { name: string; id: string } {
  const bad = () =>
    new TesseraError('TSR_VALIDATION', 'invalid cursor', { details: { field: 'cursor' } })
  if (typeof cursor !== 'string' || !/^[A-Za-z0-9_-]{1,4096}$/.test(cursor)) throw bad()
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw bad()
  }
  if (
    !Array.isArray(value) ||
    value.length !== 2 ||
    typeof value[0] !== 'string' ||
    typeof value[1] !== 'string' ||
    !isUuid(value[1])
  ) {
    throw bad()
  }
  return { name: value[0], id: value[1] }
}
