import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, readlink, stat } from 'node:fs/promises'
import type { Selector } from '../spiffe/types.js'
import type { WorkloadPeer } from '../workload-api/backend.js'
import type { WorkloadAttestor } from './attestor.js'

/** File access the attestor needs; tests point it at a fake /proc. */
export interface UnixAttestorDeps {
  procRoot?: string
  readText?: (path: string) => Promise<string>
  readLink?: (path: string) => Promise<string>
  /** Identity of a file for the hash cache: inode, mtime, size. */
  fileId?: (path: string) => Promise<string>
  sha256File?: (path: string) => Promise<string>
  /** /etc/passwd and /etc/group, for `unix:user` and `unix:group`. */
  passwdPath?: string
  groupPath?: string
  /** Bound of the executable hash cache. */
  maxHashCache?: number
}

export class PidReusedError extends Error {
  constructor(pid: number) {
    super(`process ${pid} exited or its PID was reused during attestation`)
    this.name = 'PidReusedError'
  }
}

/**
 * Field 22 (starttime, clock ticks since boot) of /proc/PID/stat. The command name (field 2) may
 * hold spaces and parentheses, so fields are counted after the LAST `)`.
 */
export function parseProcStatStartTime(stat: string): string | undefined {
  const close = stat.lastIndexOf(')')
  if (close < 0) return undefined
  const rest = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/)
  // rest[0] is field 3 (state), so field 22 is rest[19].
  const v = rest[19]
  return v !== undefined && /^\d+$/.test(v) ? v : undefined
}

/** Uid, Gid and Groups lines of /proc/PID/status. */
export function parseProcStatus(status: string): {
  uids: number[]
  gids: number[]
  groups: number[]
} {
  const out = { uids: [] as number[], gids: [] as number[], groups: [] as number[] }
  for (const line of status.split('\n')) {
    const m = /^(Uid|Gid|Groups):\s*(.*)$/.exec(line)
    if (m === null) continue
    const nums = m[2]!
      .trim()
      .split(/\s+/)
      .filter((s) => /^\d+$/.test(s))
      .map(Number)
    if (m[1] === 'Uid') out.uids = nums
    else if (m[1] === 'Gid') out.gids = nums
    else out.groups = nums
  }
  return out
}

/** `name:x:id:...` lines (passwd or group) → id → name. */
export function parseIdNames(text: string): Map<number, string> {
  const out = new Map<number, string>()
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const parts = line.split(':')
    if (parts.length < 3) continue
    const id = parts[2]!
    if (!/^\d+$/.test(id) || parts[0] === '') continue
    if (!out.has(Number(id))) out.set(Number(id), parts[0]!)
  }
  return out
}

async function defaultFileId(path: string): Promise<string> {
  const st = await stat(path, { bigint: true })
  return `${st.dev}:${st.ino}:${st.mtimeNs}:${st.size}`
}

function defaultSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256')
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')))
  })
}

/** Reads the start time of a process right after accept (PID-reuse baseline). */
export function createStartTimeReader(
  procRoot = '/proc',
  readText: (p: string) => Promise<string> = (p) => readFile(p, 'utf8'),
): (pid: number) => Promise<string | undefined> {
  return async (pid) => {
    try {
      return parseProcStatStartTime(await readText(`${procRoot}/${pid}/stat`))
    } catch {
      return undefined
    }
  }
}

/**
 * The `unix` workload attestor. Selectors: `unix:uid:N`, `unix:gid:N` (from the socket's peer
 * credentials), `unix:user:NAME`, `unix:group:NAME`, `unix:supplementary_gid:N`, `unix:path:P`
 * (/proc/PID/exe) and `unix:sha256:H` of that executable (cached by inode, mtime and size).
 * PID-reuse defence: the process start time read at accept must equal the one read before and after
 * the /proc reads; otherwise the PID now names another process and attestation fails.
 */
export function createUnixAttestor(deps: UnixAttestorDeps = {}): WorkloadAttestor {
  const proc = deps.procRoot ?? '/proc'
  const readText = deps.readText ?? ((p: string) => readFile(p, 'utf8'))
  const readLink = deps.readLink ?? readlink
  const fileId = deps.fileId ?? defaultFileId
  const sha256File = deps.sha256File ?? defaultSha256
  const maxHash = deps.maxHashCache ?? 4096
  const hashes = new Map<string, string>()
  const startTime = createStartTimeReader(proc, readText)

  async function names(path: string): Promise<Map<number, string>> {
    try {
      return parseIdNames(await readText(path))
    } catch {
      return new Map()
    }
  }

  async function exeHash(exe: string): Promise<string | undefined> {
    let id: string
    try {
      id = await fileId(exe)
    } catch {
      return undefined
    }
    const hit = hashes.get(id)
    if (hit !== undefined) return hit
    const h = await sha256File(exe)
    hashes.set(id, h)
    if (hashes.size > maxHash) hashes.delete(hashes.keys().next().value!)
    return h
  }

  return {
    name: 'unix',
    async attest(peer: WorkloadPeer): Promise<Selector[]> {
      const { pid } = peer
      const before = await startTime(pid)
      if (peer.startTime !== undefined && before !== peer.startTime) throw new PidReusedError(pid)

      const out: Selector[] = [
        { type: 'unix', value: `uid:${peer.uid}` },
        { type: 'unix', value: `gid:${peer.gid}` },
      ]
      const [users, groups] = await Promise.all([
        names(deps.passwdPath ?? '/etc/passwd'),
        names(deps.groupPath ?? '/etc/group'),
      ])
      const user = users.get(peer.uid)
      if (user !== undefined) out.push({ type: 'unix', value: `user:${user}` })
      const group = groups.get(peer.gid)
      if (group !== undefined) out.push({ type: 'unix', value: `group:${group}` })

      if (before !== undefined) {
        try {
          const status = parseProcStatus(await readText(`${proc}/${pid}/status`))
          for (const g of status.groups) {
            out.push({ type: 'unix', value: `supplementary_gid:${g}` })
            const gn = groups.get(g)
            if (gn !== undefined) out.push({ type: 'unix', value: `supplementary_group:${gn}` })
          }
        } catch {
          // process gone: caught by the start-time check below
        }
        const exeLink = `${proc}/${pid}/exe`
        let exe: string | undefined
        try {
          exe = await readLink(exeLink)
        } catch {
          exe = undefined // not permitted (agent not root and another user's process) or gone
        }
        if (exe !== undefined) {
          out.push({ type: 'unix', value: `path:${exe.replace(/ \(deleted\)$/, '')}` })
          // Hash through /proc/PID/exe: the very binary the process runs, even if replaced on disk.
          const h = await exeHash(exeLink).catch(() => undefined)
          if (h !== undefined) out.push({ type: 'unix', value: `sha256:${h}` })
        }
        const after = await startTime(pid)
        if (after !== before) throw new PidReusedError(pid)
      }
      return out
    },
  }
}
