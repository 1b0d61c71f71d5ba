import {
  instant,
  isObj,
  problemSink,
  recordProblem,
  str,
  type UsageParseResult,
} from './usage-record.js'

export interface K8sAuditOptions {
  /** The cluster name, as the Kubernetes connector names it (refs are `k8s:<cluster>:…`). */
  cluster: string
}

/**
 * The Kubernetes audit log (`audit.k8s.io/v1` Event objects, one JSON document per line, as the
 * log backend writes them). Only the `ResponseComplete` stage counts (an event appears once per
 * stage), and only successful requests (status < 400). Identity: a service account
 * `system:serviceaccount:NS:NAME` becomes `k8s:<cluster>:sa:NS/NAME` (the connector's ref for an
 * account without a known uid), any other user `k8s:<cluster>:user:<username>`. Resource:
 * `k8s://<cluster>/namespaces/NS/<resource>[.<group>][/<name>]`, as RBAC grants are named; action:
 * the verb.
 */
export function parseK8sAudit(text: string, options: K8sAuditOptions): UsageParseResult {
  const result: UsageParseResult = { records: [], problems: [], read: 0, ignored: 0 }
  const problem = problemSink(result)
  const cluster = options.cluster
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line.length === 0) continue
    result.read++
    const n = i + 1
    let ev: unknown
    try {
      ev = JSON.parse(line)
    } catch {
      problem(n, 'not JSON')
      continue
    }
    if (
      !isObj(ev) ||
      str(ev.kind) !== 'Event' ||
      !str(ev.apiVersion)?.startsWith('audit.k8s.io/')
    ) {
      problem(n, 'not an audit.k8s.io Event')
      continue
    }
    const stage = str(ev.stage)
    const status = isObj(ev.responseStatus) ? ev.responseStatus.code : undefined
    if (
      (stage !== undefined && stage !== 'ResponseComplete') ||
      (typeof status === 'number' && status >= 400)
    ) {
      result.ignored++
      continue
    }
    const user = isObj(ev.user) ? str(ev.user.username) : undefined
    const verb = str(ev.verb)
    if (user === undefined || verb === undefined) {
      problem(n, 'user.username or verb is missing')
      continue
    }
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user)
    const identity = sa ? `k8s:${cluster}:sa:${sa[1]}/${sa[2]}` : `k8s:${cluster}:user:${user}`
    const obj = isObj(ev.objectRef) ? ev.objectRef : undefined
    let resource: string
    if (obj && str(obj.resource)) {
      const group = str(obj.apiGroup)
      const sub = str(obj.subresource)
      const typed = `${str(obj.resource)}${sub ? '/' + sub : ''}${group ? '.' + group : ''}`
      const ns = str(obj.namespace)
      const name = str(obj.name)
      resource = `k8s://${cluster}${ns ? `/namespaces/${ns}` : ''}/${typed}${name ? '/' + name : ''}`
    } else {
      const uri = str(ev.requestURI)?.split('?')[0]
      resource = `k8s://${cluster}/nonresource${uri ?? '/'}`
    }
    const ips = Array.isArray(ev.sourceIPs) ? ev.sourceIPs : []
    const record = {
      identity,
      resource,
      action: verb,
      at: instant(ev.stageTimestamp) ?? instant(ev.requestReceivedTimestamp) ?? new Date(NaN),
      ...(str(ips[0]) ? { sourceAddress: str(ips[0])! } : {}),
    }
    const why = recordProblem(record)
    if (why) {
      problem(n, why)
      continue
    }
    result.records.push(record)
  }
  return result
}
