// Host-to-host bundles: in the grouped view, every pair of collapsed hosts linked by at least one topology
// edge is one bundle (its count = the edges it stands for). Bundles are drawn on a plain 2D canvas under
// Cytoscape's, not as Cytoscape elements: Cytoscape spends ~60–100 µs of CPU per element (style, collection
// bookkeeping, bounding boxes), so 14,860 bundles at 10,000 containers cost more than the 1,000 hosts they
// join, while stroking them as a few paths costs milliseconds. Nothing is hidden: every bundle is drawn, a
// wider line stands for more edges, and expanding a host turns its bundles back into member-level edges,
// which are Cytoscape elements again (they touch members that can be selected).
import type { Point } from './layout';
import { GROUP_PREFIX, type VisEdge, type VisNode, type Visible } from './visible';

/** A bundle joins two collapsed groups; an expanded group is never an edge endpoint (its members are). */
export function isBundle(e: VisEdge): boolean {
  return e.source.startsWith(GROUP_PREFIX) && e.target.startsWith(GROUP_PREFIX);
}

/** The visible set split in two: what Cytoscape draws (every node, member-level edges) and the bundles. */
export function splitBundles(vis: Visible): { elements: Visible; bundles: Map<string, VisEdge> } {
  const edges = new Map<string, VisEdge>();
  const bundles = new Map<string, VisEdge>();
  for (const [id, e] of vis.edges) (isBundle(e) ? bundles : edges).set(id, e);
  return { elements: { nodes: vis.nodes, edges }, bundles };
}

/** Line width tiers (model px, like Cytoscape's widths): 1 edge, 2–3, 4 or more. A few tiers keep the
 * drawing to a few strokes; the exact count is in the data (and in the edges an expanded host shows). */
export const BUNDLE_WIDTHS = [1, 2.5, 4] as const;

export function bundleTier(count: number): number {
  return count >= 4 ? 2 : count >= 2 ? 1 : 0;
}

/** Whether two segment sets draw the same lines: a delta that only changes metrics, or edges inside a
 * host, or a count within the same width tier, must not redraw the layer (nor record an update). */
export function sameSegments(a: readonly Float64Array[], b: readonly Float64Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let t = 0; t < a.length; t++) {
    const x = a[t];
    const y = b[t];
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  }
  return true;
}

/** Segments per width tier as flat [x1, y1, x2, y2, ...] arrays in model coordinates. Positions come from
 * the slot layout (the same the nodes are drawn at), so a bundle ends exactly at its hosts' centres. */
export function bundleSegments(
  bundles: ReadonlyMap<string, VisEdge>,
  nodes: ReadonlyMap<string, VisNode>,
  position: (n: VisNode) => Point,
): Float64Array[] {
  const counts = BUNDLE_WIDTHS.map(() => 0);
  for (const e of bundles.values()) counts[bundleTier(e.count)] += 1;
  const out = counts.map((c) => new Float64Array(c * 4));
  const fill = counts.map(() => 0);
  const at = new Map<string, Point>();
  const pos = (id: string): Point | undefined => {
    let p = at.get(id);
    if (p === undefined) {
      const n = nodes.get(id);
      if (n === undefined) return undefined;
      p = position(n);
      at.set(id, p);
    }
    return p;
  };
  for (const e of bundles.values()) {
    const s = pos(e.source);
    const t = pos(e.target);
    if (!s || !t) continue;
    const tier = bundleTier(e.count);
    const a = out[tier];
    let i = fill[tier];
    a[i++] = s.x;
    a[i++] = s.y;
    a[i++] = t.x;
    a[i++] = t.y;
    fill[tier] = i;
  }
  return out.map((a, tier) => (fill[tier] === a.length ? a : a.subarray(0, fill[tier])));
}

export interface Viewport {
  zoom: number;
  pan: Point;
}

/** Stroke the segments with the canvas' current style: one path per tier. */
export function strokeSegments(ctx: CanvasRenderingContext2D, segments: Float64Array[], view: Viewport): void {
  ctx.setTransform(view.zoom, 0, 0, view.zoom, view.pan.x, view.pan.y);
  segments.forEach((a, tier) => {
    if (a.length === 0) return;
    ctx.lineWidth = BUNDLE_WIDTHS[tier];
    ctx.beginPath();
    for (let i = 0; i < a.length; i += 4) {
      ctx.moveTo(a[i], a[i + 1]);
      ctx.lineTo(a[i + 2], a[i + 3]);
    }
    ctx.stroke();
  });
  ctx.setTransform(1, 0, 0, 1, 0, 0);
}
