import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync, realpathSync } from 'node:fs'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createK8sAttestor, parseCgroupPodInfo, podSelectors } from './k8s-attestor.js'
import {
  createStartTimeReader,
  createUnixAttestor,
  parseIdNames,
  parseProcStatStartTime,
  parseProcStatus,
  PidReusedError,
} from './unix-attestor.js'

const podUid = '2c48913c-b29f-11e7-9350-020968147796'
const containerId = '9bca8d63d5fa610783847915bcff0ecac1273e5b4bed3f6fa1b07350e0135961'

/** A trimmed but realistic kubelet `/pods` answer: two pods, init and app containers. */
const podsJson = JSON.stringify({
  kind: 'PodList',
  apiVersion: 'v1',
  metadata: {},
  items: [
    {
      metadata: {
        name: 'coredns-5d78c9869d-x2b7q',
        namespace: 'kube-system',
        uid: '11111111-2222-3333-4444-555555555555',
        labels: { 'k8s-app': 'kube-dns' },
      },
      spec: {
        serviceAccountName: 'coredns',
        nodeName: 'node-1',
        containers: [{ name: 'coredns' }],
      },
      status: {
        phase: 'Running',
        containerStatuses: [
          {
            name: 'coredns',
            containerID: `containerd://${'a'.repeat(64)}`,
            image: 'registry.k8s.io/coredns/coredns:v1.10.1',
            imageID: 'registry.k8s.io/coredns/coredns@sha256:' + 'b'.repeat(64),
          },
        ],
      },
    },
    {
      metadata: {
        name: 'billing-api-7f9c6d8b5-kq2zt',
        generateName: 'billing-api-7f9c6d8b5-',
        namespace: 'payments',
        uid: podUid,
        labels: { app: 'billing-api', 'pod-template-hash': '7f9c6d8b5' },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'billing-api-7f9c6d8b5', uid: 'x' },
        ],
      },
      spec: {
        serviceAccountName: 'billing',
        nodeName: 'node-1',
        initContainers: [{ name: 'migrate' }],
        containers: [{ name: 'api' }, { name: 'envoy' }],
      },
      status: {
        phase: 'Running',
        initContainerStatuses: [
          { name: 'migrate', containerID: `containerd://${'c'.repeat(64)}`, image: 'billing:1.4' },
        ],
        containerStatuses: [
          {
            name: 'api',
            containerID: `containerd://${containerId}`,
            image: 'ghcr.io/acme/billing:1.4.2',
            imageID: 'ghcr.io/acme/billing@sha256:' + 'd'.repeat(64),
          },
          { name: 'envoy', containerID: `containerd://${'e'.repeat(64)}`, image: 'envoy:v1.29' },
        ],
      },
    },
  ],
})

describe('k8s attestor', () => {
  const v1 = [
    '12:pids:/kubepods/burstable/pod' + podUid + '/' + containerId,
    '11:memory:/kubepods/burstable/pod' + podUid + '/' + containerId,
    '1:name=systemd:/kubepods/burstable/pod' + podUid + '/' + containerId,
  ].join('\n')
  const v2systemd =
    '0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod' +
    podUid.replaceAll('-', '_') +
    '.slice/cri-containerd-' +
    containerId +
    '.scope\n'

  it('parses cgroup v1 (cgroupfs) and v2 (systemd) paths', () => {
    assert.deepEqual(parseCgroupPodInfo(v1), { podUid, containerId })
    assert.deepEqual(parseCgroupPodInfo(v2systemd), { podUid, containerId })
    assert.deepEqual(parseCgroupPodInfo('0::/user.slice/user-1000.slice/session-3.scope\n'), {})
    assert.deepEqual(parseCgroupPodInfo(`0::/kubepods/besteffort/pod${podUid}\n`), { podUid })
  })

  it('yields ns, sa, pod and container selectors from the kubelet pod list', async () => {
    const a = createK8sAttestor({
      fetchPods: async () => podsJson,
      readText: async (p) => {
        assert.equal(p, '/proc/4242/cgroup')
        return v2systemd
      },
    })
    const got = (await a.attest({ pid: 4242, uid: 0, gid: 0 })).map((s) => `${s.type}:${s.value}`)
    for (const want of [
      'k8s:ns:payments',
      'k8s:sa:billing',
      'k8s:pod-name:billing-api-7f9c6d8b5-kq2zt',
      `k8s:pod-uid:${podUid}`,
      'k8s:pod-label:app:billing-api',
      'k8s:pod-owner:ReplicaSet:billing-api-7f9c6d8b5',
      'k8s:container-name:api',
      'k8s:container-image:ghcr.io/acme/billing:1.4.2',
      'k8s:node-name:node-1',
    ]) {
      assert.ok(got.includes(want), `${want} in ${got.join(', ')}`)
    }
    assert.ok(!got.includes('k8s:container-name:envoy'))
  })

  it('retries while the kubelet does not list the container yet, then fails', async () => {
    let calls = 0
    const a = createK8sAttestor({
      fetchPods: async () => (++calls < 3 ? JSON.stringify({ items: [] }) : podsJson),
      readText: async () => v1,
      sleep: async () => {},
    })
    assert.ok((await a.attest({ pid: 1, uid: 0, gid: 0 })).length > 0)
    assert.equal(calls, 3)
    const never = createK8sAttestor({
      fetchPods: async () => '{"items":[]}',
      readText: async () => v1,
      sleep: async () => {},
      retries: 2,
    })
    await assert.rejects(never.attest({ pid: 1, uid: 0, gid: 0 }), /not found/)
  })

  it('gives no selectors to a process outside any pod', async () => {
    const a = createK8sAttestor({
      fetchPods: async () => {
        throw new Error('must not be called')
      },
      readText: async () => '0::/system.slice/sshd.service\n',
    })
    assert.deepEqual(await a.attest({ pid: 1, uid: 0, gid: 0 }), [])
  })

  it('never throws on arbitrary cgroup text or kubelet JSON (fuzz)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => {
        const r = parseCgroupPodInfo(s)
        assert.ok(r.podUid === undefined || /^[0-9a-f-]{36}$/.test(r.podUid))
      }),
      { numRuns: 500 },
    )
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string()), (s) => {
        podSelectors(s, { podUid, containerId })
      }),
      { numRuns: 500 },
    )
    fc.assert(
      fc.property(fc.anything(), (v) => {
        podSelectors(JSON.stringify({ items: [v] }) ?? '', { podUid })
      }),
      { numRuns: 300 },
    )
  })
})

describe('unix attestor', () => {
  it('parses /proc stat start time even with spaces and parens in the command name', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3))
    fields[19] = '987654'
    assert.equal(parseProcStatStartTime(`123 (my (weird) proc) ${fields.join(' ')}`), '987654')
    assert.equal(parseProcStatStartTime('garbage'), undefined)
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const r = parseProcStatStartTime(s)
        assert.ok(r === undefined || /^\d+$/.test(r))
      }),
      { numRuns: 500 },
    )
  })

  it('parses status groups and passwd names', () => {
    const st = parseProcStatus(
      'Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nGroups:\t4 27 1000 \n',
    )
    assert.deepEqual(st, {
      uids: [1000, 1000, 1000, 1000],
      gids: [100, 100, 100, 100],
      groups: [4, 27, 1000],
    })
    const names = parseIdNames(
      'root:x:0:0:root:/root:/bin/bash\n# c\nbad\nalice:x:1000:1000::/home/a:/bin/sh\n',
    )
    assert.equal(names.get(0), 'root')
    assert.equal(names.get(1000), 'alice')
  })

  it('attests this very process from the real /proc: uid, gid, path and sha256', async () => {
    const a = createUnixAttestor()
    const uid = process.getuid!()
    const gid = process.getgid!()
    const startTime = await createStartTimeReader()(process.pid)
    const got = (
      await a.attest({ pid: process.pid, uid, gid, ...(startTime ? { startTime } : {}) })
    ).map((s) => `${s.type}:${s.value}`)
    const exe = realpathSync(process.execPath)
    assert.ok(got.includes(`unix:uid:${uid}`))
    assert.ok(got.includes(`unix:gid:${gid}`))
    assert.ok(got.includes(`unix:path:${exe}`))
    const sha = createHash('sha256').update(readFileSync(exe)).digest('hex')
    assert.ok(got.includes(`unix:sha256:${sha}`))
    if (uid === 0) assert.ok(got.includes('unix:user:root'))
  })

  it('hashes an executable once per inode+mtime', async () => {
    let hashes = 0
    const a = createUnixAttestor({
      fileId: async () => 'same',
      sha256File: async () => {
        hashes++
        return 'h'
      },
    })
    await a.attest({ pid: process.pid, uid: 0, gid: 0 })
    await a.attest({ pid: process.pid, uid: 0, gid: 0 })
    assert.equal(hashes, 1)
  })

  it('refuses when the PID was reused (start time differs from the one seen at accept)', async () => {
    const a = createUnixAttestor()
    await assert.rejects(
      a.attest({ pid: process.pid, uid: 0, gid: 0, startTime: '1' }),
      (e) => e instanceof PidReusedError,
    )
    // A process that changes under the attestor (start time differs before and after) is refused too.
    let reads = 0
    const stat = (t: string): string =>
      `1 (x) S ${Array.from({ length: 30 }, (_, i) => (i === 19 ? t : '0')).join(' ')}`
    const flaky = createUnixAttestor({
      procRoot: '/fake',
      readText: async (p) => {
        if (p.endsWith('/stat')) return stat(reads++ === 0 ? '100' : '200')
        if (p.endsWith('/status')) return 'Groups:\n'
        throw new Error('ENOENT')
      },
      readLink: async () => '/usr/bin/x',
      fileId: async () => 'id',
      sha256File: async () => 'h',
    })
    await assert.rejects(flaky.attest({ pid: 1, uid: 0, gid: 0, startTime: '100' }), PidReusedError)
  })
})
