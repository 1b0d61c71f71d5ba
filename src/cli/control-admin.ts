import type { AgentView } from '../attestation/agents.js'
import type { CreatedJoinToken } from '../attestation/join-tokens.js'
import type { EntryFilter, EntryInput, EntryPage, EntryPatch } from '../entries/entry-types.js'
import type { Clock } from '../runtime/clock.js'
import type { RegistrationEntry } from '../spiffe/types.js'
import type { Store } from '../store/store.js'
import type { RemoteHttp } from './remote.js'

/**
 * The SPIFFE control plane's admin operations, the same over HTTP (`--server`) or on a store opened
 * here. The CLI's `entry`, `token` and `agent list|ban` commands see only this.
 */
export interface ControlAdmin {
  createEntry(input: EntryInput): Promise<RegistrationEntry>
  updateEntry(id: string, patch: EntryPatch): Promise<RegistrationEntry>
  deleteEntry(id: string): Promise<{ id: string; revision: number }>
  getEntry(id: string): Promise<RegistrationEntry | undefined>
  listEntries(filter: EntryFilter): Promise<EntryPage>
  createJoinToken(input: { ttlSeconds?: number }): Promise<CreatedJoinToken>
  listAgents(): Promise<AgentView[]>
  banAgent(id: string): Promise<AgentView>
}

export function localControlAdmin(store: Store, clock: Clock): ControlAdmin {
  // Loaded on demand, like the token admin: `--help` needs none of it.
  const entries = async () => {
    const { createEntries } = await import('../entries/entries.js')
    const { createGovernance } = await import('../policy/governance/governance.js')
    const { discardEvents } = await import('../audit/event-sink.js')
    // The governance policy applies to entries made here as it does through the server.
    const governance = createGovernance({ store, events: discardEvents, clock })
    return createEntries({ store, clock, governance })
  }
  const actor = { actor: 'cli' }
  return {
    createEntry: async (input) => (await entries()).create(input, actor),
    updateEntry: async (id, patch) => (await entries()).update(id, patch, actor),
    deleteEntry: async (id) => (await entries()).delete(id, actor),
    getEntry: async (id) => (await entries()).get(id),
    listEntries: async (filter) => (await entries()).list(filter),
    async createJoinToken(input) {
      const { createJoinToken } = await import('../attestation/join-tokens.js')
      return createJoinToken(store, { ...input, createdBy: 'cli' }, clock)
    },
    async listAgents() {
      return (await import('../attestation/agents.js')).listAgents(store)
    },
    async banAgent(id) {
      return (await import('../attestation/agents.js')).banAgent(store, id)
    },
  }
}

type EntryJson = Omit<RegistrationEntry, 'expiresAt'> & { expiresAt?: string }

function fromJson(e: EntryJson): RegistrationEntry {
  const { expiresAt, ...rest } = e
  return { ...rest, ...(expiresAt ? { expiresAt: new Date(expiresAt) } : {}) }
}

function toJson<T extends { expiresAt?: Date | null }>(
  value: T,
): Omit<T, 'expiresAt'> & { expiresAt?: string | null } {
  const { expiresAt, ...rest } = value
  if (expiresAt === undefined) return rest
  return { ...rest, expiresAt: expiresAt === null ? null : expiresAt.toISOString() }
}

export function remoteControlAdmin(http: RemoteHttp): ControlAdmin {
  const entryPath = (id: string) => `v1/entries/${encodeURIComponent(id)}`
  return {
    async createEntry(input) {
      return fromJson(await http.json<EntryJson>('POST', 'v1/entries', { body: toJson(input) }))
    },
    async updateEntry(id, patch) {
      return fromJson(await http.json<EntryJson>('PATCH', entryPath(id), { body: toJson(patch) }))
    },
    deleteEntry: (id) => http.json('DELETE', entryPath(id)),
    async getEntry(id) {
      try {
        return fromJson(await http.json<EntryJson>('GET', entryPath(id)))
      } catch (err) {
        if ((err as { code?: string }).code === 'TSR_NOT_FOUND') return undefined
        throw err
      }
    },
    async listEntries(filter) {
      const page = await http.json<{ items: EntryJson[]; nextCursor: string | null }>(
        'GET',
        'v1/entries',
        {
          query: {
            spiffeId: filter.spiffeId,
            parentId: filter.parentId,
            owner: filter.owner,
            selector: filter.selector && `${filter.selector.type}:${filter.selector.value}`,
            limit: filter.limit === undefined ? undefined : String(filter.limit),
            cursor: filter.cursor,
          },
        },
      )
      return { items: page.items.map(fromJson), nextCursor: page.nextCursor }
    },
    createJoinToken: (input) => http.json('POST', 'v1/join-tokens', { body: input }),
    async listAgents() {
      return (await http.json<{ items: AgentView[] }>('GET', 'v1/agents')).items
    },
    banAgent: (id) => http.json('POST', `v1/agents/${encodeURIComponent(id)}/ban`),
  }
}
