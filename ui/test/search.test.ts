// The shared search vectors (orchestrator/contracts/search_vectors.json): the Python parser runs the same file.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { matches, parse, SearchError, type SearchableNode } from '../src/search';

interface Vector {
  query: string;
  ast?: { terms: Record<string, unknown>[] };
  error?: boolean;
  matches?: string[];
}
const file = fileURLToPath(new URL('../../orchestrator/contracts/search_vectors.json', import.meta.url));
const shared = JSON.parse(readFileSync(file, 'utf8')) as { nodes: SearchableNode[]; vectors: Vector[] };

describe('search grammar: shared vectors', () => {
  it('has vectors to run', () => {
    expect(shared.vectors.length).toBeGreaterThan(20);
  });
  for (const v of shared.vectors) {
    it(`${JSON.stringify(v.query)} ${v.error ? 'is an error' : 'parses and matches'}`, () => {
      if (v.error) {
        expect(() => parse(v.query)).toThrow(SearchError);
        return;
      }
      const q = parse(v.query);
      expect(q).toEqual(v.ast);
      expect(shared.nodes.filter((n) => matches(q, n)).map((n) => n.id)).toEqual(v.matches);
    });
  }
});
