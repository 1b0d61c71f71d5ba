import {
  CreateAccessKeyCommand,
  DeleteAccessKeyCommand,
  GetAccessKeyLastUsedCommand,
  IAMClient,
  ListAccessKeysCommand,
  UpdateAccessKeyCommand,
  type AccessKeyMetadata,
} from '@aws-sdk/client-iam'
import { TesseraError } from '../../../errors.js'
import { configChecker } from '../config-check.js'
import {
  defaultSleep,
  type CredentialVersion,
  type Rotator,
  type RotatorDeps,
  type RotatorModule,
} from '../rotator.js'

/**
 * AWS IAM user access key, through @aws-sdk/client-iam (any endpoint: AWS, or a local fake).
 * create → CreateAccessKey; verify → a call signed with the new key (GetAccessKeyLastUsed of
 * itself) answering for the right user, retried while IAM's eventual consistency settles;
 * activate → nothing (both keys are Active through the grace period); revoke → UpdateAccessKey
 * Inactive, then DeleteAccessKey.
 *
 * IAM allows 2 access keys per user. Before creating, the rule is (docs/rotation.md):
 * - a key that is neither the managed one nor Active is deleted (`onLimit: 'delete-inactive'`,
 *   the default; `'fail'` refuses instead);
 * - when this create step is resumed after a crash, an Active key other than the managed one is
 *   the orphan of the interrupted attempt (never delivered to anyone) and is deleted;
 * - otherwise an Active key Tessera does not manage stops the rotation with TSR_ROTATION_LIMIT:
 *   someone else uses it, and deleting it would break them.
 * The managed value is JSON `{"accessKeyId": …, "secretAccessKey": …}`.
 */
export interface AwsIamRotatorConfig {
  userName: string
  region: string
  /** IAM endpoint (default AWS's). */
  endpoint?: string
  /** Credentials of the principal allowed to manage the user's keys. The secret key is secret. */
  accessKeyId: string
  secretAccessKey: string
  onLimit: 'delete-inactive' | 'fail'
  /** How many times verify tries the new key (default 10, 1 s apart, doubling to 8 s). */
  verifyAttempts: number
  verifyDelayMs: number
}

export const awsIamRotatorModule: RotatorModule<AwsIamRotatorConfig> = {
  kind: 'aws-iam',
  secretFields: ['secretAccessKey'],
  parseConfig(config) {
    const c = configChecker('aws-iam', config, [
      'userName',
      'region',
      'endpoint',
      'accessKeyId',
      'secretAccessKey',
      'onLimit',
      'verifyAttempts',
      'verifyDelayMs',
    ])
    const userName = c.string('userName', { pattern: /^[\w+=,.@-]{1,64}$/ })
    const region = c.string('region', { optional: true }) ?? 'us-east-1'
    const endpoint =
      (config as { endpoint?: unknown } | null)?.endpoint === undefined
        ? undefined
        : c.url('endpoint', ['http:', 'https:'])
    const accessKeyId = c.string('accessKeyId')
    const secretAccessKey = c.string('secretAccessKey')
    const onLimit = c.string('onLimit', { optional: true }) ?? 'delete-inactive'
    if (onLimit !== 'delete-inactive' && onLimit !== 'fail') {
      c.problem('onLimit must be delete-inactive or fail')
    }
    const verifyAttempts = c.integer('verifyAttempts', 1, 50) ?? 10
    const verifyDelayMs = c.integer('verifyDelayMs', 0, 60_000) ?? 1000
    c.done()
    return {
      userName: userName!,
      region,
      ...(endpoint ? { endpoint: endpoint.toString() } : {}),
      accessKeyId: accessKeyId!,
      secretAccessKey: secretAccessKey!,
      onLimit: onLimit as AwsIamRotatorConfig['onLimit'],
      verifyAttempts,
      verifyDelayMs,
    }
  },
  create: createAwsIamRotator,
}

export function parseAwsValue(value: string): { accessKeyId: string; secretAccessKey: string } {
  const v = JSON.parse(value) as { accessKeyId?: unknown; secretAccessKey?: unknown }
  if (typeof v.accessKeyId !== 'string' || typeof v.secretAccessKey !== 'string') {
    throw new TesseraError(
      'TSR_VALIDATION',
      'rotator(aws-iam): the value is {"accessKeyId","secretAccessKey"}',
    )
  }
  return { accessKeyId: v.accessKeyId, secretAccessKey: v.secretAccessKey }
}

const keyIdOf = (v: CredentialVersion | undefined): string | undefined =>
  v === undefined
    ? undefined
    : typeof v.meta.accessKeyId === 'string'
      ? v.meta.accessKeyId
      : parseAwsValue(v.value).accessKeyId

export function createAwsIamRotator(config: AwsIamRotatorConfig, deps: RotatorDeps): Rotator {
  const sleep = deps.sleep ?? defaultSleep
  const clientFor = (accessKeyId: string, secretAccessKey: string) =>
    new IAMClient({
      region: config.region,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      credentials: { accessKeyId, secretAccessKey },
      maxAttempts: 3,
    })
  const iam = clientFor(config.accessKeyId, config.secretAccessKey)
  const UserName = config.userName
  const fail = (step: string, err: unknown) =>
    err instanceof TesseraError
      ? err
      : new TesseraError(
          'TSR_ROTATION_FAILED',
          `rotator(aws-iam): ${step}: ${(err as { name?: string }).name ?? 'Error'}: ${(err as Error).message}`,
          { cause: err },
        )
  // The SDK names modelled errors `<Code>Exception`; other endpoints may answer the bare code.
  const isCode = (err: unknown, code: string) =>
    [code, `${code}Exception`].includes((err as { name?: string }).name ?? '')
  const isNoSuchEntity = (err: unknown) => isCode(err, 'NoSuchEntity')

  async function deleteKey(AccessKeyId: string): Promise<void> {
    await iam.send(new DeleteAccessKeyCommand({ UserName, AccessKeyId })).catch((err: unknown) => {
      if (!isNoSuchEntity(err)) throw err
    })
  }

  return {
    kind: 'aws-iam',
    async create(ctx) {
      const managed = keyIdOf(ctx.current)
      try {
        const listed = await iam.send(new ListAccessKeysCommand({ UserName }))
        const others: AccessKeyMetadata[] = (listed.AccessKeyMetadata ?? []).filter(
          (k) => k.AccessKeyId !== managed,
        )
        let held = (listed.AccessKeyMetadata ?? []).length
        for (const k of others) {
          const id = k.AccessKeyId!
          if (k.Status !== 'Active' && config.onLimit === 'delete-inactive') {
            await deleteKey(id)
            held--
          } else if (k.Status === 'Active' && ctx.resumed && managed !== undefined) {
            await deleteKey(id)
            held--
          } else if (held >= 2) {
            throw new TesseraError(
              'TSR_ROTATION_LIMIT',
              `rotator(aws-iam): ${UserName} already has 2 access keys and ${id} (${k.Status}) is not managed by Tessera: delete it${k.Status === 'Active' ? ' once nothing uses it' : " or set onLimit: 'delete-inactive'"}`,
            )
          }
        }
        const created = await iam.send(new CreateAccessKeyCommand({ UserName }))
        const key = created.AccessKey
        if (!key?.AccessKeyId || !key.SecretAccessKey) {
          throw new Error('CreateAccessKey answered no key')
        }
        return {
          value: JSON.stringify({
            accessKeyId: key.AccessKeyId,
            secretAccessKey: key.SecretAccessKey,
          }),
          meta: { accessKeyId: key.AccessKeyId },
        }
      } catch (err) {
        if (isCode(err, 'LimitExceeded')) {
          throw new TesseraError(
            'TSR_ROTATION_LIMIT',
            `rotator(aws-iam): ${UserName} already has 2 access keys (LimitExceeded)`,
            { cause: err },
          )
        }
        throw fail('create', err)
      }
    },
    async verify(_ctx, next) {
      const { accessKeyId, secretAccessKey } = parseAwsValue(next.value)
      const own = clientFor(accessKeyId, secretAccessKey)
      let last: unknown
      try {
        for (let i = 0; i < config.verifyAttempts; i++) {
          if (i > 0) await sleep(Math.min(config.verifyDelayMs * 2 ** (i - 1), 8000))
          try {
            const out = await own.send(
              new GetAccessKeyLastUsedCommand({ AccessKeyId: accessKeyId }),
            )
            if (out.UserName !== UserName) {
              throw new TesseraError(
                'TSR_ROTATION_FAILED',
                `rotator(aws-iam): verify: the new key belongs to ${out.UserName ?? 'nobody'}, not ${UserName}`,
              )
            }
            return
          } catch (err) {
            if (err instanceof TesseraError) throw err
            last = err
          }
        }
        throw fail('verify', last)
      } finally {
        own.destroy()
      }
    },
    async activate() {},
    async revoke(_ctx, keep, drop) {
      const id = keyIdOf(drop)!
      if (id === keyIdOf(keep)) return
      try {
        await iam
          .send(new UpdateAccessKeyCommand({ UserName, AccessKeyId: id, Status: 'Inactive' }))
          .catch((err: unknown) => {
            if (!isNoSuchEntity(err)) throw err
          })
        await deleteKey(id)
      } catch (err) {
        throw fail('revoke', err)
      }
    },
    async close() {
      iam.destroy()
    },
  }
}
