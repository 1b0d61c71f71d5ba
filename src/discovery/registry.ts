import { createAzureConnector } from './azure/azure-connector.js'
import { createGithubConnector } from './github/github-connector.js'
import { createGcpConnector } from './gcp/gcp-connector.js'
import { createAwsConnector } from './aws/aws-connector.js'
import { createCertificatesConnector } from './certificates/certificates-connector.js'
import { createTlsConnector } from './certificates/tls-connector.js'
import { createSshConnector } from './ssh/ssh-connector.js'
import { createVaultConnector } from './vault/vault-connector.js'
import { createKubernetesConnector } from './kubernetes/kubernetes-connector.js'
import type { ConnectorFactory, ConnectorKind } from './connector.js'

/** Every built-in connector by kind; a new kind fails to compile until it is registered here. */
export const connectorFactories = {
  aws: createAwsConnector,
  kubernetes: createKubernetesConnector,
  certificates: createCertificatesConnector,
  tls: createTlsConnector,
  ssh: createSshConnector,
  gcp: createGcpConnector,
  azure: createAzureConnector,
  github: createGithubConnector,
  vault: createVaultConnector,
} satisfies Record<ConnectorKind, ConnectorFactory>
