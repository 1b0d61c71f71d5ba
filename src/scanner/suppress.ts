/**
 * Placeholder and fixture suppression: values that are documentation, templates or test data,
 * not credentials. Applied to every rule unless it sets `noPlaceholderCheck`.
 */
const placeholderWords =
  /example|xxxx|your[-_]?|placeholder|changeme|change[-_]me|dummy|redacted|sample|replace[-_]?me|insert[-_]|notreal|not[-_]a[-_]real|fake|lorem|\*\*\*|\.\.\.|…/i

const templateSyntax = /\$\{|\$\(|\{\{|\}\}|<[^>]*>|%\(|%[sd]\b|^\$[A-Za-z_]/

/** A character repeated 6 times, or an obvious ascending run. */
const lowEffort = /(.)\1{5}|0123456|1234567|abcdefgh/i

export function isPlaceholder(secret: string): boolean {
  return placeholderWords.test(secret) || templateSyntax.test(secret) || lowEffort.test(secret)
}

/** Lines that hold hashes, not secrets: lockfile integrity and checksum entries. */
const hashLine =
  /\bintegrity\b|\b(?:sha1|sha256|sha384|sha512)-[A-Za-z0-9+/=]{20,}|"resolved"\s*:|\bchecksum\b/i

export function isHashLine(line: string): boolean {
  return hashLine.test(line)
}

/** The inline allow marker: on the finding's line, or `tessera:allow-next-line` on the line above. */
export const allowMarker = 'tessera:allow'
