import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isTesseraError } from '../errors.js'
import {
  formatRelative,
  parseDurationMs,
  parseDurationSeconds,
  parseInstant,
  parseTimeOption,
} from './time.js'

const now = new Date('2026-06-15T12:00:00Z')

describe('parseDurationMs', () => {
  it('reads single and combined units', () => {
    assert.equal(parseDurationMs('90d'), 90 * 86_400_000)
    assert.equal(parseDurationMs('12h'), 12 * 3_600_000)
    assert.equal(parseDurationMs('30m'), 30 * 60_000)
    assert.equal(parseDurationMs('45s'), 45_000)
    assert.equal(parseDurationMs('500ms'), 500)
    assert.equal(parseDurationMs('2w'), 14 * 86_400_000)
    assert.equal(parseDurationMs('1d12h'), 36 * 3_600_000)
  })
  it('rejects anything else', () => {
    for (const bad of [
      '',
      'd',
      '10',
      '-5d',
      '1.5d',
      '10y',
      '5 d',
      'P1D',
      '1d-2h',
      '99999999999999999999d',
    ]) {
      assert.equal(parseDurationMs(bad), undefined, bad)
    }
  })
})

describe('parseInstant', () => {
  it('reads dates as UTC midnight and date-times with a zone', () => {
    assert.equal(parseInstant('2026-03-01')?.toISOString(), '2026-03-01T00:00:00.000Z')
    assert.equal(parseInstant('2026-03-01T12:30:00Z')?.toISOString(), '2026-03-01T12:30:00.000Z')
    assert.equal(
      parseInstant('2026-03-01T12:30:00.123Z')?.toISOString(),
      '2026-03-01T12:30:00.123Z',
    )
    assert.equal(
      parseInstant('2026-03-01T12:30:00+02:00')?.toISOString(),
      '2026-03-01T10:30:00.000Z',
    )
    assert.equal(parseInstant('2026-03-01T12:30Z')?.toISOString(), '2026-03-01T12:30:00.000Z')
  })
  it('refuses zone-less times, impossible dates and other text', () => {
    for (const bad of [
      '2026-03-01T12:30:00',
      '2026-02-30',
      '2026-13-01',
      '2026-02-31T00:00:00Z',
      'yesterday',
      '03/01/2026',
      '2026-3-1',
    ]) {
      assert.equal(parseInstant(bad), undefined, bad)
    }
  })
})

describe('parseTimeOption', () => {
  it('takes durations into the past or the future as told', () => {
    assert.equal(
      parseTimeOption('90d', { direction: 'past', now, option: '--unused-since' }).toISOString(),
      '2026-03-17T12:00:00.000Z',
    )
    assert.equal(
      parseTimeOption('30d', {
        direction: 'future',
        now,
        option: '--expires-before',
      }).toISOString(),
      '2026-07-15T12:00:00.000Z',
    )
  })
  it('accepts now and instants unchanged', () => {
    assert.equal(
      parseTimeOption('now', { direction: 'past', now, option: '--at' }).getTime(),
      now.getTime(),
    )
    assert.equal(
      parseTimeOption('2026-01-01', { direction: 'future', now, option: '--at' }).toISOString(),
      '2026-01-01T00:00:00.000Z',
    )
  })
  it('names the option in a TSR_VALIDATION error', () => {
    assert.throws(
      () => parseTimeOption('last tuesday', { direction: 'past', now, option: '--at' }),
      (err) => isTesseraError(err, 'TSR_VALIDATION') && err.message.startsWith('--at: '),
    )
  })
})

describe('parseDurationSeconds', () => {
  it('converts and enforces at least a second', () => {
    assert.equal(parseDurationSeconds('1d', '--ttl'), 86_400)
    assert.throws(
      () => parseDurationSeconds('500ms', '--ttl'),
      (e) => isTesseraError(e, 'TSR_VALIDATION'),
    )
    assert.throws(() => parseDurationSeconds('soon', '--ttl'), /--ttl/)
  })
})

describe('formatRelative', () => {
  it('says how long ago or how far ahead', () => {
    assert.equal(formatRelative('2026-06-12T12:00:00Z', now), '3d ago')
    assert.equal(formatRelative('2026-06-15T17:00:00Z', now), 'in 5h')
    assert.equal(formatRelative('2026-06-15T11:58:00Z', now), '2m ago')
    assert.equal(formatRelative(null, now), '-')
  })
})
