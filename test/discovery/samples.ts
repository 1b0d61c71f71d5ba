import type { Connector } from '../../src/discovery/index.js'
import { loadSourcesFile } from '../../src/discovery/sources.js'

export const examplesDir = new URL('../../examples/', import.meta.url).pathname

/** The sources file that configures every connector over its sample export. */
export const sampleSourcesFile = examplesDir + 'tessera-sources.yaml'

/** The sample PKCS#12 password (documented in examples/README.md). */
export const sampleEnv = { SAMPLE_P12_PASSWORD: 'changeit-sample' }

export async function sampleConnectors(): Promise<Connector[]> {
  return (await loadSourcesFile(sampleSourcesFile, sampleEnv)).map((s) => s.connector)
}

export const sampleSourceNames = [
  'aws:prod',
  'k8s:prod-eu',
  'certs:edge',
  'ssh:bastion-1.prod.acme.example',
  'gcp:data',
  'azure:corp',
  'github:acme',
  'vault:main',
]
