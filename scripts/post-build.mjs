// Makes the compiled CLI entry executable so `npx tessera` and the npm bin link can run it.
import { chmodSync, existsSync } from 'node:fs'

const entry = new URL('../dist/cli/main.js', import.meta.url)
if (existsSync(entry)) chmodSync(entry, 0o755)
