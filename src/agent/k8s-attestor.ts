import { readFile } from 'node:fs/promises'
import type { Selector } from '../spiffe/types.js'
import type { WorkloadPeer } from '../workload-api/backend.js'
import type { WorkloadAttestor } from './attestor.js'

/** What a process's cgroups say about its pod and container. */
export interface CgroupPodInfo {
  podUid?: string
  containerId?: string
}

const podUidRe =
  /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?(?:\/|$)/
const containerRe =
  /^(?:docker-|cri-containerd-|crio-|containerd-|cri-o-)?([0-9a-f]{64})(?:\.scope)?$/

/**
 * Pod UID and container id from /proc/PID/cgroup, for cgroup v1 (`N:controllers:/path` lines) and v2
 * (`0::/path`), with the cgroupfs (`/kubepods/burstable/pod<uid>/<id>`) and systemd
 * (`/kubepods.slice/…-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope`) drivers.
 * Untrusted text: anything that does not parse yields no pod.
 */
export function parseCgroupPodInfo(text: string): CgroupPodInfo {
  for (const line of text.split('\n')) {
    const first = line.indexOf(':')
    const second = first < 0 ? -1 : line.indexOf(':', first + 1)
    if (second < 0) continue
    const path = line.slice(second + 1).trim()
    if (!path.includes('kubepods')) continue
    const m = podUidRe.exec(path)
    if (m === null) continue
    const podUid = m[1]!.replaceAll('_', '-')
    const last = path.split('/').filter((s) => s !== '')
    const leaf = last[last.length - 1] ?? ''
    const c = containerRe.exec(leaf)
    return c === null ? { podUid } : { podUid, containerId: c[1]! }
  }
  return {}
}

export interface K8sAttestorDeps {
  /** GET of the kubelet's /pods (JSON text). Tests inject a sample; production uses the kubelet port. */
  fetchPods: () => Promise<string>
  procRoot?: string
  readText?: (path: string) => Promise<string>
  /** A just-started container may not be in the kubelet's list yet: retry this often. */
  retries?: number
  retryDelayMs?: number
  sleep?: (ms: number) => Promise<void>
}

type Json = Record<string, unknown>
const obj = (v: unknown): Json | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)
const arr = (v: unknown): Json[] =>
  Array.isArray(v) ? v.map(obj).filter((x): x is Json => x !== undefined) : []

/**
 * Selectors of one pod (and container, when found) from a kubelet PodList. The JSON is untrusted:
 * every field is type-checked; a malformed list yields undefined (not found).
 */
export function podSelectors(podsJson: string, info: CgroupPodInfo): Selector[] | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(podsJson)
  } catch {
    return undefined
  }
  for (const pod of arr(obj(parsed)?.items)) {
    const md = obj(pod.metadata)
    if (md === undefined || str(md.uid) === undefined || md.uid !== info.podUid) continue
    const spec = obj(pod.spec)
    const status = obj(pod.status)
    const out: Selector[] = []
    const add = (v: unknown, prefix: string): void => {
      const s = str(v)
      if (s !== undefined) out.push({ type: 'k8s', value: `${prefix}:${s}` })
    }
    add(md.namespace, 'ns')
    add(spec?.serviceAccountName, 'sa')
    add(md.name, 'pod-name')
    add(md.uid, 'pod-uid')
    add(spec?.nodeName, 'node-name')
    for (const [k, v] of Object.entries(obj(md.labels) ?? {})) {
      if (typeof v === 'string') out.push({ type: 'k8s', value: `pod-label:${k}:${v}` })
    }
    for (const o of arr(md.ownerReferences)) {
      const kind = str(o.kind)
      const name = str(o.name)
      if (kind !== undefined && name !== undefined) add(`${kind}:${name}`, 'pod-owner')
    }
    if (info.containerId !== undefined) {
      const statuses = [
        ...arr(status?.containerStatuses),
        ...arr(status?.initContainerStatuses),
        ...arr(status?.ephemeralContainerStatuses),
      ]
      const c = statuses.find((s) => str(s.containerID)?.endsWith(`://${info.containerId}`))
      if (c === undefined) return undefined // container not (yet) known: caller retries
      add(c.name, 'container-name')
      add(c.image, 'container-image')
      if (str(c.imageID) !== undefined && c.imageID !== c.image) add(c.imageID, 'container-image')
    }
    return out
  }
  return undefined
}

/**
 * The `k8s` workload attestor: resolves the caller's pod UID and container id from its cgroups, then
 * finds the pod in the kubelet's pod list. Selectors: `k8s:ns`, `k8s:sa`, `k8s:pod-name`,
 * `k8s:pod-uid`, `k8s:node-name`, `k8s:pod-label:K:V`, `k8s:pod-owner:KIND:NAME`,
 * `k8s:container-name`, `k8s:container-image`. A process outside any pod gets no selectors.
 */
export function createK8sAttestor(deps: K8sAttestorDeps): WorkloadAttestor {
  const proc = deps.procRoot ?? '/proc'
  const readText = deps.readText ?? ((p: string) => readFile(p, 'utf8'))
  const retries = deps.retries ?? 10
  const delay = deps.retryDelayMs ?? 500
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)))
  return {
    name: 'k8s',
    async attest(peer: WorkloadPeer): Promise<Selector[]> {
      let cgroup: string
      try {
        cgroup = await readText(`${proc}/${peer.pid}/cgroup`)
      } catch {
        return []
      }
      const info = parseCgroupPodInfo(cgroup)
      if (info.podUid === undefined) return []
      for (let attempt = 0; ; attempt++) {
        const found = podSelectors(await deps.fetchPods(), info)
        if (found !== undefined) return found
        if (attempt >= retries) {
          throw new Error(`pod ${info.podUid} not found in the kubelet's pod list`)
        }
        await sleep(delay)
      }
    },
  }
}
