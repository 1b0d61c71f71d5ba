import { eventJson, type ChainedEvent } from './chain.js'

/** One event as a JSON Lines line (newline included). */
export function toJsonLine(e: ChainedEvent): string {
  return JSON.stringify(eventJson(e)) + '\n'
}

export interface SyslogOptions {
  /** HOSTNAME field (default `-`, the nil value). */
  hostname?: string
  /** APP-NAME (default `tessera`). */
  appName?: string
  /** Syslog facility number 0..23 (default 10, authpriv). */
  facility?: number
  /**
   * SD-ID of the structured data element: `name@PEN`. Default `tessera@32473` (32473 is the
   * enterprise number RFC 5612 reserves for documentation; use your own in production).
   */
  sdId?: string
}

const severity = { warning: 4, notice: 5 } as const

/**
 * One event as an RFC 5424 syslog message (newline-terminated, for a file or a TCP stream with
 * non-transparent framing): `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`. The event's
 * fields are SD-PARAMs of one SD-ELEMENT; MSG is the event data as JSON. Denied decisions and
 * detection events are `warning`, the rest `notice`.
 */
export function toSyslog(e: ChainedEvent, options: SyslogOptions = {}): string {
  const facility = options.facility ?? 10
  const sev =
    e.decision === 'deny' || e.type.startsWith('detection.') || e.type.startsWith('responder.')
      ? severity.warning
      : severity.notice
  const pri = facility * 8 + sev
  const hostname = headerField(options.hostname, 255)
  const appName = headerField(options.appName ?? 'tessera', 48)
  const msgId = headerField(e.type, 32)
  const sdId = options.sdId ?? 'tessera@32473'
  const params: [string, string | number | null | undefined][] = [
    ['seq', e.seq],
    ['type', e.type],
    ['actor', e.actor],
    ['subject', e.subject],
    ['resource', e.resource],
    ['action', e.action],
    ['decision', e.decision],
    ['requestId', e.requestId],
    ['prevHash', e.prevHash],
    ['hash', e.hash],
  ]
  let sd = '[' + sdId
  for (const [name, value] of params) {
    if (value === undefined || value === null) continue
    sd += ` ${name}="${escapeParamValue(String(value))}"`
  }
  sd += ']'
  // MSG: the data as JSON; JSON.stringify escapes every control character, so one line.
  const msg = JSON.stringify(e.data ?? {})
  return `<${pri}>1 ${e.at.toISOString()} ${hostname} ${appName} - ${msgId} ${sd} ${msg}\n`
}

/**
 * RFC 5424 §6.3.3: inside PARAM-VALUE, `"`, `\` and `]` MUST be escaped with a backslash. Control
 * characters are legal there but would break line framing, so they are written as `\uXXXX` (a
 * receiver keeps a backslash before any other character as is, so nothing is lost).
 */
export function escapeParamValue(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/["\\\]\u0000-\u001f\u007f]/g, (c) =>
    c === '"' || c === '\\' || c === ']'
      ? '\\' + c
      : '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'),
  )
}

/** HOSTNAME, APP-NAME, MSGID: printable US-ASCII without spaces, bounded, or `-` (nil). */
function headerField(value: string | undefined, max: number): string {
  if (value === undefined) return '-'
  const clean = value.replace(/[^\x21-\x7e]/g, '').slice(0, max)
  return clean === '' ? '-' : clean
}
