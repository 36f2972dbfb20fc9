// Derived data shared by views: the search result over the loaded topology.
import type { GraphData, TopoNode } from './graph/model';
import { matches, parse, SearchError } from './search';

const cache = new WeakMap<GraphData, Map<string, string[] | null>>();

/** Ids of the nodes matching `search`, or null when there is no search (or it does not parse). */
export function matchingIds(graph: GraphData, search: string): string[] | null {
  if (!search.trim()) return null;
  let perGraph = cache.get(graph);
  if (!perGraph) {
    perGraph = new Map();
    cache.set(graph, perGraph);
  }
  const hit = perGraph.get(search);
  if (hit !== undefined) return hit;
  let ids: string[] | null;
  try {
    const q = parse(search);
    ids = [];
    for (const n of graph.nodes.values()) if (matches(q, n)) ids.push(n.id);
  } catch (e) {
    if (!(e instanceof SearchError)) throw e;
    ids = null;
  }
  perGraph.clear(); // one search per graph kept: typing must not grow memory
  perGraph.set(search, ids);
  return ids;
}

export function searchError(search: string): string | null {
  try {
    parse(search);
    return null;
  } catch (e) {
    return e instanceof SearchError ? e.message : String(e);
  }
}

/** The rows of the node list: matches first when searching, otherwise every node, sorted by label. */
export function listRows(graph: GraphData, search: string): TopoNode[] {
  const ids = matchingIds(graph, search);
  const rows = ids === null ? [...graph.nodes.values()] : ids.map((id) => graph.nodes.get(id)!);
  return rows.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}
