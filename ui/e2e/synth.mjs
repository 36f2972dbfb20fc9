// Synthetic topology messages in the API's WebSocket shapes (orchestrator/contracts/ws.py), for the
// benchmark only (the e2e tests use the real API's demo topology). Deterministic for a seed.
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

export function container(h, c, rand) {
  return {
    id: `c-${h}-${c}`,
    label: `app-${c % 17}-${h}-${c}`,
    kind: 'container',
    parent: null,
    metadata: { host: `host-${h}`, image: `registry/app-${c % 17}:1.${c % 5}`, namespace: c % 3 ? 'prod' : 'dev' },
    metrics: { cpu: Math.round(rand() * 1000) / 10, memory: Math.round(rand() * 2 ** 30), connections: Math.floor(rand() * 50) },
    status: 'ok',
    count: null,
  };
}

/** hosts × perHost containers and `edges` connections between random pairs. */
export function snapshot({ hosts, perHost, edges, seed = 1 }) {
  const rand = rng(seed);
  const nodes = [];
  for (let h = 0; h < hosts; h++) for (let c = 0; c < perHost; c++) nodes.push(container(h, c, rand));
  const seen = new Set();
  const out = [];
  while (out.length < edges) {
    const a = nodes[Math.floor(rand() * nodes.length)].id;
    const b = nodes[Math.floor(rand() * nodes.length)].id;
    if (a === b || seen.has(`${a}>${b}`)) continue;
    seen.add(`${a}>${b}`);
    out.push({ source: a, target: b, connections: 1 + Math.floor(rand() * 4) });
  }
  return { type: 'snapshot', seq: 0, view: 'containers', filter: '', group_by: null, generated_at: Date.now() / 1000, nodes, edges: out, total_nodes: nodes.length };
}

/** A delta like a probe round: a few containers start and stop, some change metrics or health. */
export function delta(snap, seq, { hosts = 100, add = 5, remove = 5, update = 20, seed = seq } = {}) {
  const rand = rng(seed + 1000);
  const nodes = snap.nodes;
  const removed = [];
  for (let i = 0; i < remove; i++) removed.push(nodes[Math.floor(rand() * nodes.length)].id);
  const updated = [];
  for (let i = 0; i < update; i++) {
    const n = nodes[Math.floor(rand() * nodes.length)];
    if (removed.includes(n.id)) continue;
    updated.push({ ...n, status: rand() < 0.5 ? 'stale' : 'ok', metrics: { ...n.metrics, cpu: Math.round(rand() * 1000) / 10 } });
  }
  const added = [];
  for (let i = 0; i < add; i++) {
    const h = Math.floor(rand() * hosts);
    added.push(container(h, 100000 + seq * 100 + i, rand));
  }
  return { type: 'delta', seq, generated_at: Date.now() / 1000, add: added, update: updated, remove: removed, edges_add: [], edges_remove: [], total_nodes: nodes.length };
}
