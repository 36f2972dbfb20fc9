// The topology canvas: Cytoscape.js (canvas renderer) fed by element diffs, positions from SlotLayout.
// Nothing here ever runs a layout algorithm: new nodes get a slot, existing nodes keep theirs.
import cytoscape, { type Core, type ElementDefinition } from 'cytoscape';
import { useEffect, useRef } from 'react';
import { record, takePending } from '../perf';
import { matchingIds } from '../selectors';
import { act, appStore, type AppState } from '../store';
import { BundleLayer } from './bundleLayer';
import { bundleSegments, sameSegments, splitBundles } from './bundles';
import { diffVisible, isEmptyDiff } from './diff';
import { SlotLayout } from './layout';
import { computeVisible, GROUP_PREFIX, highlightSets, type VisEdge, type VisNode, type Visible } from './visible';

// Colours meet 4.5:1 against white labels' background (the label is drawn dark under the node).
const HEALTH_COLOUR = { healthy: '#1b6e34', warning: '#8a5300', critical: '#b3261e', unknown: '#4f5b66' };

const STYLE: cytoscape.StylesheetJson = [
  {
    selector: 'node',
    style: {
      label: 'data(label)',
      'font-size': 10,
      color: '#1a1f24',
      'text-valign': 'bottom',
      'text-margin-y': 3,
      // Below this on-screen size labels are not drawn: the cheapest path at 10,000 nodes.
      'min-zoomed-font-size': 7,
      width: 22,
      height: 22,
      'background-color': HEALTH_COLOUR.unknown,
      'border-width': 0,
    },
  },
  ...(Object.entries(HEALTH_COLOUR) as [string, string][]).map(([h, colour]) => ({
    selector: `node.h-${h}`,
    style: { 'background-color': colour, 'border-color': colour },
  })),
  { selector: 'node[kind = "host"]', style: { shape: 'round-rectangle', width: 30, height: 30 } },
  { selector: 'node[kind = "process"]', style: { shape: 'diamond' } },
  { selector: 'node[kind = "pod"]', style: { shape: 'hexagon' } },
  { selector: 'node[kind = "service"]', style: { shape: 'round-triangle' } },
  { selector: 'node[kind = "marathon-app"]', style: { shape: 'barrel' } },
  {
    selector: 'node.group',
    style: {
      shape: 'round-rectangle',
      width: 44,
      height: 44,
      'border-width': 3,
      'background-color': '#e8edf2',
      // Larger than members' labels so hosts stay named at the zoom that fits a whole cluster.
      'font-size': 18,
      'font-weight': 'bold',
    },
  },
  {
    selector: 'node.group.expanded',
    style: { 'background-opacity': 0.35, 'text-valign': 'top', 'text-margin-y': -4, padding: '12px' },
  },
  {
    selector: 'edge',
    style: {
      width: 1,
      'curve-style': 'haystack',
      'haystack-radius': 0,
      'line-color': '#8795a1',
      opacity: 0.55,
    },
  },
  { selector: 'edge.multi', style: { width: 2.5 } },
  { selector: 'node.dim', style: { opacity: 0.15 } },
  { selector: 'edge.dim', style: { opacity: 0.05 } },
  { selector: 'node.match', style: { 'border-width': 4, 'border-color': '#0b57d0', 'border-opacity': 1 } },
  { selector: 'node.selected', style: { 'border-width': 5, 'border-color': '#111', 'border-style': 'double' } },
];

function nodeData(n: VisNode): Record<string, unknown> {
  const d: Record<string, unknown> = { id: n.id, label: n.label, kind: n.kind, health: n.health };
  if (n.parent) d.parent = n.parent;
  return d;
}

// Health by class, not a data mapper: a class selector is resolved once per style, a mapper per element.
function nodeClasses(n: VisNode): string {
  const h = `h-${n.health}`;
  return n.kind === 'group' ? (n.expanded ? `group expanded ${h}` : `group ${h}`) : h;
}

function edgeDef(e: VisEdge): ElementDefinition {
  return { group: 'edges', data: { id: e.id, source: e.source, target: e.target, count: e.count }, classes: e.count > 1 ? 'multi' : '' };
}

const EMPTY: Visible = { nodes: new Map(), edges: new Map() };

export function GraphCanvas() {
  const container = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const cy: Core = cytoscape({
      container: container.current,
      style: STYLE,
      layout: { name: 'preset' },
      // Cheap paths for big graphs (Cytoscape's performance guide): no retina upscaling, no edges while
      // panning, a cached texture during viewport changes.
      pixelRatio: 1,
      hideEdgesOnViewport: true,
      textureOnViewport: true,
      motionBlur: false,
      minZoom: 0.01,
      maxZoom: 4,
      boxSelectionEnabled: false,
      autoungrabify: true,
    });
    const layout = new SlotLayout();
    // Host-to-host bundles of the grouped view: drawn under Cytoscape, not as its elements (bundles.ts).
    const bundleLayer = new BundleLayer(cy);
    let shownSegments: Float64Array[] = [];
    let shown: Visible = EMPTY;
    let highlighted = '';
    let lastGraph: AppState['graph'] | null = null;
    let selected: string | null = null;

    const render = (s: AppState) => {
      const pending = takePending();
      layout.sync(s.graph);
      const vis = computeVisible(s.graph, { grouped: s.grouped && s.view !== 'hosts', expanded: s.expanded });
      const { elements: next, bundles } = splitBundles(vis);
      const diff = diffVisible(shown, next);
      const segments = bundleSegments(bundles, next.nodes, (n) => layout.position(n));
      const bundlesChanged = !sameSegments(shownSegments, segments);
      if (bundlesChanged) {
        bundleLayer.set(segments);
        shownSegments = segments;
      }
      const first = shown.nodes.size === 0 && next.nodes.size > 0;
      if (!isEmptyDiff(diff)) {
        cy.batch(() => {
          for (const id of diff.removeEdges) cy.getElementById(id).remove();
          for (const id of diff.removeNodes) cy.getElementById(id).remove();
          // Parents before children: a compound child needs its parent to exist.
          const adds = [...diff.addNodes].sort((a, b) => (a.parent ? 1 : 0) - (b.parent ? 1 : 0));
          // One add for nodes and edges: each cy.add builds and restores a collection.
          const defs: ElementDefinition[] = adds.map((n) => ({
            group: 'nodes' as const,
            data: nodeData(n),
            position: layout.position(n),
            classes: nodeClasses(n),
          }));
          for (const e of diff.addEdges) defs.push(edgeDef(e));
          for (const n of diff.updateNodes) {
            const ele = cy.getElementById(n.id);
            const old = shown.nodes.get(n.id);
            if (old && old.parent !== n.parent) ele.move({ parent: n.parent ?? null });
            ele.data(nodeData(n));
            ele.classes(nodeClasses(n));
            // A collapsed group returns to its cell centre (its members left; it is the changed node).
            if (old && old.expanded && !n.expanded) ele.position(layout.position(n));
          }
          cy.add(defs);
          for (const e of diff.updateEdges) {
            const ele = cy.getElementById(e.id);
            ele.data('count', e.count);
            ele.classes(e.count > 1 ? 'multi' : '');
          }
        });
      }
      shown = next;
      if (s.search !== highlighted || s.graph !== lastGraph) highlight(cy, bundleLayer, s, next, highlighted.trim() !== '');
      highlighted = s.search;
      lastGraph = s.graph;
      if (s.selected !== selected) {
        if (selected) cy.getElementById(selected).removeClass('selected');
        if (s.selected) cy.getElementById(s.selected).addClass('selected');
        selected = s.selected;
      }
      if (first) fitTo(cy, next, layout);
      // After the fit, so the bundles are drawn once, at the viewport this frame shows.
      bundleLayer.draw();
      const cyChanged = !isEmptyDiff(diff) || first;
      if (pending && (cyChanged || bundlesChanged)) {
        // Edges drawn = Cytoscape's edges + the bundles on the layer under it.
        const counts = { nodes: cy.nodes().length, edges: cy.edges().length + bundleLayer.count };
        const done = () => record({ name: pending.name, ...counts, ms: performance.now() - pending.t0 });
        // Only the bundle layer changed: Cytoscape draws no frame; the layer's pixels show in the next one.
        if (cyChanged) cy.one('render', done);
        else requestAnimationFrame(done);
      }
    };

    cy.on('tap', 'node', (ev) => {
      const id = ev.target.id() as string;
      if (id.startsWith(GROUP_PREFIX)) act.toggleExpanded(id);
      else act.select(id);
    });

    // Cytoscape only watches the window; the canvas also changes size with the page's layout.
    const resize = new ResizeObserver(() => cy.resize());
    if (container.current) resize.observe(container.current);
    render(appStore.getState());
    const unsubscribe = appStore.subscribe((s, prev) => {
      if (
        s.graph !== prev.graph ||
        s.grouped !== prev.grouped ||
        s.expanded !== prev.expanded ||
        s.search !== prev.search ||
        s.selected !== prev.selected ||
        s.view !== prev.view
      ) {
        render(s);
      }
    });
    // For the e2e tests and the benchmark: the drawn elements, their positions, and a way to tap a host.
    (window as unknown as { __orchestratorCy?: Core }).__orchestratorCy = cy;
    return () => {
      unsubscribe();
      resize.disconnect();
      bundleLayer.destroy();
      cy.destroy();
    };
  }, []);

  return <div ref={container} className="graph" role="img" aria-label="Topology graph (the node list beside it is the keyboard way in)" />;
}

/** cy.fit() measures every label's box (3 s at 10,000 nodes here); the slots' bounds are known already. */
function fitTo(cy: Core, vis: Visible, layout: SlotLayout): void {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const n of vis.nodes.values()) {
    const p = layout.position(n);
    minX = Math.min(minX, p.x);
    minY = Math.min(minY, p.y);
    maxX = Math.max(maxX, p.x);
    maxY = Math.max(maxY, p.y);
  }
  // Half a cell around the outermost centres: an expanded host at the edge stays in view.
  const pad = layout.cellExtent / 2 + 20;
  const w = cy.width();
  const h = cy.height();
  const zoom = Math.max(cy.minZoom(), Math.min(1.5, w / (maxX - minX + 2 * pad), h / (maxY - minY + 2 * pad)));
  cy.viewport({
    zoom,
    pan: { x: (w - (maxX - minX) * zoom) / 2 - minX * zoom, y: (h - (maxY - minY) * zoom) / 2 - minY * zoom },
  });
}

function highlight(cy: Core, bundleLayer: BundleLayer, s: AppState, vis: Visible, wasOn: boolean): void {
  const ids = matchingIds(s.graph, s.search);
  // Bundles fade with the other edges while a search is on (the hosts holding matches are lit).
  bundleLayer.setDim(ids !== null);
  // Touching every element's classes restyles all of them: only when a highlight is on or was on.
  if (ids === null && !wasOn) return;
  cy.batch(() => {
    cy.elements().removeClass('match dim');
    if (ids === null) return;
    const { hit, holds } = highlightSets(s.graph, vis, ids);
    cy.nodes().forEach((n) => {
      const id = n.id();
      if (hit.has(id)) n.addClass('match');
      else if (!holds.has(id)) n.addClass('dim');
    });
    cy.edges().addClass('dim');
  });
}
