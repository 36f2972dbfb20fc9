// The topology as the UI holds it: nodes and edges by id, replaced wholesale by a snapshot and patched by deltas.
// Pure functions over immutable maps, so the store can keep the previous state for diffing.

export type Health = 'healthy' | 'warning' | 'critical' | 'unknown';

export interface TopoNode {
  id: string;
  label: string;
  kind: string;
  /** Host the node runs on (containers, processes, pods); grouping by host uses it. */
  host?: string;
  health: Health;
  metadata: Record<string, string>;
  metrics: Record<string, number>;
}

export interface TopoEdge {
  id: string;
  source: string;
  target: string;
}

export interface GraphData {
  nodes: ReadonlyMap<string, TopoNode>;
  edges: ReadonlyMap<string, TopoEdge>;
  /** Sequence number of the last message applied (the WebSocket's ordering). */
  seq: number;
}

export interface GraphDelta {
  seq: number;
  upsertNodes: TopoNode[];
  removeNodes: string[];
  upsertEdges: TopoEdge[];
  removeEdges: string[];
}

export const emptyGraph: GraphData = { nodes: new Map(), edges: new Map(), seq: -1 };

export function edgeId(source: string, target: string): string {
  return `${source}->${target}`;
}

export function fromSnapshot(seq: number, nodes: TopoNode[], edges: TopoEdge[]): GraphData {
  const n = new Map<string, TopoNode>();
  for (const node of nodes) n.set(node.id, node);
  const e = new Map<string, TopoEdge>();
  // An edge whose endpoint is unknown cannot be drawn; drop it rather than fail the whole snapshot.
  for (const edge of edges) if (n.has(edge.source) && n.has(edge.target)) e.set(edge.id, edge);
  return { nodes: n, edges: e, seq };
}

/** Apply a delta; a delta older than the current state is ignored (the caller resubscribes on a gap). */
export function applyDelta(graph: GraphData, delta: GraphDelta): GraphData {
  if (delta.seq <= graph.seq) return graph;
  const nodes = new Map(graph.nodes);
  const edges = new Map(graph.edges);
  for (const id of delta.removeNodes) nodes.delete(id);
  for (const node of delta.upsertNodes) nodes.set(node.id, node);
  for (const id of delta.removeEdges) edges.delete(id);
  for (const edge of delta.upsertEdges) edges.set(edge.id, edge);
  // Edges of removed nodes go with them.
  if (delta.removeNodes.length > 0) {
    for (const [id, edge] of edges) if (!nodes.has(edge.source) || !nodes.has(edge.target)) edges.delete(id);
  }
  return { nodes, edges, seq: delta.seq };
}
