/**
 * Aho-Corasick automaton over lower-cased ASCII keywords: one pass over a text finds every
 * occurrence of every keyword, case-insensitively, overlapping ones included.
 */
export interface KeywordMatcher {
  /** Calls `onHit(keywordIndex, start)` for each occurrence, in text order. */
  scan(text: string, onHit: (keyword: number, start: number) => void): void
}

const alphabet = 128

export function createKeywordMatcher(keywords: readonly string[]): KeywordMatcher {
  // Trie.
  const next: number[][] = [new Array<number>(alphabet).fill(-1)]
  const outputs: number[][] = [[]]
  keywords.forEach((kw, k) => {
    let s = 0
    for (let i = 0; i < kw.length; i++) {
      const c = kw.charCodeAt(i)
      if (c >= alphabet) throw new Error(`keyword "${kw}" is not ASCII`)
      if (next[s]![c] === -1) {
        next.push(new Array<number>(alphabet).fill(-1))
        outputs.push([])
        next[s]![c] = next.length - 1
      }
      s = next[s]![c]!
    }
    outputs[s]!.push(k)
  })
  // Failure links by breadth-first search, folded into a full transition table.
  const n = next.length
  const delta = new Int32Array(n * alphabet)
  const fail = new Int32Array(n)
  const queue: number[] = []
  for (let c = 0; c < alphabet; c++) {
    const t = next[0]![c]!
    delta[c] = t === -1 ? 0 : t
    if (t !== -1) {
      fail[t] = 0
      queue.push(t)
    }
  }
  for (let qi = 0; qi < queue.length; qi++) {
    const s = queue[qi]!
    outputs[s]!.push(...outputs[fail[s]!]!)
    for (let c = 0; c < alphabet; c++) {
      const t = next[s]![c]!
      if (t === -1) {
        delta[s * alphabet + c] = delta[fail[s]! * alphabet + c]!
      } else {
        fail[t] = delta[fail[s]! * alphabet + c]!
        delta[s * alphabet + c] = t
        queue.push(t)
      }
    }
  }
  const lengths = Int32Array.from(keywords.map((k) => k.length))
  const hasOut = new Uint8Array(n)
  const out = outputs.map((o) => Int32Array.from(o))
  for (let s = 0; s < n; s++) hasOut[s] = out[s]!.length > 0 ? 1 : 0
  return {
    scan(text, onHit) {
      let s = 0
      const len = text.length
      for (let i = 0; i < len; i++) {
        let c = text.charCodeAt(i)
        if (c >= alphabet) {
          s = 0
          continue
        }
        if (c >= 65 && c <= 90) c += 32
        s = delta[(s << 7) | c]!
        if (hasOut[s] === 1) {
          const o = out[s]!
          for (let j = 0; j < o.length; j++) onHit(o[j]!, i - lengths[o[j]!]! + 1)
        }
      }
    },
  }
}
