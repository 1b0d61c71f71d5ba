import type { RuleSetSpec } from '../types.js'

const r = String.raw

/** PEM bodies: base64 lines, possibly indented (YAML) or joined with literal `\n` (JSON, env). */
const body = r`(?<secret>[A-Za-z0-9+/=\s\\:,-]{64,}?)`

function pem(label: string): string {
  return r`-----BEGIN ${label}-----${body}-----END ${label}-----`
}

/** Private keys in PEM (PKCS#1, SEC1, PKCS#8), OpenSSH, PGP and PuTTY formats. */
export const keyRules: RuleSetSpec = {
  version: 1,
  name: 'keys',
  description: 'private keys; public keys and certificates are not secrets and are never matched',
  rules: [
    {
      id: 'rsa-private-key',
      title: 'RSA private key (PKCS#1 PEM)',
      severity: 'critical',
      credentialType: 'private_key',
      keywords: ['begin rsa private key'],
      regex: pem('RSA PRIVATE KEY'),
      validator: 'pem-body',
      multiline: true,
    },
    {
      id: 'ec-private-key',
      title: 'EC private key (SEC1 PEM)',
      severity: 'critical',
      credentialType: 'private_key',
      keywords: ['begin ec private key'],
      regex: pem('EC PRIVATE KEY'),
      validator: 'pem-body',
      multiline: true,
    },
    {
      id: 'dsa-private-key',
      title: 'DSA private key (PEM)',
      severity: 'critical',
      credentialType: 'private_key',
      keywords: ['begin dsa private key'],
      regex: pem('DSA PRIVATE KEY'),
      validator: 'pem-body',
      multiline: true,
    },
    {
      id: 'pkcs8-private-key',
      title: 'Private key (PKCS#8 PEM)',
      severity: 'critical',
      credentialType: 'private_key',
      keywords: ['begin private key'],
      regex: pem('PRIVATE KEY'),
      validator: 'pem-body',
      multiline: true,
    },
    {
      id: 'pkcs8-encrypted-private-key',
      title: 'Encrypted private key (PKCS#8 PEM)',
      severity: 'high',
      credentialType: 'private_key',
      keywords: ['begin encrypted private key'],
      regex: pem('ENCRYPTED PRIVATE KEY'),
      validator: 'pem-body',
      multiline: true,
    },
    {
      id: 'openssh-private-key',
      title: 'OpenSSH private key',
      severity: 'critical',
      credentialType: 'ssh_key',
      keywords: ['begin openssh private key'],
      regex: pem('OPENSSH PRIVATE KEY'),
      validator: 'pem-body',
      multiline: true,
    },
    {
      id: 'pgp-private-key',
      title: 'PGP private key block',
      severity: 'critical',
      credentialType: 'private_key',
      keywords: ['begin pgp private key block'],
      regex: pem('PGP PRIVATE KEY BLOCK'),
      validator: 'pem-body',
      multiline: true,
    },
    {
      id: 'putty-private-key',
      title: 'PuTTY private key',
      severity: 'critical',
      credentialType: 'ssh_key',
      keywords: ['putty-user-key-file-'],
      regex: r`PuTTY-User-Key-File-\d: [a-z0-9-]+\r?\nEncryption: [a-z0-9-]+\r?\nComment: [^\r\n]*\r?\nPublic-Lines: \d+\r?\n[A-Za-z0-9+/=\r\n]+?Private-Lines: \d+\r?\n(?<secret>[A-Za-z0-9+/=\r\n]{40,}?)\r?\nPrivate-MAC`,
      validator: 'pem-body',
      multiline: true,
    },
    {
      id: 'age-secret-key',
      title: 'age secret key',
      severity: 'critical',
      credentialType: 'private_key',
      keywords: ['age-secret-key-1'],
      regex: r`\b(?<secret>AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})\b`,
    },
  ],
}
