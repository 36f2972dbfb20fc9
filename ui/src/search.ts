// The topology search grammar: a TypeScript twin of orchestrator/contracts/search.py (see its docstring).
// Both run the shared vectors in orchestrator/contracts/search_vectors.json, so the graph highlights exactly
// what the API's filter returns.

export const MAX_QUERY_CHARS = 512;
export const MAX_TERMS = 32;

export type Op = '>' | '>=' | '<' | '<=' | '=' | '!=';
export type Term =
  | { type: 'word'; value: string; negate: boolean }
  | { type: 'field'; field: string; value: string; negate: boolean }
  | { type: 'compare'; metric: string; op: Op; value: number; negate: boolean };

export interface Query {
  terms: Term[];
}

export interface SearchableNode {
  id: string;
  label: string;
  metadata: Record<string, string>;
  metrics: Record<string, number>;
}

export class SearchError extends Error {}

const COMPARE = /^([A-Za-z_][A-Za-z0-9_]*)(>=|<=|!=|>|<|=)([\s\S]*)$/;
const NUMBER = /^-?[0-9]+(\.[0-9]+)?$/;
const FIELD = /^([A-Za-z_][A-Za-z0-9_./-]*):([\s\S]*)$/;
const SPACE = /\s/;

function tokens(query: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  let quoteAt = 0;
  for (let i = 0; i < query.length; i++) {
    const ch = query[i];
    if (ch === '"') {
      quoted = !quoted;
      quoteAt = i;
      current += ch;
    } else if (SPACE.test(ch) && !quoted) {
      if (current) {
        out.push(current);
        current = '';
      }
    } else {
      current += ch;
    }
  }
  if (quoted) throw new SearchError(`unterminated quote at position ${quoteAt + 1}`);
  if (current) out.push(current);
  return out;
}

function value(text: string, token: string): string {
  if (text.length >= 2 && text[0] === '"' && text[text.length - 1] === '"' && !text.slice(1, -1).includes('"')) {
    text = text.slice(1, -1);
  } else if (text.includes('"')) {
    throw new SearchError(`${token}: a quote may only enclose a whole value`);
  }
  if (!text) throw new SearchError(`${token}: empty value`);
  return text;
}

export function parse(query: string): Query {
  if (query.length > MAX_QUERY_CHARS) throw new SearchError(`the search is longer than ${MAX_QUERY_CHARS} characters`);
  const terms: Term[] = [];
  for (const token of tokens(query)) {
    const negate = token.startsWith('-') && token.length > 1;
    const body = negate ? token.slice(1) : token;
    let m = COMPARE.exec(body);
    if (m) {
      const [, metric, op, number] = m;
      if (!NUMBER.test(number)) throw new SearchError(`${token}: expected a number after '${op}'`);
      terms.push({ type: 'compare', metric: metric.toLowerCase(), op: op as Op, value: Number(number), negate });
      continue;
    }
    m = FIELD.exec(body);
    if (m) {
      terms.push({ type: 'field', field: m[1].toLowerCase(), value: value(m[2], token), negate });
      continue;
    }
    terms.push({ type: 'word', value: value(body, token), negate });
  }
  if (terms.length > MAX_TERMS) throw new SearchError(`more than ${MAX_TERMS} terms`);
  return { terms };
}

function metadataOf(node: SearchableNode, field: string): string | undefined {
  if (field in node.metadata) return node.metadata[field];
  // Keys compare case-insensitively (Kubernetes label keys may hold capitals).
  for (const [k, v] of Object.entries(node.metadata)) if (k.toLowerCase() === field) return v;
  return undefined;
}

function compare(left: number, op: Op, right: number): boolean {
  switch (op) {
    case '>':
      return left > right;
    case '>=':
      return left >= right;
    case '<':
      return left < right;
    case '<=':
      return left <= right;
    case '=':
      return left === right;
    default:
      return left !== right;
  }
}

function termMatches(term: Term, node: SearchableNode): boolean {
  let hit: boolean;
  if (term.type === 'word') {
    hit = (node.label ?? '').toLowerCase().includes(term.value.toLowerCase());
  } else if (term.type === 'field') {
    const text = term.field === 'name' ? node.label : term.field === 'id' ? node.id : metadataOf(node, term.field);
    hit = text !== undefined && text !== null && String(text).toLowerCase().includes(term.value.toLowerCase());
  } else {
    const v = node.metrics?.[term.metric];
    hit = v !== undefined && v !== null && compare(Number(v), term.op, term.value);
  }
  return hit !== term.negate;
}

export function matches(query: Query, node: SearchableNode): boolean {
  return query.terms.every((t) => termMatches(t, node));
}
