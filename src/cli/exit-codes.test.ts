import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CommanderError, InvalidArgumentError } from 'commander'
import { TesseraError } from '../errors.js'
import { exitCodeFor, formatError } from './exit-codes.js'

describe('exitCodeFor', () => {
  it('maps usage, denial, findings and runtime errors', () => {
    assert.equal(
      exitCodeFor(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'")),
      2,
    )
    assert.equal(exitCodeFor(new InvalidArgumentError('must be a number')), 2)
    assert.equal(exitCodeFor(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)')), 0)
    assert.equal(exitCodeFor(new CommanderError(0, 'commander.version', '0.1.0')), 0)
    assert.equal(exitCodeFor(new CommanderError(0, 'commander.help', '(outputHelp)')), 0)
    // `tessera inventory` without a subcommand: help on stderr, and a usage error
    assert.equal(exitCodeFor(new CommanderError(1, 'commander.help', '(outputHelp)')), 2)
    assert.equal(exitCodeFor(new TesseraError('TSR_VALIDATION', 'bad --at')), 2)
    assert.equal(exitCodeFor(new TesseraError('TSR_AUTH_SCOPE', 'needs write')), 1)
    assert.equal(exitCodeFor(new TesseraError('TSR_NOT_FOUND', 'no identity')), 1)
    assert.equal(exitCodeFor(new TesseraError('TSR_AUTH_INVALID', 'bad token')), 3)
    assert.equal(exitCodeFor(new TesseraError('TSR_AUTH_MISSING', 'no token')), 3)
    assert.equal(exitCodeFor(new TesseraError('TSR_CLIENT_HTTP', 'cannot reach')), 3)
    assert.equal(exitCodeFor(new TesseraError('TSR_STORE_UNAVAILABLE', 'locked')), 3)
    assert.equal(exitCodeFor(new Error('boom')), 3)
    assert.equal(exitCodeFor('thrown string'), 3)
  })
})

describe('formatError', () => {
  const err = new TesseraError('TSR_STORE_UNAVAILABLE', 'the data dir is in use')
  it('prints message and code, and no stack by default', () => {
    assert.equal(
      formatError(err, { json: false, debug: false }),
      'error: the data dir is in use (TSR_STORE_UNAVAILABLE)\n',
    )
  })
  it('prints one JSON object with --json', () => {
    assert.deepEqual(JSON.parse(formatError(err, { json: true, debug: false })), {
      error: { code: 'TSR_STORE_UNAVAILABLE', message: 'the data dir is in use' },
    })
  })
  it("adds the stack only in debug mode, and strips commander's prefix", () => {
    assert.match(formatError(err, { json: false, debug: true }), /\n\s+at /)
    assert.equal(
      formatError(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'"), {
        json: false,
        debug: false,
      }),
      "error: unknown option '--x' (TSR_VALIDATION)\n",
    )
    assert.equal(
      formatError(new Error('boom'), { json: false, debug: false }),
      'error: boom (TSR_INTERNAL)\n',
    )
  })
})
