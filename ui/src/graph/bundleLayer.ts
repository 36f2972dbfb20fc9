// The canvas the host-to-host bundles are drawn on (see bundles.ts for why not as Cytoscape elements). It
// sits under Cytoscape's canvases inside the same container, follows its viewport and ignores the pointer.
import type { Core } from 'cytoscape';
import { strokeSegments } from './bundles';

// Cytoscape's edge style in GraphCanvas: the same colour and opacity, dimmed like `edge.dim` during a search.
const COLOUR = '#8795a1';
const ALPHA = 0.55;
const DIM_ALPHA = 0.05 * ALPHA;

export class BundleLayer {
  private readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D | null;
  private segments: Float64Array[] = [];
  private lines = 0;
  private dim = false;
  private dirty = false;
  private frame = 0;

  constructor(private readonly cy: Core) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'bundles';
    this.canvas.setAttribute('aria-hidden', 'true');
    // Same stacking level as Cytoscape's own container and before it: drawn under the nodes, as edges are.
    Object.assign(this.canvas.style, { position: 'absolute', left: '0', top: '0', zIndex: '0', pointerEvents: 'none' });
    const container = cy.container();
    container?.insertBefore(this.canvas, container.firstChild);
    this.ctx = this.canvas.getContext('2d');
    cy.on('viewport resize', this.schedule);
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

  /** Viewport changes come in bursts (a wheel, a drag): one redraw per frame. */
  private readonly schedule = (): void => {
    this.dirty = true;
    if (this.frame === 0) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.draw();
      });
    }
  };

  /** Draw now if anything changed (called after a data change, so its frame shows the lines too). */
  draw(): void {
    if (!this.dirty || !this.ctx) return;
    this.dirty = false;
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
    strokeSegments(this.ctx, this.segments, { zoom: this.cy.zoom(), pan: this.cy.pan() });
  }

  destroy(): void {
    if (this.frame !== 0) cancelAnimationFrame(this.frame);
    this.cy.off('viewport resize', this.schedule);
    this.canvas.remove();
  }
}
