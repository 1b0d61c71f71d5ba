import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { ChainedEvent } from '../../src/audit/chain.js'
import { escapeParamValue, toJsonLine, toSyslog } from '../../src/audit/formats.js'

const event: ChainedEvent = {
  seq: 42,
  at: new Date('2026-11-23T10:04:01.250Z'),
  type: 'authz.decision',
  actor: 'spiffe://example.org/reporting-bot',
  subject: 'spiffe://example.org/reporting-bot',
  resource: 'web-01',
  action: 'ssh:connect',
  decision: 'deny',
  requestId: 'req-1',
  data: { note: 'line\nbreak "quoted" ]bracket\\' },
  prevHash: 'a'.repeat(64),
  hash: 'b'.repeat(64),
}

// RFC 5424 §6 ABNF, for one message with one SD-ELEMENT and a MSG.
const header = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) /
const sdParam = /([^= \]"]{1,32})="((?:[^"\\\]]|\\["\\\]]|\\[^"\\\]])*)"/g

function parseSyslog(line: string) {
  assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), 'one line')
  const m = header.exec(line)
  assert.ok(m, `header of ${line}`)
  const rest = line.slice(m[0].length, -1)
  assert.ok(rest.startsWith('['))
  // Find the end of the SD-ELEMENT: the first `]` not escaped.
  let i = 1
  for (; i < rest.length; i++) {
    if (rest[i] === '\\') i++
    else if (rest[i] === ']') break
  }
  const element = rest.slice(1, i)
  const sdId = element.split(' ')[0]!
  const params: Record<string, string> = {}
  for (const p of element.slice(sdId.length).matchAll(sdParam)) {
    params[p[1]!] = p[2]!.replace(/\\(["\\\]])/g, '$1')
  }
  return {
    pri: Number(m[1]),
    timestamp: m[2]!,
    hostname: m[3]!,
    app: m[4]!,
    procId: m[5]!,
    msgId: m[6]!,
    sdId,
    params,
    msg: rest.slice(i + 2),
  }
}

describe('export formats', () => {
  it('JSON Lines: one event per line, every field', () => {
    const line = toJsonLine(event)
    assert.ok(line.endsWith('\n'))
    assert.equal(line.indexOf('\n'), line.length - 1)
    const back = JSON.parse(line)
    assert.equal(back.seq, 42)
    assert.equal(back.at, '2026-11-23T10:04:01.250Z')
    assert.equal(back.data.note, event.data!.note)
    assert.equal(back.hash, event.hash)
  })

  it('syslog RFC 5424: header, structured data and message', () => {
    const line = toSyslog(event, { hostname: 'cp-1' })
    const s = parseSyslog(line)
    assert.equal(s.pri, 10 * 8 + 4, 'authpriv.warning for a deny')
    assert.equal(s.timestamp, '2026-11-23T10:04:01.250Z')
    assert.equal(s.hostname, 'cp-1')
    assert.equal(s.app, 'tessera')
    assert.equal(s.procId, '-')
    assert.equal(s.msgId, 'authz.decision')
    assert.equal(s.sdId, 'tessera@32473')
    assert.equal(s.params.seq, '42')
    assert.equal(s.params.subject, 'spiffe://example.org/reporting-bot')
    assert.equal(s.params.hash, 'b'.repeat(64))
    assert.deepEqual(JSON.parse(s.msg), event.data)
    const allow = parseSyslog(toSyslog({ ...event, decision: 'allow' }))
    assert.equal(allow.pri, 85, 'authpriv.notice otherwise')
    assert.equal(allow.hostname, '-')
  })

  it('syslog escapes ", \\ and ] in parameter values, and keeps each message on one line', () => {
    const tricky = { ...event, actor: 'a"b\\c]d\ne' }
    const line = toSyslog(tricky)
    assert.ok(line.includes('actor="a\\"b\\\\c\\]d\\u000ae"'), line)
    assert.equal(parseSyslog(line).params.actor, 'a"b\\c]d\\u000ae')
  })

  it('syslog header fields are printable ASCII, bounded', () => {
    const line = toSyslog({ ...event, type: 'x'.repeat(60) }, { hostname: 'bad host\u00e9' })
    const s = parseSyslog(line)
    assert.equal(s.msgId.length, 32)
    assert.equal(s.hostname, 'badhost')
  })

  it('fuzz: any value survives escaping, parses back, and never breaks the line', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (actor, note) => {
        const line = toSyslog({ ...event, actor, data: { note } })
        const s = parseSyslog(line)
        const unescapedControl = actor.replace(
          // eslint-disable-next-line no-control-regex
          /[\u0000-\u001f\u007f]/g,
          (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'),
        )
        assert.equal(s.params.actor, unescapedControl)
        assert.equal(JSON.parse(s.msg).note, note)
        assert.equal(escapeParamValue(actor).match(/(?<!\\)(?:\\\\)*"/), null)
      }),
      { numRuns: 500 },
    )
  })
})
