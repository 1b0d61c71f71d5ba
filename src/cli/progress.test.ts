import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createDelayedProgress, formatBytes, type BarLike } from './progress.js'

function harness(enabled = true) {
  let t = 0
  const events: string[] = []
  let timer: (() => void) | undefined
  const bar: BarLike = {
    start: (total, value) => events.push(`start ${value}/${total}`),
    update: (value) => events.push(`update ${value}`),
    setTotal: (total) => events.push(`total ${total}`),
    stop: () => events.push('stop'),
  }
  const progress = createDelayedProgress({
    enabled,
    total: 100,
    delayMs: 2000,
    now: () => t,
    createBar: () => bar,
    schedule: (fn) => {
      timer = fn
      return { cancel: () => (timer = undefined) }
    },
  })
  return {
    progress,
    events,
    advance: (ms: number) => (t += ms),
    fireTimer: () => timer?.(),
  }
}

describe('createDelayedProgress', () => {
  it('draws nothing while the work is younger than the delay', () => {
    const h = harness()
    h.progress.update(10)
    h.advance(1999)
    h.progress.update(20)
    h.progress.stop()
    assert.deepEqual(h.events, [])
    assert.equal(h.progress.visible, false)
  })
  it('appears on the first update after the delay, with the latest value, then follows', () => {
    const h = harness()
    h.progress.update(10)
    h.advance(2500)
    h.progress.update(40)
    assert.equal(h.progress.visible, true)
    h.progress.update(60)
    h.progress.stop()
    h.progress.stop()
    assert.deepEqual(h.events, ['start 40/100', 'update 60', 'stop'])
  })
  it('appears from its timer when updates are slow', () => {
    const h = harness()
    h.progress.update(5)
    h.advance(2000)
    h.fireTimer()
    assert.deepEqual(h.events, ['start 5/100'])
  })
  it('never draws when disabled (no TTY, or --json)', () => {
    const h = harness(false)
    h.advance(10_000)
    h.fireTimer()
    h.progress.update(50)
    h.progress.stop()
    assert.deepEqual(h.events, [])
  })
  it('does not draw after stop, even if the timer fires', () => {
    const h = harness()
    h.progress.stop()
    h.advance(3000)
    h.fireTimer()
    h.progress.update(1)
    assert.deepEqual(h.events, [])
  })
})

describe('formatBytes', () => {
  it('uses binary units', () => {
    assert.equal(formatBytes(512), '512 B')
    assert.equal(formatBytes(1536), '1.5 KiB')
    assert.equal(formatBytes(5 * 1024 * 1024), '5.0 MiB')
  })
})
