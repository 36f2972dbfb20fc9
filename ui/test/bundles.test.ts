import { describe, expect, it } from 'vitest';
import { toNode } from '../src/api/adapt';
import { BUNDLE_WIDTHS, bundleSegments, bundleTier, sameSegments, splitBundles } from '../src/graph/bundles';
import { diffVisible } from '../src/graph/diff';
import { SlotLayout } from '../src/graph/layout';
import { applyDelta, fromSnapshot, type GraphData, type GraphDelta, type TopoNode } from '../src/graph/model';
import { computeVisible, groupId } from '../src/graph/visible';
import { apiNode } from './fixtures';

const n = (id: string, host?: string, status: 'ok' | 'stale' = 'ok'): TopoNode => toNode(apiNode(id, host, status));
const edge = (s: string, t: string) => ({ id: `${s}->${t}`, source: s, target: t });
const split = (g: GraphData, expanded: string[] = []) => splitBundles(computeVisible(g, { grouped: true, expanded: new Set(expanded) }));
const counts = (m: ReadonlyMap<string, { count: number }>) => Object.fromEntries([...m].map(([id, e]) => [id, e.count]).sort());
const deltaOf = (seq: number, d: Partial<Omit<GraphDelta, 'seq'>>): GraphDelta => ({
  seq,
  upsertNodes: [],
  removeNodes: [],
  upsertEdges: [],
  removeEdges: [],
  ...d,
});

/** A deterministic topology: `hosts` × `per` containers, `edges` distinct directed pairs, a few hostless nodes. */
function topology(hosts: number, per: number, edges: number, loose = 3): GraphData {
  const nodes: TopoNode[] = [];
  for (let h = 0; h < hosts; h++) for (let c = 0; c < per; c++) nodes.push(n(`c${h}-${c}`, `h${h}`));
  for (let i = 0; i < loose; i++) nodes.push(n(`svc${i}`));
  let s = 12345;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  const seen = new Set<string>();
  const out: [string, string][] = [];
  while (out.length < edges) {
    const a = nodes[Math.floor(rand() * nodes.length)].id;
    const b = nodes[Math.floor(rand() * nodes.length)].id;
    if (a === b || seen.has(`${a}>${b}`)) continue;
    seen.add(`${a}>${b}`);
    out.push([a, b]);
  }
  return fromSnapshot(0, nodes, out.map(([a, b]) => edge(a, b)));
}

describe('host-to-host bundles', () => {
  it('one bundle per ordered pair of collapsed hosts, counting exactly the edges between them', () => {
    const g = topology(30, 5, 400);
    const { elements, bundles } = split(g);
    // The expected counts, by brute force over the topology's edges.
    const expected = new Map<string, number>();
    let intraHost = 0;
    let touchingLoose = 0;
    for (const e of g.edges.values()) {
      const hs = g.nodes.get(e.source)!.host;
      const ht = g.nodes.get(e.target)!.host;
      if (hs === undefined || ht === undefined) touchingLoose += 1;
      else if (hs === ht) intraHost += 1;
      else {
        const id = `${groupId(hs)}=>${groupId(ht)}`;
        expected.set(id, (expected.get(id) ?? 0) + 1);
      }
    }
    expect(counts(bundles)).toEqual(Object.fromEntries([...expected].sort()));
    expect(bundles.size).toBeGreaterThan(100); // the topology really has many bundles, some with count > 1
    expect([...bundles.values()].some((b) => b.count > 1)).toBe(true);
    // Nothing lost: every edge is in a bundle, inside one host, or drawn by Cytoscape (a hostless endpoint).
    const inBundles = [...bundles.values()].reduce((sum, b) => sum + b.count, 0);
    const onCanvas = [...elements.edges.values()].reduce((sum, e) => sum + e.count, 0);
    expect(inBundles + onCanvas + intraHost).toBe(g.edges.size);
    expect(onCanvas).toBe(touchingLoose);
    // Cytoscape gets every node but no host-to-host edge.
    expect(elements.nodes.size).toBe(30 + 3);
    for (const e of elements.edges.values()) expect(e.source.startsWith('group:') && e.target.startsWith('group:')).toBe(false);
  });

  it('expanding a host turns its bundles into member-level edges; expanding both shows the real edges', () => {
    const g = fromSnapshot(
      0,
      [n('a1', 'A'), n('a2', 'A'), n('b1', 'B'), n('b2', 'B'), n('c1', 'C')],
      [edge('a1', 'b1'), edge('a2', 'b1'), edge('a1', 'b2'), edge('b2', 'c1'), edge('a2', 'c1')],
    );
    expect(counts(split(g).bundles)).toEqual({ 'group:A=>group:B': 3, 'group:A=>group:C': 1, 'group:B=>group:C': 1 });

    const oneOpen = split(g, ['group:A']);
    expect(counts(oneOpen.bundles)).toEqual({ 'group:B=>group:C': 1 });
    expect(counts(oneOpen.elements.edges)).toEqual({ 'a1=>group:B': 2, 'a2=>group:B': 1, 'a2=>group:C': 1 });

    const bothOpen = split(g, ['group:A', 'group:B']);
    expect(counts(bothOpen.bundles)).toEqual({});
    expect([...bothOpen.elements.edges.keys()].sort()).toEqual(['a1->b1', 'a1->b2', 'a2->b1', 'a2=>group:C', 'b2=>group:C']);
    // Collapsing again gives the same bundles back.
    expect(counts(split(g).bundles)).toEqual(counts(split(g, []).bundles));
  });

  it('deltas update bundle counts: edges added and removed, members leaving, a host emptied', () => {
    let g = fromSnapshot(0, [n('a1', 'A'), n('a2', 'A'), n('b1', 'B'), n('c1', 'C')], [edge('a1', 'b1'), edge('a2', 'c1')]);
    expect(counts(split(g).bundles)).toEqual({ 'group:A=>group:B': 1, 'group:A=>group:C': 1 });

    g = applyDelta(g, deltaOf(1, { upsertEdges: [edge('a2', 'b1'), edge('b1', 'a1')] }));
    expect(counts(split(g).bundles)).toEqual({ 'group:A=>group:B': 2, 'group:A=>group:C': 1, 'group:B=>group:A': 1 });

    g = applyDelta(g, deltaOf(2, { removeEdges: ['a1->b1'] }));
    expect(counts(split(g).bundles)).toEqual({ 'group:A=>group:B': 1, 'group:A=>group:C': 1, 'group:B=>group:A': 1 });

    // A member leaving takes its edges out of the bundles.
    g = applyDelta(g, deltaOf(3, { removeNodes: ['a2'] }));
    expect(counts(split(g).bundles)).toEqual({ 'group:B=>group:A': 1 });

    // A new member with edges adds to the bundles of its host.
    g = applyDelta(g, deltaOf(4, { upsertNodes: [n('c2', 'C')], upsertEdges: [edge('c2', 'a1'), edge('c2', 'b1')] }));
    expect(counts(split(g).bundles)).toEqual({ 'group:B=>group:A': 1, 'group:C=>group:A': 1, 'group:C=>group:B': 1 });

    // A host emptied: its group and every bundle touching it are gone.
    g = applyDelta(g, deltaOf(5, { removeNodes: ['b1'] }));
    const after = split(g);
    expect(counts(after.bundles)).toEqual({ 'group:C=>group:A': 1 });
    expect(after.elements.nodes.has('group:B')).toBe(false);
  });

  it('a bundle-only change leaves the Cytoscape elements untouched (no node redrawn, none moved)', () => {
    const g0 = fromSnapshot(0, [n('a1', 'A'), n('b1', 'B'), n('b2', 'B')], [edge('a1', 'b1')]);
    const g1 = applyDelta(g0, deltaOf(1, { upsertEdges: [edge('a1', 'b2')] }));
    const d = diffVisible(split(g0).elements, split(g1).elements);
    expect(d).toEqual({ addNodes: [], updateNodes: [], removeNodes: [], addEdges: [], updateEdges: [], removeEdges: [] });
    expect(split(g1).bundles.get('group:A=>group:B')?.count).toBe(2);
  });
});

describe('bundle drawing', () => {
  const g = fromSnapshot(
    0,
    [n('a1', 'A'), n('a2', 'A'), n('a3', 'A'), n('a4', 'A'), n('b1', 'B'), n('c1', 'C'), n('c2', 'C')],
    // A→B: 4 edges (widest tier); A→C: 2 (middle); C→B: 1 (thinnest).
    [edge('a1', 'b1'), edge('a2', 'b1'), edge('a3', 'b1'), edge('a4', 'b1'), edge('a1', 'c1'), edge('a2', 'c2'), edge('c1', 'b1')],
  );

  it('width tiers: 1 edge, 2–3, 4 or more', () => {
    expect([1, 2, 3, 4, 50].map(bundleTier)).toEqual([0, 1, 1, 2, 2]);
    expect(BUNDLE_WIDTHS[0]).toBeLessThan(BUNDLE_WIDTHS[1]);
    expect(BUNDLE_WIDTHS[1]).toBeLessThan(BUNDLE_WIDTHS[2]);
  });

  it('segments run between the hosts’ drawn positions, one per bundle, in its width tier', () => {
    const layout = new SlotLayout();
    layout.sync(g);
    const { elements, bundles } = split(g);
    const at = (id: string) => layout.position(elements.nodes.get(id)!);
    const seg = bundleSegments(bundles, elements.nodes, (v) => layout.position(v));
    const line = (s: string, t: string) => [at(s).x, at(s).y, at(t).x, at(t).y];
    expect([...seg[0]]).toEqual(line('group:C', 'group:B'));
    expect([...seg[1]]).toEqual(line('group:A', 'group:C'));
    expect([...seg[2]]).toEqual(line('group:A', 'group:B'));
  });

  it('redraw only when the drawing changes: not for metrics, yes for a new bundle or a tier change', () => {
    const layout = new SlotLayout();
    layout.sync(g);
    const segs = (x: GraphData) => {
      layout.sync(x);
      const { elements, bundles } = split(x);
      return bundleSegments(bundles, elements.nodes, (v) => layout.position(v));
    };
    const base = segs(g);
    const metricsOnly = applyDelta(g, deltaOf(1, { upsertNodes: [{ ...g.nodes.get('a1')!, metrics: { cpu: 99 } }] }));
    expect(sameSegments(base, segs(metricsOnly))).toBe(true);
    const tierUp = applyDelta(g, deltaOf(1, { upsertEdges: [edge('c2', 'b1')] })); // C→B: 1 → 2
    expect(sameSegments(base, segs(tierUp))).toBe(false);
    const newPair = applyDelta(g, deltaOf(1, { upsertEdges: [edge('b1', 'c2')] })); // B→C is new
    expect(sameSegments(base, segs(newPair))).toBe(false);
    // Same number of lines per tier, but one bundle replaced by another: C→B gone, B→C new.
    const swapped = applyDelta(g, deltaOf(1, { removeEdges: ['c1->b1'], upsertEdges: [edge('b1', 'c2')] }));
    expect(segs(swapped).map((a) => a.length)).toEqual(base.map((a) => a.length));
    expect(sameSegments(base, segs(swapped))).toBe(false);
  });
});
