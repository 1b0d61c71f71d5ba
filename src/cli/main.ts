#!/usr/bin/env node
import { runCli } from './program.js'

// A closed pipe (`tessera inventory export | head`) is a normal end, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw err
})

process.exitCode = await runCli(process.argv.slice(2))
