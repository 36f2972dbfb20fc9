// The canvas the host-to-host bundles are drawn on (see bundles.ts for why not as Cytoscape elements). It
// sits under Cytoscape's canvases inside the same container, follows its viewport and ignores the pointer.
import type { Core } from 'cytoscape';
import { strokeSegments, type Viewport } from './bundles';

// Cytoscape's edge style in GraphCanvas: the same colour and opacity, dimmed like `edge.dim` during a search.
const COLOUR = '#8795a1';
const ALPHA = 0.55;
const DIM_ALPHA = 0.05 * ALPHA;
// Stroking ~15,000 bundles costs ~80–100 ms in software here: during a pan or zoom the last drawing is moved
// by a CSS transform (as Cytoscape moves its own texture) and redrawn once the viewport rests this long.
const SETTLE_MS = 150;

export class BundleLayer {
  private readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D | null;
  private segments: Float64Array[] = [];
  private lines = 0;
  private dim = false;
  private dirty = false;
  private drawn: Viewport | null = null;
  private settle: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly cy: Core) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'bundles';
    this.canvas.setAttribute('aria-hidden', 'true');
    // Same stacking level as Cytoscape's own container and before it: drawn under the nodes, as edges are.
    Object.assign(this.canvas.style, {
      position: 'absolute',
      left: '0',
      top: '0',
      zIndex: '0',
      pointerEvents: 'none',
      transformOrigin: '0 0',
    });
    const container = cy.container();
    container?.insertBefore(this.canvas, container.firstChild);
    this.ctx = this.canvas.getContext('2d');
    cy.on('viewport', this.moved);
    cy.on('resize', this.resized);
  }

  /** How many bundles are drawn (for the perf entries' edge counts). */
  get count(): number {
    return this.lines;
  }

  set(segments: Float64Array[]): void {
    this.segments = segments;
    this.lines = segments.reduce((sum, a) => sum + a.length / 4, 0);
    // For the e2e run: how many bundles the layer holds.
    this.canvas.dataset.bundles = String(this.lines);
    this.dirty = true;
  }

  setDim(dim: boolean): void {
    if (dim === this.dim) return;
    this.dim = dim;
    this.dirty = true;
  }

  /** A pan or zoom: move the last drawing along at once, redraw when the viewport rests. */
  private readonly moved = (): void => {
    if (this.drawn) {
      // The drawing was made at `drawn`; map it to the current viewport: p' = p·k + (pan' − pan·k).
      const zoom = this.cy.zoom();
      const pan = this.cy.pan();
      const k = zoom / this.drawn.zoom;
      this.canvas.style.transform = `matrix(${k}, 0, 0, ${k}, ${pan.x - this.drawn.pan.x * k}, ${pan.y - this.drawn.pan.y * k})`;
    }
    this.later();
  };

  private readonly resized = (): void => {
    this.dirty = true;
    this.later();
  };

  private later(): void {
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.draw(), SETTLE_MS);
  }

  /** Draw now if anything changed (called after a data change, so its frame shows the lines too). */
  draw(): void {
    if (!this.ctx) return;
    const zoom = this.cy.zoom();
    const pan = { ...this.cy.pan() };
    const moved = !this.drawn || this.drawn.zoom !== zoom || this.drawn.pan.x !== pan.x || this.drawn.pan.y !== pan.y;
    if (!this.dirty && !moved) return;
    clearTimeout(this.settle);
    this.dirty = false;
    this.drawn = { zoom, pan };
    this.canvas.style.transform = '';
    const w = this.cy.width();
    const h = this.cy.height();
    // Cytoscape runs with pixelRatio 1 here; so does this layer.
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    } else {
      this.ctx.clearRect(0, 0, w, h);
    }
    if (this.lines === 0) return;
    this.ctx.strokeStyle = COLOUR;
    this.ctx.globalAlpha = this.dim ? DIM_ALPHA : ALPHA;
    strokeSegments(this.ctx, this.segments, this.drawn);
  }

  destroy(): void {
    clearTimeout(this.settle);
    this.cy.off('viewport', this.moved);
    this.cy.off('resize', this.resized);
    this.canvas.remove();
  }
}
