import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isTesseraError } from '../../src/errors.js'
import { parseCodeowners, codeownersFor } from '../../src/inventory/owners/codeowners.js'
import { parseCsvRecords, parseOwnerCsv } from '../../src/inventory/owners/owner-csv.js'
import { applyScimPatch } from '../../src/inventory/owners/scim-patch.js'
import { parseScimDocument, parseScimUser } from '../../src/inventory/owners/scim.js'
import { parsePolicy } from '../../src/policy/governance/policy-parse.js'

/** Untrusted input either parses or fails with a TesseraError: never another exception. */
function onlyTesseraErrors(fn: () => unknown): void {
  try {
    fn()
  } catch (err) {
    assert.ok(isTesseraError(err), `unexpected ${String(err)}`)
  }
}

const cell = fc.string({ maxLength: 12 })
const csvField = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s)

describe('owner parsers under fuzzing', () => {
  it('CSV records round-trip: what is quoted by RFC 4180 comes back as written', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(cell, { minLength: 2, maxLength: 5 }), { minLength: 1, maxLength: 6 }),
        (rows) => {
          // Rows whose only field is empty are blank lines, which carry no record.
          const text = rows.map((r) => r.map(csvField).join(',')).join('\r\n')
          const parsed = parseCsvRecords(text).map((r) => r.fields)
          assert.deepEqual(parsed, rows)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('arbitrary text through the owners CSV parser fails only with TesseraErrors', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (tail) => {
        onlyTesseraErrors(() => parseOwnerCsv('type,name,email,status,team\n' + tail))
        onlyTesseraErrors(() => parseOwnerCsv(tail))
      }),
      { numRuns: 500 },
    )
  })

  it('generated valid owner rows parse to the refs and statuses written', () => {
    const person = fc.record({
      local: fc.stringMatching(/^[a-z][a-z0-9.]{0,10}$/),
      name: fc
        .string({ minLength: 1, maxLength: 20 })
        // eslint-disable-next-line no-control-regex -- names with control characters are refused
        .filter((s) => s.trim() !== '' && !/[\u0000-\u001f\u007f]/.test(s)),
      status: fc.constantFrom('active', 'departed', 'suspended'),
    })
    fc.assert(
      fc.property(
        fc.uniqueArray(person, { selector: (p) => p.local, minLength: 1, maxLength: 8 }),
        (people) => {
          const text =
            'type,name,email,status\n' +
            people
              .map((p) =>
                ['person', csvField(p.name), `${p.local}@acme.example`, p.status].join(','),
              )
              .join('\n')
          const records = parseOwnerCsv(text)
          assert.deepEqual(
            records.map((r) => [r.ref, r.status, r.name]),
            people.map((p) => [`${p.local}@acme.example`, p.status, p.name.trim()]),
          )
        },
      ),
      { numRuns: 200 },
    )
  })

  it('arbitrary JSON through the SCIM parser fails only with TesseraErrors', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (doc) => {
        onlyTesseraErrors(() => parseScimDocument(doc))
        onlyTesseraErrors(() => parseScimUser(doc))
      }),
      { numRuns: 500 },
    )
  })

  it('SCIM users: active false is departed, the ref is the lower-case primary email', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z][A-Za-z0-9.]{0,10}$/),
        fc.boolean(),
        fc.boolean(),
        (local, active, asString) => {
          const email = `${local}@Acme.Example`
          const r = parseScimUser({
            userName: local,
            emails: [{ value: 'other@acme.example' }, { value: email, primary: true }],
            active: asString ? String(active) : active,
          })
          assert.equal(r.ref, email.toLowerCase())
          assert.equal(r.status, active ? 'active' : 'departed')
        },
      ),
      { numRuns: 200 },
    )
  })

  it('PatchOp: arbitrary operations fail only with TesseraErrors; replace active then reads back', () => {
    const base = { userName: 'a', active: true, emails: [{ value: 'a@b.c', type: 'work' }] }
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), fc.string({ maxLength: 40 }), (value, path) => {
        onlyTesseraErrors(() =>
          applyScimPatch(base, {
            schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
            Operations: [{ op: 'replace', path, value }],
          }),
        )
        onlyTesseraErrors(() => applyScimPatch(base, value))
      }),
      { numRuns: 500 },
    )
    const out = applyScimPatch(base, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [
        { op: 'Replace', path: 'active', value: false },
        { op: 'replace', path: 'emails[type eq "work"].value', value: 'new@b.c' },
      ],
    })
    assert.equal(out.active, false)
    assert.deepEqual(out.emails, [{ value: 'new@b.c', type: 'work' }])
    assert.equal(base.active, true)
  })

  it('policy and CODEOWNERS text: arbitrary input fails only with TesseraErrors', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.string({ maxLength: 40 }), (text, path) => {
        onlyTesseraErrors(() => parsePolicy(text))
        onlyTesseraErrors(() => parsePolicy('version: 1\n' + text))
        const rules = parseCodeowners(text)
        onlyTesseraErrors(() => codeownersFor(rules, path))
      }),
      { numRuns: 300 },
    )
  })
})
