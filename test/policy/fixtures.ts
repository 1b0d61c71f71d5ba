import { createInventory } from '../../src/inventory/index.js'
import type { Observation } from '../../src/inventory/observation.js'
import type { Clock } from '../../src/runtime/clock.js'
import type { Store } from '../../src/store/index.js'

export const td = 'example.org'
export const web = `spiffe://${td}/ns/prod/sa/web`
export const reporter = `spiffe://${td}/ns/prod/sa/reporter`
export const agent = `spiffe://${td}/ns/ai/sa/assistant`
export const outsider = `spiffe://${td}/ns/dev/sa/unknown`

/** A small graph: two teams, a person, three identities, resources with a hierarchy. */
export function graph(): Observation[] {
  return [
    { type: 'owner', source: 'hr', ref: 'payments', ownerType: 'team', name: 'Payments' },
    { type: 'owner', source: 'hr', ref: 'platform', ownerType: 'team', name: 'Platform' },
    {
      type: 'owner',
      source: 'hr',
      ref: 'alice@example.org',
      ownerType: 'person',
      name: 'Alice',
      email: 'alice@example.org',
      team: 'payments',
    },
    {
      type: 'identity',
      source: 'spire',
      ref: web,
      kind: 'workload',
      name: 'web',
      owner: 'payments',
      attributes: { tier: 'gold', environment: 'prod', pci: true, replicas: 3 },
    },
    {
      type: 'identity',
      source: 'spire',
      ref: reporter,
      kind: 'workload',
      name: 'reporter',
      owner: 'alice@example.org',
      attributes: { tier: 'bronze' },
    },
    {
      type: 'identity',
      source: 'spire',
      ref: agent,
      kind: 'ai_agent',
      name: 'assistant',
      owner: 'platform',
    },
    {
      type: 'resource',
      source: 'aws',
      ref: 'db:payments',
      resourceType: 'database',
      name: 'payments',
      environment: 'prod',
    },
    {
      type: 'resource',
      source: 'aws',
      ref: 'db:payments/cards',
      resourceType: 'table',
      name: 'cards',
      environment: 'prod',
      attributes: { parent: 'db:payments', classification: 'pci' },
    },
    {
      type: 'resource',
      source: 'k8s',
      ref: 'host:web-01',
      resourceType: 'host',
      name: 'web-01',
      environment: 'prod',
    },
    {
      type: 'resource',
      source: 'aws',
      ref: 's3:reports',
      resourceType: 'bucket',
      name: 'reports',
      environment: 'dev',
    },
    { type: 'grant', source: 'aws', identity: web, resource: 'db:payments', actions: ['db:query'] },
  ]
}

export async function seed(store: Store, clock: Clock, extra: Observation[] = []): Promise<void> {
  await createInventory({ store, clock }).ingest([...graph(), ...extra])
}

/** A realistic policy set used by the tests (and, scaled up, by the benchmark). */
export const basePolicies = {
  'payments-read': `// Payments workloads read payments data in their own environment.
@id("team-read")
permit (
  principal in Tessera::Team::"payments",
  action in [Tessera::Action::"read", Tessera::Action::"db:query"],
  resource in Tessera::Resource::"db:payments"
) when { context has trustDomain && context.trustDomain == "example.org" && resource has environment && resource.environment == "prod" };

@id("no-bronze-pci")
forbid (principal, action, resource)
when { principal.attributes has tier && principal.attributes.tier == "bronze" && resource.attributes has classification && resource.attributes.classification == "pci" };`,
  'reports-agent': `// The assistant may read reports, only when asked to and by at most one delegation hop.
permit (principal, action == Tessera::Action::"read", resource == Tessera::Resource::"s3:reports")
when {
  principal.kind == "ai_agent" || (context.delegated && context.delegationChain.contains("${agent}") && context.delegationDepth <= 1 && context has intent && context.intent like "*report*")
};`,
  'no-ssh-for-bots': `forbid (principal, action == Tessera::Action::"connect", resource is Tessera::Resource)
when { resource.resourceType == "host" && !(context has namespace && context.namespace == "ops") };`,
}
