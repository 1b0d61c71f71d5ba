import { discardEvents } from '../audit/event-sink.js'
import type { Inventory } from '../inventory/inventory-types.js'
import type {
  AssignmentView,
  OwnerFilter,
  OwnerImportResult,
  OwnerView,
} from '../inventory/owners/owners.js'
import type { Ownership } from '../inventory/owners/ownership.js'
import type { PolicyTestResult, PolicyVersionSummary } from '../policy/governance/governance.js'
import type { PolicyChange } from '../policy/governance/policy-diff.js'
import type { ComplianceReport, OwnerReport } from '../reports/reports.js'
import type { Clock } from '../runtime/clock.js'
import type { Store } from '../store/store.js'
import type { RemoteHttp } from './remote.js'

/**
 * Owners, governance policy and reports, the same over HTTP (`--server`) or on a store opened here.
 * `tessera owner|policy|report` see only this.
 */
export interface GovernAdmin {
  importOwners(
    content: string,
    options: { format?: 'scim' | 'csv' | 'auto'; source?: string },
  ): Promise<OwnerImportResult>
  listOwners(filter: OwnerFilter): Promise<{ items: OwnerView[]; nextAfter?: string }>
  ownership(identity: string): Promise<Ownership | undefined>
  assign(identity: string, owner: string, reason?: string): Promise<AssignmentView>
  setCodeowners(repository: string, content: string): Promise<void>
  testPolicy(body: string, file?: string): Promise<PolicyTestResult>
  applyPolicy(body: string, file?: string): Promise<{ version: number; changed: boolean }>
  policyHistory(): Promise<PolicyVersionSummary[]>
  policyDiff(from: number, to: number): Promise<PolicyChange[]>
  ownerReport(owner: string): Promise<OwnerReport>
  complianceReport(): Promise<ComplianceReport>
}

export function remoteGovernAdmin(http: RemoteHttp): GovernAdmin {
  return {
    importOwners: (content, o) =>
      http.json('POST', 'v1/owners/import', { body: { content, ...o } }),
    listOwners: (f) =>
      http.json('GET', 'v1/owners', {
        query: {
          type: f.type,
          status: f.status,
          team: f.team,
          after: f.after,
          limit: f.limit === undefined ? undefined : String(f.limit),
        },
      }),
    async ownership(identity) {
      try {
        return await http.json<Ownership>('GET', 'v1/ownership', { query: { identity } })
      } catch (err) {
        if ((err as { code?: string }).code === 'TSR_NOT_FOUND') return undefined
        throw err
      }
    },
    assign: (identity, owner, reason) =>
      http.json('POST', 'v1/ownership', {
        body: { identity, owner, ...(reason !== undefined ? { reason } : {}) },
      }),
    async setCodeowners(repository, content) {
      await http.json('PUT', 'v1/codeowners', { body: { repository, content } })
    },
    testPolicy: (body, file) =>
      http.json('POST', 'v1/policy/test', { body: { body, ...(file ? { file } : {}) } }),
    applyPolicy: (body, file) =>
      http.json('POST', 'v1/policy', { body: { body, ...(file ? { file } : {}) } }),
    async policyHistory() {
      return (await http.json<{ items: PolicyVersionSummary[] }>('GET', 'v1/policy/versions')).items
    },
    async policyDiff(from, to) {
      return (
        await http.json<{ changes: PolicyChange[] }>('GET', 'v1/policy/diff', {
          query: { from: String(from), to: String(to) },
        })
      ).changes
    },
    ownerReport: (owner) => http.json('GET', `v1/reports/owner/${encodeURIComponent(owner)}`),
    complianceReport: () => http.json('GET', 'v1/reports/compliance'),
  }
}

export function localGovernAdmin(
  store: Store,
  clock: Clock,
  inventory: Inventory,
  actor: string,
  env: NodeJS.ProcessEnv,
): GovernAdmin {
  const load = async () => {
    const [owners, governance, reports, codeowners] = await Promise.all([
      import('../inventory/owners/owners.js'),
      import('../policy/governance/governance.js'),
      import('../reports/reports.js'),
      import('../inventory/owners/codeowners.js'),
    ])
    const dir = env.TESSERA_CODEOWNERS_DIR
    const co = dir ? { codeowners: codeowners.directoryCodeowners(dir) } : {}
    return {
      owners: owners.createOwners({ store, inventory, clock, ...co }),
      // The local CLI has no audit log of its own yet: policy.changed goes nowhere here.
      governance: governance.createGovernance({ store, events: discardEvents, clock, ...co }),
      reports: reports.createReports({ store, clock, ...co }),
    }
  }
  return {
    importOwners: async (content, o) => (await load()).owners.importText(content, o),
    listOwners: async (f) => (await load()).owners.list(f),
    ownership: async (identity) => (await load()).owners.ownership(identity),
    assign: async (identity, owner, reason) =>
      (await load()).owners.assign(identity, owner, {
        by: actor,
        ...(reason !== undefined ? { reason } : {}),
      }),
    setCodeowners: async (repository, content) =>
      (await load()).owners.setCodeowners(repository, content),
    testPolicy: async (body, file) => (await load()).governance.test(body, file),
    applyPolicy: async (body, file) =>
      (await load()).governance.apply(body, { by: actor, ...(file ? { file } : {}) }),
    policyHistory: async () => (await load()).governance.history(),
    policyDiff: async (from, to) => (await load()).governance.diff(from, to),
    ownerReport: async (owner) => (await load()).reports.owner(owner),
    complianceReport: async () => (await load()).reports.compliance(),
  }
}
