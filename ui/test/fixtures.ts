// Small hand-made topology messages for the unit tests.
import type { ApiNode, DeltaMessage, SnapshotMessage } from '../src/api/types';

export function apiNode(id: string, host?: string, status: ApiNode['status'] = 'ok'): ApiNode {
  return { id, label: id, kind: host ? 'container' : 'host', metadata: host ? { host } : {}, metrics: { cpu: 1 }, status };
}

export function snap(seq: number, nodes: ApiNode[], edges: [string, string][] = []): SnapshotMessage {
  return {
    type: 'snapshot',
    seq,
    view: 'containers',
    filter: '',
    group_by: null,
    generated_at: 0,
    nodes,
    edges: edges.map(([source, target]) => ({ source, target, connections: 1 })),
    total_nodes: nodes.length,
  };
}

export function delta(seq: number, d: Partial<Omit<DeltaMessage, 'type' | 'seq'>>): DeltaMessage {
  return { type: 'delta', seq, generated_at: 0, add: [], update: [], remove: [], edges_add: [], edges_remove: [], total_nodes: 0, ...d };
}
