// What the canvas shows: the topology after grouping (containers by host as compound nodes with counts,
// collapsed unless expanded) and edge aggregation between collapsed groups.
import type { GraphData, Health } from './model';

export interface VisNode {
  id: string;
  label: string;
  kind: string;
  health: Health;
  /** Layout cell key: the host group, or the node itself when it has no group. */
  cell: string;
  /** Set for members of an expanded group (Cytoscape compound parent). */
  parent?: string;
  /** Set for group nodes: how many members the group has. */
  count?: number;
  expanded?: boolean;
}

export interface VisEdge {
  id: string;
  source: string;
  target: string;
  /** How many topology edges this visible edge stands for (aggregated between groups). */
  count: number;
}

export interface Visible {
  nodes: Map<string, VisNode>;
  edges: Map<string, VisEdge>;
}

export interface GroupingOptions {
  grouped: boolean;
  expanded: ReadonlySet<string>;
}

export const GROUP_PREFIX = 'group:';

export function groupId(host: string): string {
  return GROUP_PREFIX + host;
}

const worse: Record<Health, number> = { unknown: 0, healthy: 1, warning: 2, critical: 3 };

export function computeVisible(graph: GraphData, opts: GroupingOptions): Visible {
  const nodes = new Map<string, VisNode>();
  // Where each topology node is drawn: itself, or its collapsed group.
  const shownAs = new Map<string, string>();
  const groups = new Map<string, VisNode>();
  for (const node of graph.nodes.values()) {
    const cell = node.host !== undefined ? groupId(node.host) : node.id;
    if (!opts.grouped || node.host === undefined) {
      nodes.set(node.id, { id: node.id, label: node.label, kind: node.kind, health: node.health, cell });
      shownAs.set(node.id, node.id);
      continue;
    }
    const gid = groupId(node.host);
    let group = groups.get(gid);
    const expanded = opts.expanded.has(gid);
    if (!group) {
      group = { id: gid, label: node.host, kind: 'group', health: 'unknown', cell: gid, count: 0, expanded };
      groups.set(gid, group);
    }
    group.count = (group.count ?? 0) + 1;
    // A group is as unhealthy as its worst member, so a collapsed problem stays visible.
    if (worse[node.health] > worse[group.health]) group.health = node.health;
    if (expanded) {
      nodes.set(node.id, { id: node.id, label: node.label, kind: node.kind, health: node.health, cell, parent: gid });
      shownAs.set(node.id, node.id);
    } else {
      shownAs.set(node.id, gid);
    }
  }
  for (const group of groups.values()) {
    group.label = `${group.label} (${group.count})`;
    nodes.set(group.id, group);
  }
  const edges = new Map<string, VisEdge>();
  for (const edge of graph.edges.values()) {
    const s = shownAs.get(edge.source);
    const t = shownAs.get(edge.target);
    if (s === undefined || t === undefined || s === t) continue;
    const id = s === edge.source && t === edge.target ? edge.id : `${s}=>${t}`;
    const existing = edges.get(id);
    if (existing) existing.count += 1;
    else edges.set(id, { id, source: s, target: t, count: 1 });
  }
  return { nodes, edges };
}

/**
 * What a search lights up on the canvas: `hit` gets the match outline (a matching node, or the collapsed
 * group hiding it); `holds` are expanded groups holding a match, which must not fade (a compound's opacity
 * multiplies into its members). Everything else fades.
 */
export function highlightSets(graph: GraphData, vis: Visible, ids: Iterable<string>): { hit: Set<string>; holds: Set<string> } {
  const hit = new Set<string>();
  const holds = new Set<string>();
  for (const id of ids) {
    const shown = vis.nodes.get(id);
    if (shown) {
      hit.add(id);
      if (shown.parent) holds.add(shown.parent);
    } else {
      const host = graph.nodes.get(id)?.host;
      if (host !== undefined) hit.add(groupId(host));
    }
  }
  return { hit, holds };
}
