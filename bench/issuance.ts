/**
 * Issuance budgets (DESIGN.md §7), on one core, each beside its raw reference measured in the same
 * run:
 * - X.509-SVID minting ≥ 50% of the raw `crypto.sign` ECDSA P-256 rate;
 * - JWT-SVID mint + verify ≥ 70% of raw ECDSA P-256 sign + verify.
 *
 *   npm run bench -- issuance [--seconds S] [--batch N] [--database URL]
 *
 * "Minting" is the CA's whole `signX509Svids` call: request checks, the DER template, the signature
 * and the issuance rows written (batched) into an in-memory PGlite store, which runs on the same
 * thread, so its cost counts against the same core. The signing-only figure (template + signature,
 * no store) is printed too. Workload key pairs are made before timing: the workload makes them.
 * With `--database` (or TESSERA_BENCH_DATABASE_URL) the issuance rows go to PostgreSQL instead
 * (one insert per batch, in another process), in a schema of its own that is dropped afterwards.
 */
import {
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { createCertificateAuthority } from '../src/ca/ca.js'
import { createMemoryKeyManager } from '../src/ca/key-manager.js'
import {
  createLeafSigner,
  distinguishedName,
  issuerFromCertificate,
  serialFrom,
  signCaCertificate,
  spkiDer,
} from '../src/ca/x509-template.js'
import { validateJwtSvid } from '../src/spiffe/jwt-svid.js'
import { openStore } from '../src/store/index.js'
import { dropSchema, freshSchemaName } from '../test/support/stores.js'
import { fmtInt, heading, report } from './support.js'

/**
 * Rates (operations per CPU-second of this process) of a reference and a candidate, measured in
 * alternating slices of about 50 ms for `seconds` in all. CPU time, not wall time: the cores are
 * shared with other processes, and a wait on the store is not work of this core. (With PostgreSQL,
 * the database server's own CPU is not counted; with PGlite everything runs in this process.)
 */
async function compare(
  seconds: number,
  reference: { perCall: number; fn: () => unknown },
  candidate: { perCall: number; fn: () => unknown },
): Promise<{ reference: number; candidate: number }> {
  const spent = [0, 0]
  const ops = [0, 0]
  const sides = [reference, candidate]
  for (const side of sides) for (let i = 0; i < 3; i++) await side.fn() // warm-up
  const end = performance.now() + seconds * 1000
  while (performance.now() < end) {
    for (let s = 0; s < 2; s++) {
      const side = sides[s]!
      const c0 = process.cpuUsage()
      const sliceEnd = performance.now() + 50
      do {
        await side.fn()
        ops[s]! += side.perCall
      } while (performance.now() < sliceEnd)
      const used = process.cpuUsage(c0)
      spent[s]! += (used.user + used.system) / 1000
    }
  }
  return { reference: (ops[0]! / spent[0]!) * 1000, candidate: (ops[1]! / spent[1]!) * 1000 }
}

function verdict(ratio: number, budget: number): string {
  return `${(ratio * 100).toFixed(0)}% of raw (budget ≥ ${budget * 100}%: ${ratio >= budget ? 'met' : 'MISSED'})`
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: 'string', default: '3' },
      batch: { type: 'string', default: '100' },
      database: { type: 'string' },
    },
  })
  const seconds = Number(values.seconds)
  const batch = Number(values.batch)
  if (!(seconds > 0) || !(Number.isInteger(batch) && batch > 0)) {
    throw new Error('--seconds and --batch must be positive numbers')
  }
  process.stdout.write(
    `issuance benchmark: ${seconds} s per figure, rates per CPU-second of this process (node ${process.version}), batch ${batch}\n`,
  )

  const caKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const workloads: KeyObject[] = Array.from(
    { length: 64 },
    () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
  )

  heading('X.509-SVID minting (ECDSA P-256)')
  // The raw reference: one signature over a message the size of a leaf's TBSCertificate.
  const tbsSized = randomBytes(480)
  const rawSign = {
    perCall: 20,
    fn: () => {
      for (let i = 0; i < 20; i++) sign('sha256', tbsSized, caKey.privateKey)
    },
  }

  const now = new Date()
  const rootDer = signCaCertificate({
    trustDomainId: 'spiffe://bench.example',
    subject: distinguishedName('Bench'),
    publicKey: caKey.publicKey,
    serial: serialFrom(randomBytes(16)).der,
    notBefore: now,
    notAfter: new Date(now.getTime() + 86_400_000),
    selfKey: caKey.privateKey,
  })
  const signer = createLeafSigner(issuerFromCertificate(rootDer, caKey.privateKey))
  const spkis = workloads.map(spkiDer)
  const serials = randomBytes(16 * 4096)
  let n = 0
  const templateOnly = await compare(seconds, rawSign, {
    perCall: 20,
    fn: () => {
      for (let i = 0; i < 20; i++) {
        const at = (n % 4096) * 16
        signer.sign({
          spiffeId: `spiffe://bench.example/w/${n % 1000}`,
          spki: spkis[n++ % spkis.length]!,
          serial: serialFrom(serials.subarray(at, at + 16)).der,
          notBefore: now,
          notAfter: new Date(now.getTime() + 3_600_000),
        })
      }
    },
  })
  report('raw crypto.sign P-256 (reference)', `${fmtInt(templateOnly.reference)} /s`)
  report(
    'leaf template + signature',
    `${fmtInt(templateOnly.candidate)} /s`,
    verdict(templateOnly.candidate / templateOnly.reference, 0.5),
  )

  const url = values.database ?? process.env.TESSERA_BENCH_DATABASE_URL
  const schema = url ? freshSchemaName() : undefined
  const store = await openStore(
    url ? { backend: 'postgres', url, schema: schema! } : { backend: 'pglite' },
  )
  const where = url ? 'PostgreSQL' : 'PGlite'
  try {
    const ca = await createCertificateAuthority({
      store,
      keyManager: createMemoryKeyManager(),
      trustDomain: 'bench.example',
    })
    // As the agent API receives them: SPKI DER bytes.
    const ders = workloads.map((w) => w.export({ type: 'spki', format: 'der' }))
    let k = 0
    const derRequests = () =>
      Array.from({ length: batch }, () => ({
        spiffeId: `spiffe://bench.example/w/${k % 1000}`,
        publicKey: ders[k++ % ders.length]!,
      }))
    const minted = await compare(seconds, rawSign, {
      perCall: batch,
      fn: () => ca.signX509Svids(derRequests()),
    })
    report('raw crypto.sign P-256 (reference)', `${fmtInt(minted.reference)} /s`)
    report(
      `CA.signX509Svids (SPKI DER), ${batch}/call, rows to ${where}`,
      `${fmtInt(minted.candidate)} /s`,
      verdict(minted.candidate / minted.reference, 0.5),
    )
    // KeyObjects, a new one per request (the CA caches the DER per KeyObject, so reusing one
    // would hide the export cost).
    const fresh = Array.from({ length: 6000 }, (_, i) =>
      createPublicKey({ key: ders[i % ders.length]!, format: 'der', type: 'spki' }),
    )
    const objectRequests = () =>
      Array.from({ length: batch }, () => ({
        spiffeId: `spiffe://bench.example/w/${k % 1000}`,
        publicKey: fresh[k++ % fresh.length]!,
      }))
    const mintedObjects = await compare(Math.min(seconds, 2), rawSign, {
      perCall: batch,
      fn: () => ca.signX509Svids(objectRequests()),
    })
    report(
      `CA.signX509Svids (KeyObject), ${batch}/call`,
      `${fmtInt(mintedObjects.candidate)} /s`,
      verdict(mintedObjects.candidate / mintedObjects.reference, 0.5),
    )

    heading('JWT-SVID mint + verify (ES256)')
    const payload = Buffer.from(
      'eyJhbGciOiJFUzI1NiIsImtpZCI6Imp3dC0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1NjciLCJ0eXAiOiJKV1QifQ.' +
        Buffer.from(
          JSON.stringify({
            sub: 'spiffe://bench.example/w/1',
            aud: ['api'],
            exp: 1,
            iat: 1,
            jti: randomBytes(16).toString('hex'),
          }),
        ).toString('base64url'),
    )
    const rawJwt = {
      perCall: 20,
      fn: () => {
        for (let i = 0; i < 20; i++) {
          // Bare KeyObjects and DER signatures: Node's fastest form. (`{ key, dsaEncoding }`
          // options cost about as much again as the operation on Node 24, which would flatter
          // the ratio.)
          const sig = sign('sha256', payload, caKey.privateKey)
          verify('sha256', payload, caKey.publicKey, sig)
        }
      },
    }
    const bundle = await ca.bundle()
    const verifyAt = new Date()
    const jwtBatch = Math.min(batch, 100)
    let j = 0
    const jwt = await compare(seconds, rawJwt, {
      perCall: jwtBatch,
      fn: async () => {
        const tokens = await Promise.all(
          Array.from({ length: jwtBatch }, () =>
            ca.mintJwtSvid({
              spiffeId: `spiffe://bench.example/w/${j++ % 1000}`,
              audience: ['api'],
            }),
          ),
        )
        for (const t of tokens) validateJwtSvid(t.token, bundle, 'api', verifyAt)
      },
    })
    report('raw sign + verify P-256 (reference)', `${fmtInt(jwt.reference)} /s`)
    report(
      `mintJwtSvid + validateJwtSvid, ${jwtBatch} concurrent`,
      `${fmtInt(jwt.candidate)} /s`,
      verdict(jwt.candidate / jwt.reference, 0.7),
    )
  } finally {
    await store.close()
    if (url && schema) await dropSchema(url, schema)
  }
}
