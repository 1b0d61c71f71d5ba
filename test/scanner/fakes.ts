import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { base62Crc32 } from '../../src/scanner/validators.js'

/**
 * Generators of FAKE credentials in the real formats (valid checksums where the format has one),
 * for the labelled corpus and the benchmark. Deterministic from a seed; none is a real credential.
 */
export function createRng(seed: number) {
  let s = seed >>> 0 || 1
  const next = () => {
    // xorshift32
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 0x100000000
  }
  const from = (alphabet: string, n: number) => {
    let out = ''
    for (let i = 0; i < n; i++) out += alphabet[Math.floor(next() * alphabet.length)]
    return out
  }
  return { next, from, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)) }
}
export type Rng = ReturnType<typeof createRng>

export const alnum = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
export const hex = '0123456789abcdef'
const upper32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
const b64 = alnum + '+/'
const urlsafe = alnum + '-_'
const bech32 = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l'

function crcToken(prefix: string, rng: Rng): string {
  const body = rng.from(alnum, 30)
  return `${prefix}_${body}${base62Crc32(body)}`
}

function b64url(obj: unknown): string {
  return Buffer.from(JSON.stringify(obj)).toString('base64url')
}

/** Key pairs are slow to make: a small pool, picked by the rng. */
const keyPool = new Map<string, string[]>()
function pemKey(kind: 'rsa' | 'ec' | 'dsa' | 'pkcs8' | 'enc' | 'openssh', rng: Rng): string {
  let pool = keyPool.get(kind)
  if (!pool) {
    pool = []
    for (let i = 0; i < 3; i++) {
      if (kind === 'rsa' || kind === 'pkcs8' || kind === 'enc') {
        const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 })
        pool.push(
          kind === 'rsa'
            ? (privateKey.export({ type: 'pkcs1', format: 'pem' }) as string)
            : kind === 'pkcs8'
              ? (privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)
              : (privateKey.export({
                  type: 'pkcs8',
                  format: 'pem',
                  cipher: 'aes-256-cbc',
                  passphrase: 'corpus',
                }) as string),
        )
      } else if (kind === 'ec') {
        const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
        pool.push(privateKey.export({ type: 'sec1', format: 'pem' }) as string)
      } else if (kind === 'dsa') {
        // A DSA-labelled PEM with random DER-like base64 (Node 24 may not make DSA keys quickly).
        const lines: string[] = []
        const b = Buffer.from(rng.from(b64, 600)).toString('base64')
        for (let j = 0; j < b.length; j += 64) lines.push(b.slice(j, j + 64))
        pool.push(
          `-----BEGIN DSA PRIVATE KEY-----\n${lines.join('\n')}\n-----END DSA PRIVATE KEY-----\n`,
        )
      } else {
        // OpenSSH format body: "openssh-key-v1\0" magic then random material.
        const body = Buffer.concat([
          Buffer.from('openssh-key-v1\0'),
          createHash('sha512').update(rng.from(alnum, 40)).digest(),
          Buffer.from(rng.from(b64, 300)),
        ]).toString('base64')
        const lines: string[] = []
        for (let j = 0; j < body.length; j += 70) lines.push(body.slice(j, j + 70))
        pool.push(
          `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
        )
      }
    }
    keyPool.set(kind, pool)
  }
  return pool[rng.int(0, pool.length - 1)]!
}

/** A public key and a certificate-like block: decoys that must NOT be reported. */
export function publicKeyPem(): string {
  const pem = pemKey('pkcs8', createRng(7))
  return createPublicKey(pem).export({ type: 'spki', format: 'pem' }) as string
}

/**
 * One fake secret per rule id: `value` is what is embedded; multi-line values are PEM blocks.
 * `name` is a variable name that the rule's context (if any) needs.
 */
export const fakeMakers: Record<string, { name: string; make: (rng: Rng) => string }> = {
  'github-pat': { name: 'GITHUB_TOKEN', make: (r) => crcToken('ghp', r) },
  'github-oauth-token': { name: 'GH_OAUTH_TOKEN', make: (r) => crcToken('gho', r) },
  'github-user-to-server-token': { name: 'GH_USER_TOKEN', make: (r) => crcToken('ghu', r) },
  'github-app-installation-token': { name: 'GH_INSTALL_TOKEN', make: (r) => crcToken('ghs', r) },
  'github-refresh-token': { name: 'GH_REFRESH_TOKEN', make: (r) => crcToken('ghr', r) },
  'github-fine-grained-pat': {
    name: 'GH_FINE_PAT',
    make: (r) => `github_pat_${r.from(alnum, 22)}_${r.from(alnum, 59)}`,
  },
  'gitlab-pat': { name: 'GITLAB_TOKEN', make: (r) => `glpat-${r.from(urlsafe, 20)}` },
  'gitlab-pipeline-trigger-token': {
    name: 'GITLAB_TRIGGER',
    make: (r) => `glptt-${r.from(hex, 40)}`,
  },
  'gitlab-runner-token': { name: 'RUNNER_AUTH', make: (r) => `glrt-${r.from(urlsafe, 20)}` },
  'npm-token': { name: 'NPM_AUTH', make: (r) => crcToken('npm', r) },
  'pypi-token': {
    name: 'PYPI_UPLOAD',
    make: (r) => `pypi-AgEIcHlwaS5vcmc${r.from(urlsafe, 70)}`,
  },
  'dockerhub-pat': { name: 'DOCKERHUB_PAT', make: (r) => `dckr_pat_${r.from(urlsafe, 27)}` },
  'aws-access-key-id': { name: 'AWS_ACCESS_KEY_ID', make: (r) => `AKIA${r.from(upper32, 16)}` },
  'aws-secret-access-key': { name: 'aws_secret_access_key', make: (r) => r.from(b64, 40) },
  'gcp-api-key': { name: 'GOOGLE_MAPS_KEY', make: (r) => `AIza${r.from(urlsafe, 35)}` },
  'azure-storage-account-key': {
    name: 'AZURE_STORAGE_KEY',
    make: (r) => `${r.from(b64, 86)}==`.replace(/^(.{85})./, (_m, a: string) => `${a}A`),
  },
  'azure-sas-token': {
    name: 'BLOB_SAS_URL',
    make: (r) =>
      `https://acct${r.from(hex, 4)}.blob.core.windows.net/data?sv=2022-11-02&ss=b&srt=sco&sp=rl&se=2027-01-01T00:00:00Z&sig=${r.from(alnum, 44)}%3D`,
  },
  'azure-ad-client-secret': {
    name: 'AZURE_CLIENT_SECRET',
    make: (r) => `${r.from(alnum, 3)}${r.int(0, 9)}Q~${r.from(alnum + '_~.-', 34)}`,
  },
  'digitalocean-token': { name: 'DO_TOKEN', make: (r) => `dop_v1_${r.from(hex, 64)}` },
  'databricks-token': { name: 'DATABRICKS_HOST_TOKEN', make: (r) => `dapi${r.from(hex, 32)}` },
  'slack-bot-token': {
    name: 'SLACK_BOT',
    make: (r) =>
      `xoxb-${r.from('0123456789', 12)}-${r.from('0123456789', 13)}-${r.from(alnum, 24)}`,
  },
  'slack-user-token': {
    name: 'SLACK_USER',
    make: (r) =>
      `xoxp-${r.from('0123456789', 12)}-${r.from('0123456789', 12)}-${r.from('0123456789', 13)}-${r.from(hex, 32)}`,
  },
  'slack-app-token': {
    name: 'SLACK_APP',
    make: (r) => `xapp-1-A${r.from(upper32, 10)}-${r.from('0123456789', 13)}-${r.from(hex, 64)}`,
  },
  'slack-webhook': {
    name: 'SLACK_HOOK_URL',
    make: (r) =>
      `https://hooks.slack.com/services/T${r.from(upper32, 8)}/B${r.from(upper32, 10)}/${r.from(alnum, 24)}`,
  },
  'discord-webhook': {
    name: 'DISCORD_HOOK',
    make: (r) =>
      `https://discord.com/api/webhooks/${r.from('0123456789', 18)}/${r.from(urlsafe, 68)}`,
  },
  'stripe-secret-key': { name: 'STRIPE_KEY', make: (r) => `sk_live_${r.from(alnum, 48)}` },
  'stripe-restricted-key': { name: 'STRIPE_RK', make: (r) => `rk_live_${r.from(alnum, 48)}` },
  'stripe-webhook-secret': { name: 'STRIPE_WH', make: (r) => `whsec_${r.from(alnum, 32)}` },
  'openai-api-key': {
    name: 'OPENAI_KEY',
    make: (r) => `sk-proj-${r.from(urlsafe, 74)}T3BlbkFJ${r.from(urlsafe, 74)}`,
  },
  'anthropic-api-key': {
    name: 'ANTHROPIC_KEY',
    make: (r) => `sk-ant-api03-${r.from(urlsafe, 93)}AA`,
  },
  'anthropic-admin-key': {
    name: 'ANTHROPIC_ADMIN',
    make: (r) => `sk-ant-admin01-${r.from(urlsafe, 93)}AA`,
  },
  'huggingface-token': {
    name: 'HF_HUB',
    make: (r) => `hf_${r.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 34)}`,
  },
  'twilio-api-key': { name: 'TWILIO_API_SECRET', make: (r) => r.from(alnum, 32) },
  'twilio-auth-token': { name: 'TWILIO_AUTH_TOKEN', make: (r) => r.from(hex, 32) },
  'sendgrid-api-key': {
    name: 'SENDGRID',
    make: (r) => `SG.${r.from(urlsafe, 22)}.${r.from(urlsafe, 43)}`,
  },
  'mailgun-api-key': { name: 'MAILGUN', make: (r) => `key-${r.from(hex, 32)}` },
  'mailchimp-api-key': { name: 'MAILCHIMP', make: (r) => `${r.from(hex, 32)}-us${r.int(1, 21)}` },
  'datadog-api-key': { name: 'DD_API_KEY', make: (r) => r.from(hex, 32) },
  'datadog-app-key': { name: 'DD_APP_KEY', make: (r) => r.from(hex, 40) },
  'shopify-access-token': { name: 'SHOPIFY', make: (r) => `shpat_${r.from(hex, 32)}` },
  'shopify-shared-secret': { name: 'SHOPIFY_SS', make: (r) => `shpss_${r.from(hex, 32)}` },
  'telegram-bot-token': {
    name: 'TG_BOT',
    make: (r) => `${r.int(100000000, 999999999)}:AA${r.from(urlsafe, 33)}`,
  },
  'vault-service-token': { name: 'VAULT_TOKEN', make: (r) => `hvs.${r.from(urlsafe, 90)}` },
  'vault-batch-token': { name: 'VAULT_BATCH', make: (r) => `hvb.${r.from(urlsafe, 138)}` },
  'grafana-service-account-token': {
    name: 'GRAFANA_SA',
    make: (r) => `glsa_${r.from(alnum, 32)}_${r.from(hex, 8)}`,
  },
  'new-relic-user-key': {
    name: 'NEW_RELIC',
    make: (r) => `NRAK-${r.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', 27)}`,
  },
  'linear-api-key': { name: 'LINEAR', make: (r) => `lin_api_${r.from(alnum, 40)}` },
  'postman-api-key': {
    name: 'POSTMAN',
    make: (r) => `PMAK-${r.from(hex, 24)}-${r.from(hex, 34)}`,
  },
  'doppler-token': { name: 'DOPPLER', make: (r) => `dp.st.prd.${r.from(alnum, 43)}` },
  jwt: {
    name: 'SESSION_JWT',
    make: (r) =>
      `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: `svc-${r.from(hex, 8)}`, iat: 1700000000 + r.int(0, 1e6) })}.${r.from(urlsafe, 43)}`,
  },
  'age-secret-key': {
    name: 'AGE_KEY',
    make: (r) => `AGE-SECRET-KEY-1${r.from(bech32, 58).toUpperCase()}`,
  },
  'database-uri-password': {
    name: 'DATABASE_URL',
    make: (r) =>
      `postgres://app_${r.from(hex, 4)}:${r.from(alnum, 18)}@db-${r.from(hex, 6)}.internal:5432/orders`,
  },
  'basic-auth-url': {
    name: 'REGISTRY_URL',
    make: (r) => `https://deploy:${r.from(alnum, 16)}@registry.${r.from(hex, 6)}.corp.net/v2/`,
  },
  'generic-secret-assignment': {
    name: 'db_password',
    make: (r) => `${r.from(alnum, 6)}!${r.from(alnum, 6)}#${r.int(10, 99)}`,
  },
  'generic-secret-env': {
    name: 'SMTP_PASSWORD',
    make: (r) => `${r.from(alnum, 8)}%${r.from(alnum, 7)}`,
  },
  'rsa-private-key': { name: 'RSA_KEY', make: (r) => pemKey('rsa', r) },
  'ec-private-key': { name: 'EC_KEY', make: (r) => pemKey('ec', r) },
  'dsa-private-key': { name: 'DSA_KEY', make: (r) => pemKey('dsa', r) },
  'pkcs8-private-key': { name: 'PKCS8_KEY', make: (r) => pemKey('pkcs8', r) },
  'pkcs8-encrypted-private-key': { name: 'ENC_KEY', make: (r) => pemKey('enc', r) },
  'openssh-private-key': { name: 'SSH_KEY', make: (r) => pemKey('openssh', r) },
  'pgp-private-key': {
    name: 'PGP_KEY',
    make: (r) => {
      const body = Buffer.from(r.from(b64, 900)).toString('base64')
      const lines: string[] = []
      for (let j = 0; j < body.length; j += 64) lines.push(body.slice(j, j + 64))
      return `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n${lines.join('\n')}\n=${r.from(alnum, 4)}\n-----END PGP PRIVATE KEY BLOCK-----\n`
    },
  },
  'putty-private-key': {
    name: 'PUTTY_KEY',
    make: (r) => {
      const pub = Buffer.from(r.from(b64, 200)).toString('base64')
      const priv = Buffer.from(r.from(b64, 300)).toString('base64')
      const split = (s: string) => s.match(/.{1,64}/g)!.join('\n')
      return `PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy@build\nPublic-Lines: ${Math.ceil(pub.length / 64)}\n${split(pub)}\nPrivate-Lines: ${Math.ceil(priv.length / 64)}\n${split(priv)}\nPrivate-MAC: ${r.from(hex, 64)}\n`
    },
  },
}
