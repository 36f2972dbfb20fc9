// The minimal change between two visible element sets, so an update touches only what changed and the
// renderer never re-lays-out (or moves) the rest.
import type { VisEdge, VisNode, Visible } from './visible';

export interface ElementDiff {
  addNodes: VisNode[];
  updateNodes: VisNode[];
  removeNodes: string[];
  addEdges: VisEdge[];
  updateEdges: VisEdge[];
  removeEdges: string[];
}

function sameNode(a: VisNode, b: VisNode): boolean {
  return (
    a.label === b.label &&
    a.kind === b.kind &&
    a.health === b.health &&
    a.parent === b.parent &&
    a.count === b.count &&
    a.expanded === b.expanded
  );
}

export function diffVisible(prev: Visible, next: Visible): ElementDiff {
  const d: ElementDiff = { addNodes: [], updateNodes: [], removeNodes: [], addEdges: [], updateEdges: [], removeEdges: [] };
  for (const [id, node] of next.nodes) {
    const old = prev.nodes.get(id);
    if (!old) d.addNodes.push(node);
    else if (!sameNode(old, node)) d.updateNodes.push(node);
  }
  for (const id of prev.nodes.keys()) if (!next.nodes.has(id)) d.removeNodes.push(id);
  for (const [id, edge] of next.edges) {
    const old = prev.edges.get(id);
    if (!old) d.addEdges.push(edge);
    else if (old.count !== edge.count || old.source !== edge.source || old.target !== edge.target) d.updateEdges.push(edge);
  }
  for (const id of prev.edges.keys()) if (!next.edges.has(id)) d.removeEdges.push(id);
  return d;
}

export function isEmptyDiff(d: ElementDiff): boolean {
  return (
    d.addNodes.length + d.updateNodes.length + d.removeNodes.length + d.addEdges.length + d.updateEdges.length + d.removeEdges.length === 0
  );
}
