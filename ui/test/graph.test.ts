import { describe, expect, it } from 'vitest';
import { toNode } from '../src/api/adapt';
import { diffVisible } from '../src/graph/diff';
import { SlotLayout, type Point } from '../src/graph/layout';
import { applyDelta, fromSnapshot, type GraphData, type TopoNode } from '../src/graph/model';
import { computeVisible, highlightSets, type VisNode } from '../src/graph/visible';
import { apiNode } from './fixtures';

const n = (id: string, host?: string, status: 'ok' | 'stale' | 'offline' = 'ok'): TopoNode => toNode(apiNode(id, host, status));
const edge = (s: string, t: string) => ({ id: `${s}->${t}`, source: s, target: t });

function graph(nodes: TopoNode[], edges: [string, string][] = [], seq = 0): GraphData {
  return fromSnapshot(seq, nodes, edges.map(([s, t]) => edge(s, t)));
}

describe('grouping', () => {
  const g = graph(
    [n('a1', 'A'), n('a2', 'A', 'stale'), n('b1', 'B'), n('svc')],
    [
      ['a1', 'b1'],
      ['a2', 'b1'],
      ['a1', 'a2'],
      ['svc', 'a1'],
    ],
  );

  it('collapses containers into one node per host with counts and the worst health', () => {
    const v = computeVisible(g, { grouped: true, expanded: new Set() });
    expect([...v.nodes.keys()].sort()).toEqual(['group:A', 'group:B', 'svc']);
    expect(v.nodes.get('group:A')).toMatchObject({ label: 'A (2)', count: 2, health: 'warning', kind: 'group' });
    // a1->b1 and a2->b1 become one edge standing for two; a1->a2 is inside the group and disappears.
    expect(v.edges.get('group:A=>group:B')).toMatchObject({ source: 'group:A', target: 'group:B', count: 2 });
    expect(v.edges.get('svc=>group:A')).toMatchObject({ count: 1 });
    expect(v.edges.size).toBe(2);
  });

  it('an expanded group shows its members inside it, with their own edges', () => {
    const v = computeVisible(g, { grouped: true, expanded: new Set(['group:A']) });
    expect(v.nodes.get('a1')).toMatchObject({ parent: 'group:A' });
    expect(v.nodes.get('group:A')).toMatchObject({ expanded: true, count: 2 });
    expect(v.edges.has('a1->a2')).toBe(true);
    expect(v.edges.get('a1=>group:B')).toMatchObject({ count: 1 });
  });

  it('flat shows every node and edge as is', () => {
    const v = computeVisible(g, { grouped: false, expanded: new Set() });
    expect(v.nodes.size).toBe(4);
    expect([...v.edges.keys()].sort()).toEqual(['a1->a2', 'a1->b1', 'a2->b1', 'svc->a1']);
  });
});

describe('diffing', () => {
  it('reports only what changed', () => {
    const before = graph([n('a1', 'A'), n('a2', 'A'), n('b1', 'B')], [['a1', 'b1']]);
    const after = applyDelta(before, {
      seq: 1,
      upsertNodes: [n('a2', 'A', 'offline'), n('c1', 'C')],
      removeNodes: ['b1'],
      upsertEdges: [edge('a1', 'c1')],
      removeEdges: [],
    });
    const opts = { grouped: false, expanded: new Set<string>() };
    const d = diffVisible(computeVisible(before, opts), computeVisible(after, opts));
    expect(d.addNodes.map((x) => x.id)).toEqual(['c1']);
    expect(d.updateNodes.map((x) => x.id)).toEqual(['a2']);
    expect(d.removeNodes).toEqual(['b1']);
    expect(d.addEdges.map((x) => x.id)).toEqual(['a1->c1']);
    expect(d.removeEdges).toEqual(['a1->b1']);
  });

  it('an unchanged topology gives an empty diff (nothing is redrawn)', () => {
    const g = graph([n('a1', 'A')]);
    const opts = { grouped: true, expanded: new Set<string>() };
    const d = diffVisible(computeVisible(g, opts), computeVisible(fromSnapshot(1, [n('a1', 'A')], []), opts));
    expect(Object.values(d).every((list) => list.length === 0)).toBe(true);
  });

  it('a member joining a collapsed group updates the group (its count), adds nothing', () => {
    const opts = { grouped: true, expanded: new Set<string>() };
    const a = computeVisible(graph([n('a1', 'A')]), opts);
    const b = computeVisible(graph([n('a1', 'A'), n('a2', 'A')]), opts);
    const d = diffVisible(a, b);
    expect(d.addNodes).toEqual([]);
    expect(d.updateNodes.map((x) => x.label)).toEqual(['A (2)']);
  });
});

describe('slot layout: positions computed once and kept', () => {
  const vis = (g: GraphData, grouped: boolean, expanded: string[] = []) => computeVisible(g, { grouped, expanded: new Set(expanded) });
  const positions = (layout: SlotLayout, nodes: Iterable<VisNode>) => {
    const out = new Map<string, Point>();
    for (const v of nodes) out.set(v.id, layout.position(v));
    return out;
  };

  it('unchanged nodes never move when others come and go', () => {
    const hosts = ['h0', 'h1', 'h2', 'h3', 'h4'];
    let g = graph(hosts.flatMap((h) => [0, 1, 2, 3].map((i) => n(`${h}-c${i}`, h))));
    const layout = new SlotLayout();
    layout.sync(g);
    const before = positions(layout, vis(g, false).nodes.values());
    for (let seq = 1; seq <= 20; seq++) {
      g = applyDelta(g, {
        seq,
        upsertNodes: [n(`new-${seq}`, hosts[seq % 5]), n(`lone-${seq}`)],
        removeNodes: [`new-${seq - 1}`, `lone-${seq - 2}`],
        upsertEdges: [],
        removeEdges: [],
      });
      layout.sync(g);
      const now = positions(layout, vis(g, false).nodes.values());
      for (const [id, p] of before) expect(now.get(id), id).toEqual(p);
    }
  });

  it('distinct nodes get distinct slots, members sit together in their host cell', () => {
    const g = graph(['a', 'b', 'c'].flatMap((h) => [0, 1, 2].map((i) => n(`${h}${i}`, h))).concat([n('x'), n('y')]));
    const layout = new SlotLayout();
    layout.sync(g);
    const p = positions(layout, vis(g, false).nodes.values());
    const keys = new Set([...p.values()].map((q) => `${q.x},${q.y}`));
    expect(keys.size).toBe(p.size);
    // Members of one host are closer to each other than to any member of another host.
    const d = (u: string, v: string) => Math.hypot(p.get(u)!.x - p.get(v)!.x, p.get(u)!.y - p.get(v)!.y);
    expect(d('a0', 'a2')).toBeLessThan(d('a0', 'b0'));
    expect(d('b0', 'b1')).toBeLessThan(d('b1', 'c1'));
  });

  it('a member sits at the same place flat and inside its expanded group', () => {
    const g = graph([n('a0', 'A'), n('a1', 'A'), n('b0', 'B')]);
    const layout = new SlotLayout();
    layout.sync(g);
    const flat = positions(layout, vis(g, false).nodes.values());
    const grouped = positions(layout, vis(g, true, ['group:A']).nodes.values());
    expect(grouped.get('a1')).toEqual(flat.get('a1'));
    expect(grouped.has('group:B')).toBe(true);
  });

  it('a new view after an empty one is sized for what it holds', () => {
    const layout = new SlotLayout();
    layout.sync(graph([n('a0', 'A')]));
    expect(layout.cellExtent).toBe(2 * 56); // room for 1.5 members: a 2 × 2 grid
    layout.sync(graph([]));
    layout.sync(graph(Array.from({ length: 40 }, (_, i) => n(`p${i}`, 'A'))));
    expect(layout.cellExtent).toBe(8 * 56); // 40 × 1.5 = 60 members: 8 × 8
  });

  it('a freed slot is reused by the next newcomer; the grid does not grow without end', () => {
    let g = graph([n('a'), n('b'), n('c')]);
    const layout = new SlotLayout();
    layout.sync(g);
    const pb = layout.position(vis(g, false).nodes.get('b')!);
    g = applyDelta(g, { seq: 1, upsertNodes: [], removeNodes: ['b'], upsertEdges: [], removeEdges: [] });
    layout.sync(g);
    g = applyDelta(g, { seq: 2, upsertNodes: [n('d')], removeNodes: [], upsertEdges: [], removeEdges: [] });
    layout.sync(g);
    expect(layout.position(vis(g, false).nodes.get('d')!)).toEqual(pb);
    expect(layout.cellCount).toBe(3);
  });
});

describe('search highlight', () => {
  const g = graph([n('a1', 'A'), n('a2', 'A'), n('b1', 'B'), n('svc')]);

  it('a match inside a collapsed host lights the host', () => {
    const v = computeVisible(g, { grouped: true, expanded: new Set() });
    const { hit, holds } = highlightSets(g, v, ['b1', 'svc']);
    expect([...hit].sort()).toEqual(['group:B', 'svc']);
    expect(holds.size).toBe(0);
  });

  it('a match inside an expanded host lights the member and keeps its host from fading', () => {
    const v = computeVisible(g, { grouped: true, expanded: new Set(['group:A']) });
    const { hit, holds } = highlightSets(g, v, ['a2']);
    expect([...hit]).toEqual(['a2']);
    expect([...holds]).toEqual(['group:A']);
  });
});

describe('adapting API nodes', () => {
  it('groups containers, processes and pods by host, never services, apps or hosts', () => {
    const base = { label: 'x', metadata: { host: 'node-1' }, metrics: {}, status: 'ok' as const };
    expect(toNode({ ...base, id: 'c', kind: 'container' }).host).toBe('node-1');
    expect(toNode({ ...base, id: 'p', kind: 'process' }).host).toBe('node-1');
    expect(toNode({ ...base, id: 'd', kind: 'pod' }).host).toBe('node-1');
    expect(toNode({ ...base, id: 's', kind: 'service' }).host).toBeUndefined();
    expect(toNode({ ...base, id: 'm', kind: 'marathon-app' }).host).toBeUndefined();
    expect(toNode({ ...base, id: 'h', kind: 'host' }).host).toBeUndefined();
  });

  it('says the probe state as health', () => {
    const base = { id: 'c', label: 'c', kind: 'container', metadata: {}, metrics: {} };
    expect(toNode({ ...base, status: 'ok' }).health).toBe('healthy');
    expect(toNode({ ...base, status: 'stale' }).health).toBe('warning');
    expect(toNode({ ...base, status: 'offline' }).health).toBe('critical');
  });
});
