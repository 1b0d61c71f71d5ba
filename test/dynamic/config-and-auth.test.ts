import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { testRoot } from '../../src/ca/testing/pki.js'
import { TesseraError } from '../../src/errors.js'
import { dynamicUsername } from '../../src/lifecycle/dynamic/credential-material.js'
import { allowed, parseDynamicConfig } from '../../src/lifecycle/dynamic/dynamic-config.js'
import { createWorkloadAuthenticator } from '../../src/lifecycle/dynamic/workload-auth.js'
import { systemClock } from '../../src/runtime/clock.js'

describe('dynamic credentials configuration', () => {
  it('parses a valid file with defaults', () => {
    const config = parseDynamicConfig(
      {
        backends: {
          main: {
            type: 'postgres',
            urlEnv: 'PG_ADMIN',
            templates: { reader: { role: 'app_reader', allow: ['spiffe://td/ns/shop/*'] } },
          },
          cache: {
            type: 'redis',
            url: 'redis://127.0.0.1:6379',
            maxTtlSeconds: 600,
            templates: {
              get: { rules: ['~c:*', '+get', '-@dangerous'], allow: ['spiffe://td/a'] },
            },
          },
        },
      },
      { PG_ADMIN: 'postgres://admin@db/app' },
    )
    assert.equal(config.reaperIntervalSeconds, 5)
    assert.equal(config.backends[0]!.url, 'postgres://admin@db/app')
    assert.equal(config.backends[0]!.defaultTtlSeconds, 900)
    assert.equal(config.backends[1]!.defaultTtlSeconds, 600)
  })

  it('reports every problem at once, and refuses password rules in templates', () => {
    let err: TesseraError | undefined
    try {
      parseDynamicConfig({
        reaperIntervalSeconds: 0,
        extra: true,
        backends: {
          Bad_Name: { type: 'mysql', url: 'x', templates: {} },
          pg: {
            type: 'postgres',
            urlEnv: 'UNSET',
            templates: { t: { allow: [], statements: ['GRANT SELECT ON x TO someone'] } },
          },
          r: {
            type: 'redis',
            url: 'postgres://wrong',
            templates: { t: { allow: ['not-spiffe'], rules: ['>secret', 'nopass', 'on', '+get'] } },
          },
        },
      })
    } catch (e) {
      err = e as TesseraError
    }
    assert.equal(err?.code, 'TSR_CONFIG')
    const problems = (err?.details?.problems ?? []) as string[]
    for (const expected of [
      'reaperIntervalSeconds',
      'unknown setting "extra"',
      'backends.Bad_Name: a backend name',
      'backends.Bad_Name.type',
      'backends.Bad_Name.templates: none given',
      'UNSET is not set',
      'has no {{role}}',
      'name at least one SPIFFE ID',
      'not a redis URL',
      '"not-spiffe" is not a SPIFFE ID',
      '">secret" is not a key, channel or command rule',
      '"nopass" is not',
      '"on" is not',
    ]) {
      assert.ok(
        problems.some((p) => p.includes(expected)),
        `missing "${expected}" in ${problems.join(' | ')}`,
      )
    }
    assert.ok(!problems.some((p) => p.includes('"+get"')))
  })

  it('matches allow entries exactly or by a path prefix ending in /*', () => {
    const allow = ['spiffe://td/ns/shop/*', 'spiffe://td/exact']
    assert.ok(allowed(allow, 'spiffe://td/ns/shop/sa/api'))
    assert.ok(allowed(allow, 'spiffe://td/exact'))
    assert.ok(!allowed(allow, 'spiffe://td/ns/shopping/sa/api'))
    assert.ok(!allowed(allow, 'spiffe://td/exact/more'))
    assert.ok(!allowed(allow, 'spiffe://other/ns/shop/sa/api'))
  })

  it('makes usernames PostgreSQL and Redis accept for any SPIFFE ID', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2048 }), (id) => {
        const name = dynamicUsername(id)
        return /^tsr_[0-9a-f]{10}_[a-z2-7]{12}$/.test(name) && name.length <= 63
      }),
    )
  })
})

describe('workload authentication (fuzzed)', () => {
  const root = testRoot('fuzz.example.org')
  const auth = createWorkloadAuthenticator({
    ca: {
      trustDomain: 'fuzz.example.org',
      bundle: async () => ({
        trustDomain: 'fuzz.example.org',
        x509Authorities: [root.der],
        jwtAuthorities: [],
        sequence: 1,
        refreshHintSeconds: 60,
      }),
      validateJwtSvid: async () => {
        throw new Error('no JWT keys')
      },
    },
    clock: systemClock,
    isRevoked: async () => false,
  })
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v) ?? 'null').toString('base64url')

  it('answers any Authorization header with TSR_DYNAMIC_UNAUTHENTICATED, never a crash', async () => {
    const header = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ maxLength: 300 }).map((s) => `Bearer ${s}`),
      fc
        .tuple(
          fc.record({
            alg: fc.constantFrom('ES256', 'none', 'HS256', 'RS256'),
            typ: fc.constantFrom('tessera-workload+jwt', 'JWT', undefined),
            x5c: fc.oneof(
              fc.constant(undefined),
              fc.array(fc.base64String({ maxLength: 200 }), { maxLength: 3 }),
              fc.constant([root.der.toString('base64')]),
              fc.anything(),
            ),
          }),
          fc.anything(),
          fc.base64String({ maxLength: 100 }),
        )
        .map(([h, p, sig]) => `Bearer ${b64(h)}.${b64(p)}.${sig.replace(/[+/=]/g, 'A')}`),
    )
    await fc.assert(
      fc.asyncProperty(header, async (authorization) => {
        try {
          await auth.authenticate({
            authorization,
            method: 'POST',
            pathAndQuery: '/v1/dynamic/pg',
            body: '{}',
          })
          return false
        } catch (err) {
          return err instanceof TesseraError && err.code === 'TSR_DYNAMIC_UNAUTHENTICATED'
        }
      }),
      { numRuns: 300 },
    )
  })
})
