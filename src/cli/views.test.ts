import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { EdgeView, Graph, GraphNode } from '../inventory/inventory-types.js'
import { renderGraph, renderIdentityList } from './views.js'

const node = (id: string, type: GraphNode['type'], depth: number, label = id): GraphNode => ({
  id,
  type,
  ref: `ref-${id}`,
  label,
  depth,
  attributes: {},
})
const edge = (
  id: string,
  edgeType: EdgeView['edgeType'],
  from: [GraphNode['type'], string],
  to: [GraphNode['type'], string],
): EdgeView => ({
  id,
  edgeType,
  from: { type: from[0], id: from[1], ref: `ref-${from[1]}` },
  to: { type: to[0], id: to[1], ref: `ref-${to[1]}` },
  source: 's',
})

describe('renderGraph', () => {
  it('draws a tree from the root with edge directions, then the edges that close cycles', () => {
    const g: Graph = {
      root: 'a',
      nodes: [
        node('a', 'identity', 0, 'app'),
        node('b', 'identity', 1),
        node('c', 'credential', 1),
        node('o', 'owner', 1),
      ],
      edges: [
        edge('e1', 'can_assume', ['identity', 'a'], ['identity', 'b']),
        edge('e2', 'uses_credential', ['identity', 'a'], ['credential', 'c']),
        edge('e3', 'owns', ['owner', 'o'], ['identity', 'a']),
        edge('e4', 'uses_credential', ['identity', 'b'], ['credential', 'c']),
      ],
      truncated: true,
    }
    assert.equal(
      renderGraph(g),
      [
        'identity app  ref-a',
        '├─ → can_assume  identity b  ref-b',
        '├─ → uses_credential  credential c  ref-c',
        '└─ ← owns  owner o  ref-o',
        '',
        'other edges:',
        '  identity b  ref-b  → uses_credential →  credential c  ref-c',
        '',
        '4 nodes, 4 edges (truncated: raise --limit)',
        '',
      ].join('\n'),
    )
  })
  it('nests deeper levels and cleans control characters from labels', () => {
    const g: Graph = {
      root: 'a',
      nodes: [
        node('a', 'identity', 0),
        node('b', 'identity', 1, 'evil\u001b[2J'),
        node('c', 'identity', 2),
      ],
      edges: [
        edge('e1', 'can_assume', ['identity', 'a'], ['identity', 'b']),
        edge('e2', 'can_assume', ['identity', 'b'], ['identity', 'c']),
      ],
      truncated: false,
    }
    const out = renderGraph(g)
    assert.match(out, /^└─ → can_assume {2}identity evil\?\[2J {2}ref-b$/m)
    assert.match(out, /^ {3}└─ → can_assume {2}identity c {2}ref-c$/m)
    assert.ok(!out.includes('\u001b'))
  })
})

describe('renderIdentityList', () => {
  it('says so when empty and shows never-used identities as never', () => {
    assert.equal(renderIdentityList([], new Date()), 'no identities\n')
    const out = renderIdentityList(
      [
        {
          id: 'i',
          ref: 'arn:aws:iam::123456789012:role/' + 'x'.repeat(80),
          kind: 'iam_role',
          name: 'r',
          source: 'aws:prod',
          owner: null,
          createdBy: null,
          state: 'active',
          createdAt: null,
          lastUsedAt: null,
          lastSeenAt: '2026-01-01T00:00:00Z',
          validFrom: '2026-01-01T00:00:00Z',
          validTo: null,
          attributes: {},
        },
      ],
      new Date('2026-02-01T00:00:00Z'),
    )
    const row = out.split('\n')[1]!
    assert.match(row, /^r\s+iam_role\s+aws:prod\s+-\s+active\s+never\s+arn:aws:iam::1.*…x+$/)
    assert.equal(row.slice(row.indexOf('arn:')).length, 60)
  })
})
