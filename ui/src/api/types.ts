// The API's payloads as the UI reads them: a mirror of orchestrator/contracts/api.py and ws.py (docs/api.md).
// Keep field names identical to the contract; conversion to the UI's model happens in adapt.ts only.

export type Role = 'viewer' | 'operator' | 'admin';
export const VIEWS = ['hosts', 'containers', 'processes', 'pods', 'services', 'marathon-apps'] as const;
export type View = (typeof VIEWS)[number];
export type Health = 'healthy' | 'warning' | 'critical' | 'unknown';

export interface TokenResponse {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  refresh_token: string | null;
  refresh_expires_in: number | null;
  account: string;
  role: Role;
}

export interface ApiNode {
  id: string;
  label: string;
  kind: string;
  parent?: string | null;
  metadata: Record<string, string>;
  metrics: Record<string, number>;
  status: 'ok' | 'stale' | 'offline';
  count?: number | null;
}

export interface ApiEdge {
  source: string;
  target: string;
  connections: number;
}

export interface Sample {
  t: number;
  cpu?: number | null;
  memory?: number | null;
  connections?: number | null;
}

export interface NodeDetails {
  node: ApiNode;
  interval_seconds: number;
  samples: Sample[];
  neighbours: ApiNode[];
}

export interface PartStatus {
  part: string;
  health: Health;
  summary: string;
  checked_at: number;
}

export interface ZooKeeperServer {
  address: string;
  reachable: boolean;
  mode?: string | null;
  latency_avg_ms?: number | null;
  znode_count?: number | null;
  outstanding_requests?: number | null;
  error?: string | null;
}

export interface PlatformStatus {
  zookeeper: PartStatus & { servers: ZooKeeperServer[]; leader: string | null; quorum: boolean };
  mesos: PartStatus & {
    leader: string | null;
    agents_active: number;
    agents_inactive: number;
    frameworks: string[];
    tasks: Record<string, number>;
  };
  marathon: PartStatus & {
    leader: string | null;
    apps: number;
    deployments: { id: string; apps: string[]; current_step?: number | null; total_steps?: number | null }[];
  };
  zk_sync: PartStatus & { lag_seconds: number | null; metrics: Record<string, number> };
  canary: PartStatus & {
    gates: { name: string; query: string; value: number | null; threshold: string; ok: boolean | null }[];
  };
}

export interface AutoscalePolicy {
  min_instances: number;
  max_instances: number;
  paused: boolean;
  metric?: string | null;
  target?: number | null;
}

export interface MarathonApp {
  id: string;
  instances: number;
  running: number;
  staged: number;
  healthy: number;
  unhealthy: number;
  deployments: string[];
  policy: AutoscalePolicy | null;
}

// WebSocket (orchestrator/contracts/ws.py)
export interface ReadyMessage {
  type: 'ready';
  account: string;
  role: Role | null;
  expires_at: number;
}
export interface SnapshotMessage {
  type: 'snapshot';
  seq: number;
  view: View;
  filter: string;
  group_by: string | null;
  generated_at: number;
  nodes: ApiNode[];
  edges: ApiEdge[];
  total_nodes: number;
}
export interface DeltaMessage {
  type: 'delta';
  seq: number;
  generated_at: number;
  add: ApiNode[];
  update: ApiNode[];
  remove: string[];
  edges_add: ApiEdge[];
  edges_remove: ApiEdge[];
  total_nodes: number;
}
export interface ErrorMessage {
  type: 'error';
  reason: string;
}
export type ServerMessage = ReadyMessage | SnapshotMessage | DeltaMessage | ErrorMessage;

// Close codes the UI acts on.
export const CLOSE_AUTH_TIMEOUT = 4000;
export const CLOSE_UNAUTHENTICATED = 4001;
export const CLOSE_TOKEN_EXPIRED = 4002;
export const CLOSE_FORBIDDEN = 4003;
