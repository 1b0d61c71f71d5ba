import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * A small local fake of the AWS IAM query API (protocol `awsQuery`: form-encoded POST, XML
 * answers), enough for access-key rotation: CreateAccessKey, ListAccessKeys, UpdateAccessKey,
 * DeleteAccessKey, GetAccessKeyLastUsed. It keeps AWS's rules that matter here: at most 2 access
 * keys per user (`LimitExceeded`, 409), `NoSuchEntity` (404) for unknown users and keys, and every
 * request must be SigV4-signed by an Active key it knows (the signature is checked), so "verify
 * with the new key" is real. It does not model IAM policies: any Active key may call any action.
 */
export interface FakeIamKey {
  userName: string
  accessKeyId: string
  secretAccessKey: string
  status: 'Active' | 'Inactive'
  createDate: Date
}

export interface FakeIam {
  url: string
  /** The admin user's key (user `tessera-admin`), for the rotator's configuration. */
  admin: { accessKeyId: string; secretAccessKey: string }
  keys: Map<string, FakeIamKey>
  addUser(userName: string): void
  /** Creates a key outside the API (a key someone made by hand). */
  addKey(userName: string, status?: 'Active' | 'Inactive'): FakeIamKey
  keysOf(userName: string): FakeIamKey[]
  /** Every action called, in order, with the key that signed it. */
  calls: { action: string; accessKeyId: string }[]
  close(): Promise<void>
}

const ns = 'https://iam.amazonaws.com/doc/2010-05-08/'
const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
const hmac = (k: Buffer | string, d: string) => createHmac('sha256', k).update(d).digest()

class IamError extends Error {
  readonly status: number
  readonly code: string
  constructor(status: number, code: string, message: string) {
    super(message)
    this.status = status
    this.code = code
  }
}

export async function startFakeIam(): Promise<FakeIam> {
  const users = new Set<string>(['tessera-admin'])
  const keys = new Map<string, FakeIamKey>()
  const calls: FakeIam['calls'] = []
  const newKey = (userName: string, status: 'Active' | 'Inactive' = 'Active'): FakeIamKey => {
    const key: FakeIamKey = {
      userName,
      accessKeyId: 'AKIA' + randomBytes(8).toString('hex').toUpperCase(),
      secretAccessKey: randomBytes(30).toString('base64').slice(0, 40),
      status,
      createDate: new Date(),
    }
    keys.set(key.accessKeyId, key)
    return key
  }
  const keysOf = (u: string) => [...keys.values()].filter((k) => k.userName === u)
  const admin = newKey('tessera-admin')

  function authenticate(req: IncomingMessage, body: Buffer): FakeIamKey {
    const auth = req.headers.authorization ?? ''
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
        auth,
      )
    if (!m) throw new IamError(403, 'IncompleteSignature', 'missing or malformed Authorization')
    const [, keyId, date, region, service, signedHeaders, signature] = m as unknown as string[]
    const key = keys.get(keyId!)
    if (!key || key.status !== 'Active') {
      throw new IamError(
        403,
        'InvalidClientTokenId',
        'The security token included in the request is invalid.',
      )
    }
    const amzDate = String(req.headers['x-amz-date'] ?? '')
    const canonicalHeaders = signedHeaders!
      .split(';')
      .map(
        (h) =>
          `${h}:${String(req.headers[h] ?? '')
            .trim()
            .replace(/\s+/g, ' ')}\n`,
      )
      .join('')
    const url = new URL(req.url ?? '/', 'http://x')
    const canonicalRequest = [
      req.method,
      url.pathname,
      url.search.slice(1),
      canonicalHeaders,
      signedHeaders,
      sha256(body),
    ].join('\n')
    const scope = `${date}/${region}/${service}/aws4_request`
    const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n')
    const kSigning = hmac(
      hmac(hmac(hmac('AWS4' + key.secretAccessKey, date!), region!), service!),
      'aws4_request',
    )
    const expected = createHmac('sha256', kSigning).update(toSign).digest()
    const given = Buffer.from(signature!, 'hex')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new IamError(
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided.',
      )
    }
    return key
  }

  function userOf(p: URLSearchParams, caller: FakeIamKey): string {
    const u = p.get('UserName') ?? caller.userName
    if (!users.has(u))
      throw new IamError(404, 'NoSuchEntity', `The user with name ${u} cannot be found.`)
    return u
  }
  function keyOf(p: URLSearchParams, user: string): FakeIamKey {
    const id = p.get('AccessKeyId') ?? ''
    const k = keys.get(id)
    if (!k || k.userName !== user) {
      throw new IamError(404, 'NoSuchEntity', `The Access Key with id ${id} cannot be found.`)
    }
    return k
  }
  const member = (k: FakeIamKey, secret = false) =>
    `<UserName>${esc(k.userName)}</UserName><AccessKeyId>${k.accessKeyId}</AccessKeyId><Status>${k.status}</Status>${secret ? `<SecretAccessKey>${esc(k.secretAccessKey)}</SecretAccessKey>` : ''}<CreateDate>${k.createDate.toISOString()}</CreateDate>`

  function handle(action: string, p: URLSearchParams, caller: FakeIamKey): string {
    switch (action) {
      case 'CreateAccessKey': {
        const u = userOf(p, caller)
        if (keysOf(u).length >= 2) {
          throw new IamError(409, 'LimitExceeded', 'Cannot exceed quota for AccessKeysPerUser: 2')
        }
        return `<CreateAccessKeyResult><AccessKey>${member(newKey(u), true)}</AccessKey></CreateAccessKeyResult>`
      }
      case 'ListAccessKeys': {
        const u = userOf(p, caller)
        const items = keysOf(u)
          .map((k) => `<member>${member(k)}</member>`)
          .join('')
        return `<ListAccessKeysResult><UserName>${esc(u)}</UserName><AccessKeyMetadata>${items}</AccessKeyMetadata><IsTruncated>false</IsTruncated></ListAccessKeysResult>`
      }
      case 'UpdateAccessKey': {
        const u = userOf(p, caller)
        const k = keyOf(p, u)
        const status = p.get('Status')
        if (status !== 'Active' && status !== 'Inactive') {
          throw new IamError(400, 'ValidationError', 'Status must be Active or Inactive')
        }
        k.status = status
        return ''
      }
      case 'DeleteAccessKey': {
        const u = userOf(p, caller)
        keys.delete(keyOf(p, u).accessKeyId)
        return ''
      }
      case 'GetAccessKeyLastUsed': {
        const k = keys.get(p.get('AccessKeyId') ?? '')
        if (!k) throw new IamError(404, 'NoSuchEntity', 'no such access key')
        return `<GetAccessKeyLastUsedResult><UserName>${esc(k.userName)}</UserName><AccessKeyLastUsed><Region>N/A</Region><ServiceName>N/A</ServiceName></AccessKeyLastUsed></GetAccessKeyLastUsedResult>`
      }
      default:
        throw new IamError(
          400,
          'InvalidAction',
          `The action ${action} is not valid for this web service.`,
        )
    }
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const requestId = randomUUID()
      const p = new URLSearchParams(body.toString('utf8'))
      const action = p.get('Action') ?? ''
      res.setHeader('content-type', 'text/xml')
      res.setHeader('x-amzn-requestid', requestId)
      try {
        if (req.method !== 'POST') throw new IamError(400, 'InvalidAction', 'POST only')
        const caller = authenticate(req, body)
        calls.push({ action, accessKeyId: caller.accessKeyId })
        const result = handle(action, p, caller)
        res.end(
          `<${action}Response xmlns="${ns}">${result}<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`,
        )
      } catch (err) {
        const e = err instanceof IamError ? err : new IamError(500, 'ServiceFailure', String(err))
        res.statusCode = e.status
        res.end(
          `<ErrorResponse xmlns="${ns}"><Error><Type>${e.status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${e.code}</Code><Message>${esc(e.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
        )
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    admin: { accessKeyId: admin.accessKeyId, secretAccessKey: admin.secretAccessKey },
    keys,
    calls,
    addUser: (u) => void users.add(u),
    addKey: (u, status) => {
      users.add(u)
      return newKey(u, status)
    },
    keysOf,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}
