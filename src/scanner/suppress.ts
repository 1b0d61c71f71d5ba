/**
 * Placeholder and fixture suppression: values that are documentation, templates or test data,
 * not credentials. Applied to every rule unless it sets `noPlaceholderCheck`.
 */
const placeholderWords =
  /example|your[-_]|your(?:api|key|token|secret|pass)|placeholder|changeme|change[-_]me|dummy|redacted|sample|replace[-_]?me|insert[-_]|notreal|not[-_]a[-_]real|fake[-_]|[-_]fake|lorem|\*\*\*|\.\.\.|…/i

const templateSyntax = /\$\{|\$\(|\{\{|\}\}|<[^>]*>|%\(|%[sd]\b|^\$[A-Za-z_]/

/**
 * A character repeated 8 times, or an obvious ascending run. (Random digits repeat 6 times too
 * often: 25 random digits hold a run of 6 once in about 5,000 tokens.)
 */
const lowEffort = /(.)\1{7}|01234567|12345678|abcdefgh/i

/** Runs of x in one case (`xxxx`, `XXXX`); mixed case (`xXxX`) occurs in random tokens. */
const xRun = /xxxx|XXXX/

export function isPlaceholder(secret: string): boolean {
  return (
    placeholderWords.test(secret) ||
    xRun.test(secret) ||
    templateSyntax.test(secret) ||
    lowEffort.test(secret)
  )
}

/** Lines that hold hashes, not secrets: lockfile integrity and checksum entries. */
const hashLine =
  /\bintegrity\b|\b(?:sha1|sha256|sha384|sha512)-[A-Za-z0-9+/=]{20,}|"resolved"\s*:|\bchecksum\b/i

export function isHashLine(line: string): boolean {
  return hashLine.test(line)
}

/** The inline allow marker: on the finding's line, or `tessera:allow-next-line` on the line above. */
export const allowMarker = 'tessera:allow'
