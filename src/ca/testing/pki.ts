import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import {
  createLeafSigner,
  distinguishedName,
  issuerFromCertificate,
  serialFrom,
  signCaCertificate,
  spkiDer,
} from '../x509-template.js'

/** Test certificates made with the CA's own DER template (no store, no rotation). */
export interface TestCa {
  der: Buffer
  key: KeyObject
}

export function testRoot(
  trustDomain: string,
  opts: { notBefore?: Date; notAfter?: Date } = {},
): TestCa {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const now = Date.now()
  const der = signCaCertificate({
    trustDomainId: `spiffe://${trustDomain}`,
    subject: distinguishedName('Test', `${trustDomain} root ${randomBytes(4).toString('hex')}`),
    publicKey,
    serial: serialFrom(randomBytes(16)).der,
    notBefore: opts.notBefore ?? new Date(now - 60_000),
    notAfter: opts.notAfter ?? new Date(now + 86_400_000),
    selfKey: privateKey,
  })
  return { der, key: privateKey }
}

export function testIntermediate(trustDomain: string, parent: TestCa): TestCa {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const now = Date.now()
  const der = signCaCertificate({
    trustDomainId: `spiffe://${trustDomain}`,
    subject: distinguishedName('Test', `${trustDomain} intermediate`),
    publicKey,
    serial: serialFrom(randomBytes(16)).der,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    issuer: issuerFromCertificate(parent.der, parent.key),
  })
  return { der, key: privateKey }
}

export function testLeaf(
  issuer: TestCa,
  spiffeId: string,
  opts: { notBefore?: Date; notAfter?: Date } = {},
): { der: Buffer; key: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const now = Date.now()
  const der = createLeafSigner(issuerFromCertificate(issuer.der, issuer.key)).sign({
    spiffeId,
    spki: spkiDer(publicKey),
    serial: serialFrom(randomBytes(16)).der,
    notBefore: opts.notBefore ?? new Date(now - 10_000),
    notAfter: opts.notAfter ?? new Date(now + 3_600_000),
  })
  return { der, key: privateKey }
}
