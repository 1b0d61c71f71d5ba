import type { Store } from '../src/store/index.js'
export async function evaluate(_store: Store): Promise<void> {}
