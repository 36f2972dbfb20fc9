// API payloads → the UI's graph model. The one place that knows both shapes.
import { edgeId, type GraphDelta, type Health, type TopoEdge, type TopoNode } from '../graph/model';
import type { ApiEdge, ApiNode, DeltaMessage } from './types';

const health: Record<ApiNode['status'], Health> = { ok: 'healthy', stale: 'warning', offline: 'critical' };

// Kinds that run on one host and are grouped by it. Services and Marathon apps span hosts (the API says
// "(several)"), hosts are hosts: those are never grouped.
const ON_A_HOST = new Set(['container', 'process', 'pod']);

export function hostOf(node: ApiNode): string | undefined {
  if (!ON_A_HOST.has(node.kind)) return undefined;
  return node.metadata.host ?? node.metadata.hostname ?? undefined;
}

export function toNode(node: ApiNode): TopoNode {
  return {
    id: node.id,
    label: node.label,
    kind: node.kind,
    host: hostOf(node),
    health: health[node.status] ?? 'unknown',
    metadata: node.metadata,
    metrics: node.metrics,
  };
}

export function toEdge(edge: ApiEdge): TopoEdge {
  return { id: edgeId(edge.source, edge.target), source: edge.source, target: edge.target };
}

export function toDelta(msg: DeltaMessage): GraphDelta {
  return {
    seq: msg.seq,
    upsertNodes: [...msg.add, ...msg.update].map(toNode),
    removeNodes: msg.remove,
    upsertEdges: msg.edges_add.map(toEdge),
    removeEdges: msg.edges_remove.map((e) => edgeId(e.source, e.target)),
  };
}
