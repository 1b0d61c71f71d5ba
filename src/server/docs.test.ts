import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { errorCatalog, problemType, type TesseraErrorCode } from '../errors.js'
import { generateOpenApiDocument } from './openapi.js'

const docsDir = new URL('../../docs/', import.meta.url)

describe('docs/errors.md', () => {
  const rows = new Map<string, string[]>()
  for (const line of readFileSync(new URL('errors.md', docsDir), 'utf8').split('\n')) {
    const cells = line.split('|').map((c) => c.trim())
    const code = /^`(TSR_[A-Z0-9_]+)`$/.exec(cells[1] ?? '')?.[1]
    if (code) rows.set(code, cells)
  }

  it('documents every code of errorCatalog with its type URI and status', () => {
    for (const [code, { status }] of Object.entries(errorCatalog)) {
      const cells = rows.get(code)
      assert.ok(cells, `docs/errors.md has no row for ${code}`)
      assert.equal(cells[2], `\`${problemType(code as TesseraErrorCode)}\``, `type URI of ${code}`)
      assert.equal(cells[3], String(status), `status of ${code}`)
      assert.ok((cells[4] ?? '').length > 10, `meaning of ${code}`)
    }
  })

  it('documents no code that does not exist', () => {
    for (const code of rows.keys())
      assert.ok(code in errorCatalog, `${code} is not in errorCatalog`)
  })
})

describe('docs/openapi.json', () => {
  it('matches the routes (regenerate with `npx tsx scripts/write-openapi.ts`)', async () => {
    const committed = readFileSync(new URL('openapi.json', docsDir), 'utf8')
    assert.equal(await generateOpenApiDocument(), committed)
  })

  it('gives every operation a tag, a summary and, unless public, the bearer scheme', async () => {
    const doc = JSON.parse(await generateOpenApiDocument()) as {
      paths: Record<
        string,
        Record<string, { tags?: string[]; summary?: string; security?: unknown[] }>
      >
    }
    // Public: the probes, the trust bundle, and agent attestation (the evidence is the credential).
    const publicPaths = new Set([
      '/healthz',
      '/readyz',
      '/v1/bundle',
      '/.well-known/jwks.json',
      '/v1/agent/attest',
    ])
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(operations)) {
        assert.ok(op.tags?.length, `${method} ${path} has no tag`)
        assert.ok(op.summary, `${method} ${path} has no summary`)
        // Other public operations say so with `security: []`.
        const declaredPublic = Array.isArray(op.security) && op.security.length === 0
        if (!publicPaths.has(path) && !declaredPublic) {
          // The agent API authenticates agents by a proof signed with their SVID key.
          const scheme = path.startsWith('/v1/agent/') ? 'agentProof' : 'bearerAuth'
          assert.deepEqual(op.security?.[0], { [scheme]: [] }, `${method} ${path} security`)
        }
      }
    }
  })
})
