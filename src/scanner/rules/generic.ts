import type { RuleSetSpec } from '../types.js'

const r = String.raw

const names = r`(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?)`

/**
 * Credentials without a vendor format: passwords in connection URIs and URLs, and assignments to
 * names that say "password", "secret", "token"… with a value that is neither a placeholder nor a
 * reference. They run after the vendor rules, which win when both match the same text.
 */
export const genericRules: RuleSetSpec = {
  version: 1,
  name: 'generic',
  description: 'passwords in URIs and generic secret assignments, gated by entropy',
  rules: [
    {
      id: 'database-uri-password',
      title: 'Database connection URI with a password',
      severity: 'high',
      credentialType: 'connection_string',
      keywords: [
        'postgres',
        'mysql',
        'mariadb',
        'mongodb',
        'redis',
        'amqp',
        'mssql',
        'sqlserver',
        'cockroachdb',
        'clickhouse',
      ],
      regex: r`\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|cockroachdb|clickhouse)://[^:/\s@'"\x60]{0,64}:(?<secret>[^@\s'"\x60/]{4,128})@[A-Za-z0-9._-]+`,
      entropy: 2.5,
    },
    {
      id: 'basic-auth-url',
      title: 'URL with embedded credentials',
      severity: 'high',
      credentialType: 'password',
      keywords: ['http://', 'https://', 'ftp://', 'ftps://'],
      regex: r`\b(?:https?|ftps?)://[^:/\s@'"\x60]{1,64}:(?<secret>[^@\s'"\x60/]{4,128})@[A-Za-z0-9._-]+\.[A-Za-z0-9._-]+`,
      entropy: 2.5,
    },
    {
      id: 'generic-secret-assignment',
      title: 'Hard-coded password or secret (quoted)',
      severity: 'medium',
      credentialType: 'password',
      keywords: [
        'password',
        'passwd',
        'passphrase',
        'pwd',
        'secret',
        'token',
        'api_key',
        'api-key',
        'apikey',
        'access_key',
        'accesskey',
        'access-key',
        'private_key',
        'privatekey',
        'credential',
      ],
      regex: r`${names}[A-Za-z0-9_.-]{0,30}(?<!id|name|file|path|url|uri|header|type|field|len|length|size)["']?\s*(?:[:=]|=>|:=)\s*["'](?<secret>[^"'\s]{8,200})["']`,
      flags: 'i',
      entropy: 3,
      validator: 'generic-value',
    },
    {
      id: 'generic-secret-env',
      title: 'Hard-coded password or secret (unquoted)',
      severity: 'medium',
      credentialType: 'password',
      keywords: [
        'password',
        'passwd',
        'passphrase',
        'pwd',
        'secret',
        'token',
        'api_key',
        'api-key',
        'apikey',
        'access_key',
        'accesskey',
        'access-key',
        'private_key',
        'privatekey',
        'credential',
      ],
      regex: r`^[ \t]*(?:export[ \t]+|ENV[ \t]+|-[ \t]+)?[A-Za-z0-9_.-]{0,64}${names}[A-Za-z0-9_.-]{0,64}[ \t]*[=:][ \t]*(?<secret>[^\s"'#$\x60]{8,200})[ \t]*\r?$`,
      flags: 'im',
      entropy: 3,
      validator: 'generic-value',
    },
  ],
}
