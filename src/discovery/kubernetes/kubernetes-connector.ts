import type { CredentialType, Observation } from '../../inventory/observation.js'
import { createCollector, isoDate, ownerKeys, type Collector } from '../collector.js'
import type { Connector, ConnectorFactory, DiscoverContext } from '../connector.js'
import { OptionReader } from '../options.js'
import {
  openLiveClient,
  readLiveApi,
  requireOneInput,
  withDocuments,
  type LiveApiConfig,
} from '../live/live-source.js'
import { fetchKubernetes } from './kubernetes-api.js'
import { inputError } from '../parse/input-error.js'
import { formatPath, parseJsonInput } from '../parse/json.js'

/**
 * Kubernetes from a `kubectl get serviceaccounts,secrets,roles,clusterroles,rolebindings,
 * clusterrolebindings,pods -A -o json` dump (a `List`). Secrets are read for their type and age
 * only: `data` and `stringData` are never looked at.
 */
export const createKubernetesConnector: ConnectorFactory = (config) => {
  const o = new OptionReader(config)
  const files = o.paths('file')
  const inCluster = o.boolean('inCluster') ?? false
  let live = readLiveApi(o, { tokenEnv: 'KUBERNETES_TOKEN', env: config.env })
  if (inCluster) {
    if (live) o.problems.push('inCluster and api: give one')
    const host = config.env.KUBERNETES_SERVICE_HOST
    const port = config.env.KUBERNETES_SERVICE_PORT ?? '443'
    if (!host) o.problems.push('inCluster: KUBERNETES_SERVICE_HOST is not set (not in a pod?)')
    else {
      live = {
        url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
        tokenFile: `${serviceAccountDir}/token`,
        caFile: `${serviceAccountDir}/ca.crt`,
        timeoutMs: 30_000,
        allowInsecureHttp: false,
      }
    }
  }
  const pageSize = o.int('pageSize', 1, 5000)
  const cluster = o.string('cluster') ?? config.name.replace(/^k8s:/, '')
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(cluster)) {
    o.problems.push('cluster: letters, digits and . _ - (default: the source name after k8s:)')
  }
  if (!inCluster) requireOneInput(o, files.length > 0, live, 'file')
  else if (files.length > 0) o.problems.push('file and inCluster: give one')
  const problems = o.finish()
  if (problems.length > 0) return { ok: false, problems }
  const api = live
  const connector: Connector = {
    kind: 'kubernetes',
    name: config.name,
    scope: config.scope ?? 'full',
    discover: (ctx) =>
      api
        ? discoverKubernetesLive(ctx, config.name, cluster, api, pageSize)
        : discoverKubernetes(ctx, config.name, cluster, files),
  }
  return { ok: true, connector }
}

/** Where a pod finds its service account's token and the cluster CA. */
const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount'

/** The API server, read into the List a dump holds, then parsed as one. */
async function* discoverKubernetesLive(
  ctx: DiscoverContext,
  source: string,
  cluster: string,
  live: LiveApiConfig,
  pageSize: number | undefined,
): AsyncGenerator<Observation> {
  const client = await openLiveClient(ctx, live)
  const doc = await fetchKubernetes(ctx, client, pageSize)
  const label = client.baseUrl
  yield* discoverKubernetes(withDocuments(ctx, new Map([[label, doc]])), source, cluster, [label])
}

type Json = Record<string, unknown>
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)
const objects = (v: unknown): Json[] => (Array.isArray(v) ? v.filter(isObj) : [])
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)

interface Item {
  item: Json
  file: string
  path: string
  kind: string
  name: string
  namespace: string | undefined
  meta: Json
}

async function* discoverKubernetes(
  ctx: DiscoverContext,
  source: string,
  cluster: string,
  files: string[],
): AsyncGenerator<Observation> {
  const items: Item[] = []
  for (const file of files) {
    ctx.progress?.(`reading ${file}`)
    const parsed = parseJsonInput(await ctx.files.readFile(file), file)
    if (parsed.error) ctx.report(parsed.error)
    const doc = parsed.value
    const list =
      isObj(doc) && Array.isArray(doc.items)
        ? doc.items
        : isObj(doc) && doc.kind
          ? [doc]
          : undefined
    if (!list) {
      if (doc !== undefined) {
        ctx.report(
          inputError(file, 'expected a kubectl List (an object with items)', { path: '$' }),
        )
      }
      continue
    }
    list.forEach((item, i) => {
      const path = list === (doc as Json).items ? formatPath(['items', i]) : '$'
      const meta = isObj(item) ? item.metadata : undefined
      if (!isObj(item) || typeof item.kind !== 'string' || !isObj(meta) || !str(meta.name)) {
        ctx.report(inputError(file, 'item without kind or metadata.name', { path }))
        return
      }
      items.push({
        item,
        file,
        path,
        kind: item.kind,
        name: str(meta.name)!,
        namespace: str(meta.namespace),
        meta,
      })
    })
  }
  const c = createCollector(source)
  const k = new ClusterModel(c, cluster)
  for (const it of items) if (it.kind === 'ServiceAccount') k.serviceAccount(it)
  for (const it of items) if (it.kind === 'Secret') k.secret(it)
  for (const it of items) if (it.kind === 'Role' || it.kind === 'ClusterRole') k.role(it)
  for (const it of items) {
    if (it.kind === 'RoleBinding' || it.kind === 'ClusterRoleBinding') k.binding(ctx, it)
  }
  for (const it of items) if (it.kind === 'Pod') k.pod(it)
  yield* c.drain()
}

const secretTypes: Record<string, CredentialType> = {
  'kubernetes.io/service-account-token': 'token',
  'kubernetes.io/tls': 'certificate',
  'kubernetes.io/dockerconfigjson': 'password',
  'kubernetes.io/dockercfg': 'password',
  'kubernetes.io/basic-auth': 'password',
  'kubernetes.io/ssh-auth': 'ssh_key',
  'bootstrap.kubernetes.io/token': 'token',
}

class ClusterModel {
  /** `ns/name` → identity ref */
  private readonly accounts = new Map<string, string>()
  private readonly byNamespace = new Map<string, string[]>()
  private readonly roles = new Map<string, Json[]>()
  private readonly c: Collector
  private readonly cluster: string

  constructor(c: Collector, cluster: string) {
    this.c = c
    this.cluster = cluster
  }

  private namespace(ns: string): string {
    const ref = `k8s://${this.cluster}/namespaces/${ns}`
    this.c.resource({ ref, resourceType: 'k8s_namespace', name: ns })
    return ref
  }

  private owner(meta: Json): string | undefined {
    for (const bag of [meta.annotations, meta.labels]) {
      if (!isObj(bag)) continue
      for (const key of ownerKeys) {
        const v = str(bag[key])
        if (v) return this.c.owner(v)
      }
    }
    return undefined
  }

  /** A service account's ref: its uid when the dump has it, else its namespaced name. */
  accountRef(ns: string, name: string): string {
    const known = this.accounts.get(`${ns}/${name}`)
    if (known) return known
    const ref = `k8s:${this.cluster}:sa:${ns}/${name}`
    this.c.mentionedIdentity({
      ref,
      kind: 'service_account',
      name: `system:serviceaccount:${ns}:${name}`,
      attributes: { cluster: this.cluster, namespace: ns, notInDump: true },
    })
    return ref
  }

  serviceAccount({ meta, name, namespace, item }: Item): void {
    const ns = namespace ?? 'default'
    const uid = str(meta.uid)
    const ref = uid ? `k8s:${this.cluster}:${uid}` : `k8s:${this.cluster}:sa:${ns}/${name}`
    this.accounts.set(`${ns}/${name}`, ref)
    const list = this.byNamespace.get(ns) ?? []
    list.push(ref)
    this.byNamespace.set(ns, list)
    this.namespace(ns)
    const owner = this.owner(meta)
    const annotations = isObj(meta.annotations) ? meta.annotations : {}
    const created = isoDate(meta.creationTimestamp)
    this.c.identity({
      ref,
      kind: 'service_account',
      name: `system:serviceaccount:${ns}:${name}`,
      state: 'active',
      ...(owner ? { owner } : {}),
      ...(created ? { createdAt: created } : {}),
      attributes: {
        cluster: this.cluster,
        namespace: ns,
        ...(item.automountServiceAccountToken === false ? { automountToken: false } : {}),
      },
    })
    // Workload identity federation: the account may act as a cloud identity.
    const awsRole = str(annotations['eks.amazonaws.com/role-arn'])
    if (awsRole) {
      this.c.edge(
        'can_assume',
        { type: 'identity', ref },
        { type: 'identity', ref: awsRole },
        { via: 'eks.amazonaws.com/role-arn' },
      )
    }
    const gcpSa = str(annotations['iam.gke.io/gcp-service-account'])
    if (gcpSa) {
      this.c.edge(
        'can_assume',
        { type: 'identity', ref },
        { type: 'identity', ref: gcpSa },
        { via: 'iam.gke.io/gcp-service-account' },
      )
    }
  }

  secretRef(ns: string, name: string): string {
    return `k8s-secret:${this.cluster}/${ns}/${name}`
  }

  secret({ item, meta, name, namespace }: Item): void {
    const ns = namespace ?? 'default'
    const type = str(item.type) ?? 'Opaque'
    const ref = this.secretRef(ns, name)
    const annotations = isObj(meta.annotations) ? meta.annotations : {}
    const sa = str(annotations['kubernetes.io/service-account.name'])
    const created = isoDate(meta.creationTimestamp)
    this.namespace(ns)
    // Type and age only: the values in data / stringData are never read.
    this.c.credential({
      ref,
      credentialType: secretTypes[type] ?? 'api_key',
      state: 'active',
      ...(sa ? { identity: this.accountRef(ns, sa) } : {}),
      ...(created ? { createdAt: created } : {}),
      attributes: { secretType: type, cluster: this.cluster, namespace: ns },
    })
    this.c.location({
      credential: ref,
      locationType: 'k8s_secret',
      path: `${ns}/${name}`,
      host: this.cluster,
    })
  }

  role({ kind, name, namespace, item }: Item): void {
    const key = kind === 'Role' ? `Role/${namespace ?? 'default'}/${name}` : `ClusterRole/${name}`
    this.roles.set(key, objects(item.rules))
  }

  binding(ctx: DiscoverContext, { kind, name, namespace, item, file, path }: Item): void {
    const roleRef = isObj(item.roleRef) ? item.roleRef : undefined
    const roleKind = str(roleRef?.kind)
    const roleName = str(roleRef?.name)
    if (!roleKind || !roleName) {
      ctx.report(inputError(file, 'binding without roleRef', { path }))
      return
    }
    const ns = kind === 'RoleBinding' ? (namespace ?? 'default') : undefined
    const rules = this.roles.get(
      roleKind === 'Role' ? `Role/${ns}/${roleName}` : `ClusterRole/${roleName}`,
    )
    const via =
      kind === 'RoleBinding'
        ? `k8s://${this.cluster}/namespaces/${ns}/rolebindings/${name}`
        : `k8s://${this.cluster}/clusterrolebindings/${name}`
    const holders: string[] = []
    for (const s of objects(item.subjects)) {
      const sKind = str(s.kind)
      const sName = str(s.name)
      if (!sName) continue
      if (sKind === 'ServiceAccount')
        holders.push(this.accountRef(str(s.namespace) ?? ns ?? 'default', sName))
      else if (sKind === 'Group' && sName === 'system:serviceaccounts') {
        for (const list of this.byNamespace.values()) holders.push(...list)
      } else if (sKind === 'Group' && sName.startsWith('system:serviceaccounts:')) {
        holders.push(...(this.byNamespace.get(sName.slice('system:serviceaccounts:'.length)) ?? []))
      }
    }
    const role = `${roleKind}/${roleName}`
    for (const holder of holders) {
      if (!rules) {
        // The role is not in the dump: the grant is known, its rules are not.
        this.c.grant(
          holder,
          ns ? this.namespace(ns) : `k8s://${this.cluster}`,
          [`bind:${role}`],
          via,
          { role, unresolved: true },
        )
        continue
      }
      for (const rule of rules) {
        const verbs = strings(rule.verbs)
        for (const resource of this.ruleResources(rule, ns)) {
          this.c.grant(holder, resource, verbs, via, { role })
        }
      }
    }
  }

  private ruleResources(rule: Json, ns: string | undefined): string[] {
    const base = ns ? `k8s://${this.cluster}/namespaces/${ns}` : `k8s://${this.cluster}`
    if (ns) this.namespace(ns)
    const out: string[] = []
    for (const url of strings(rule.nonResourceURLs))
      out.push(`k8s://${this.cluster}/nonresource${url.startsWith('/') ? '' : '/'}${url}`)
    const groups = strings(rule.apiGroups)
    const names = strings(rule.resourceNames)
    for (const res of strings(rule.resources)) {
      for (const group of groups.length ? groups : ['']) {
        const typed = group === '' ? res : `${res}.${group}`
        const refs = names.length ? names.map((n) => `${base}/${typed}/${n}`) : [`${base}/${typed}`]
        for (const ref of refs) {
          out.push(ref)
          this.c.resource({
            ref,
            resourceType: `k8s_${
              res
                .split('/')[0]!
                .toLowerCase()
                .replace(/[^a-z0-9._-]/g, '_') || 'any'
            }`,
            name: ref.slice(`k8s://${this.cluster}/`.length),
            ...(ns ? {} : {}),
          })
        }
      }
    }
    return out
  }

  pod({ item, meta, name, namespace }: Item): void {
    const ns = namespace ?? 'default'
    const spec = isObj(item.spec) ? item.spec : {}
    const owner =
      objects(meta.ownerReferences).find((r) => r.controller === true) ??
      objects(meta.ownerReferences)[0]
    let controllerKind = str(owner?.kind) ?? 'Pod'
    let controllerName = str(owner?.name) ?? name
    const labels = isObj(meta.labels) ? meta.labels : {}
    const hash = str(labels['pod-template-hash'])
    if (controllerKind === 'ReplicaSet' && hash && controllerName.endsWith(`-${hash}`)) {
      controllerKind = 'Deployment'
      controllerName = controllerName.slice(0, -hash.length - 1)
    }
    const ref = `k8s:${this.cluster}:workload:${ns}/${controllerKind}/${controllerName}`
    const sa = str(spec.serviceAccountName) ?? str(spec.serviceAccount) ?? 'default'
    const images = [...objects(spec.containers), ...objects(spec.initContainers)]
      .map((x) => str(x.image))
      .filter((x): x is string => x !== undefined)
    const podOwner = this.owner(meta)
    this.c.identity({
      ref,
      kind: 'workload',
      name: `${ns}/${controllerName}`,
      state: 'active',
      ...(podOwner ? { owner: podOwner } : {}),
      attributes: {
        cluster: this.cluster,
        namespace: ns,
        controller: controllerKind,
        images: [...new Set(images)].sort(),
      },
    })
    this.c.edge(
      'runs_as',
      { type: 'identity', ref },
      { type: 'identity', ref: this.accountRef(ns, sa) },
    )
    for (const secret of podSecrets(spec)) {
      this.c.edge(
        'uses_credential',
        { type: 'identity', ref },
        { type: 'credential', ref: this.secretRef(ns, secret) },
      )
    }
  }
}

/** Secrets a pod mounts or reads into its environment (names only). */
function podSecrets(spec: Json): string[] {
  const out = new Set<string>()
  for (const v of objects(spec.volumes)) {
    const s = isObj(v.secret) ? str(v.secret.secretName) : undefined
    if (s) out.add(s)
    if (isObj(v.projected)) {
      for (const src of objects(v.projected.sources)) {
        const n = isObj(src.secret) ? str(src.secret.name) : undefined
        if (n) out.add(n)
      }
    }
  }
  for (const ctr of [...objects(spec.containers), ...objects(spec.initContainers)]) {
    for (const e of objects(ctr.env)) {
      const from =
        isObj(e.valueFrom) && isObj(e.valueFrom.secretKeyRef)
          ? str(e.valueFrom.secretKeyRef.name)
          : undefined
      if (from) out.add(from)
    }
    for (const e of objects(ctr.envFrom)) {
      const from = isObj(e.secretRef) ? str(e.secretRef.name) : undefined
      if (from) out.add(from)
    }
  }
  for (const p of objects(spec.imagePullSecrets)) {
    const n = str(p.name)
    if (n) out.add(n)
  }
  return [...out].sort()
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}
