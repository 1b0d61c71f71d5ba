// Makes the compiled CLI entry executable so `npx tessera` and the npm bin link can run it, and copies
// the non-TypeScript assets the compiled code loads at run time (the Workload API proto).
import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs'

const entry = new URL('../dist/cli/main.js', import.meta.url)
if (existsSync(entry)) chmodSync(entry, 0o755)

const proto = new URL('../src/workload-api/workload.proto', import.meta.url)
const protoOut = new URL('../dist/workload-api/', import.meta.url)
if (existsSync(proto)) {
  mkdirSync(protoOut, { recursive: true })
  copyFileSync(proto, new URL('workload.proto', protoOut))
}
