import type { EnvelopeSealer } from '../../ca/envelope.js'
import { TesseraError } from '../../errors.js'
import type { Store } from '../../store/store.js'
import type { ManagedSecretTable } from '../../store/schema.js'
import type { Selectable } from 'kysely'
import type { CredentialVersion } from './rotator.js'

export type ManagedSecretRow = Selectable<ManagedSecretTable>

/**
 * Seals and opens a managed secret's values. The sealing context binds each blob to its secret and
 * its role (`value`, `config`), so a blob copied to another row or column does not open.
 */
export function createSecretVault(sealer: EnvelopeSealer) {
  const ctx = (name: string, what: string) => `managed-secret:${name}:${what}`
  return {
    kekId: sealer.kekId,
    sealValue(name: string, version: CredentialVersion): Buffer {
      return sealer.seal(ctx(name, 'value'), Buffer.from(version.value, 'utf8'))
    },
    openValue(name: string, sealed: Uint8Array, meta: Record<string, unknown>): CredentialVersion {
      return { value: sealer.open(ctx(name, 'value'), sealed).toString('utf8'), meta }
    },
    sealConfig(name: string, config: Record<string, unknown>): Buffer {
      return sealer.seal(ctx(name, 'config'), Buffer.from(JSON.stringify(config), 'utf8'))
    },
    openConfig(name: string, sealed: Uint8Array): Record<string, unknown> {
      return JSON.parse(sealer.open(ctx(name, 'config'), sealed).toString('utf8')) as Record<
        string,
        unknown
      >
    },
    checkKek(row: Pick<ManagedSecretRow, 'name' | 'kek_id'>): void {
      if (row.kek_id !== sealer.kekId) {
        throw new TesseraError(
          'TSR_CONFIG',
          `the managed secret ${row.name} is sealed with ${row.kek_id}, but this server's key-encryption key is ${sealer.kekId}`,
        )
      }
    },
  }
}
export type SecretVault = ReturnType<typeof createSecretVault>

export async function loadSecret(
  store: Pick<Store, 'db'>,
  name: string,
): Promise<ManagedSecretRow> {
  const row = await store.db
    .selectFrom('managed_secret')
    .selectAll()
    .where('name', '=', name)
    .executeTakeFirst()
  if (!row) throw new TesseraError('TSR_NOT_FOUND', `no managed secret named ${name}`)
  return row
}

/** Names: what a SPIFFE path segment or a file name can hold, so they travel anywhere. */
export const secretNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

export function checkSecretName(name: string): string {
  if (!secretNamePattern.test(name)) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `a secret name is 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit (got ${JSON.stringify(name)})`,
    )
  }
  return name
}
