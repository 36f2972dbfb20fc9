// Positions computed once and kept: every cell (a host group, or a node without a host) gets a slot in a grid
// and every member a slot inside its cell. A node keeps its slot until it leaves the topology, so an update
// never moves a node that did not change (Scope's "dancing nodes", scope #419), and the cost is O(changed
// nodes) — no force layout to wait for (fcose takes ~4.7 s for 1,000 flat nodes: research §3).
import type { GraphData } from './model';
import { groupId, type VisNode } from './visible';

export interface Point {
  x: number;
  y: number;
}

const MEMBER_SPACING = 56;
const CELL_GAP = 90;

class SlotPool {
  private next = 0;
  private free: number[] = [];
  take(): number {
    if (this.free.length > 0) {
      // Reuse the lowest freed slot so the grid stays compact.
      let min = 0;
      for (let i = 1; i < this.free.length; i++) if (this.free[i] < this.free[min]) min = i;
      return this.free.splice(min, 1)[0];
    }
    return this.next++;
  }
  release(slot: number): void {
    this.free.push(slot);
  }
  reset(): void {
    this.next = 0;
    this.free = [];
  }
  get size(): number {
    return this.next - this.free.length;
  }
}

export class SlotLayout {
  private readonly cells = new Map<string, number>();
  private readonly cellPool = new SlotPool();
  private readonly members = new Map<string, Map<string, number>>();
  private readonly memberPools = new Map<string, SlotPool>();
  private readonly cellOfNode = new Map<string, string>();
  private gridCols = 0;
  private memberCols = 1;
  private cellSize = 0;

  /** Assign slots to new topology nodes and free the slots of removed ones; existing slots never change. */
  sync(graph: GraphData): void {
    for (const [id, cell] of this.cellOfNode) {
      if (!graph.nodes.has(id)) this.releaseNode(id, cell);
    }
    const fresh: { id: string; cell: string }[] = [];
    for (const node of graph.nodes.values()) {
      if (this.cellOfNode.has(node.id)) continue;
      fresh.push({ id: node.id, cell: node.host !== undefined ? groupId(node.host) : node.id });
    }
    if (fresh.length === 0) return;
    // An empty layout (first snapshot, or a new view after the old one was cleared) is sized afresh from
    // what arrives; otherwise the grid keeps its size so that nothing already placed moves.
    if (this.cellOfNode.size === 0) {
      this.cells.clear();
      this.cellPool.reset();
      this.size(fresh);
    }
    // Deterministic placement for a batch: by cell, then by id.
    fresh.sort((a, b) => (a.cell === b.cell ? (a.id < b.id ? -1 : 1) : a.cell < b.cell ? -1 : 1));
    for (const { id, cell } of fresh) {
      if (!this.cells.has(cell)) this.cells.set(cell, this.cellPool.take());
      this.cellOfNode.set(id, cell);
      if (cell !== id) {
        let pool = this.memberPools.get(cell);
        if (!pool) {
          pool = new SlotPool();
          this.memberPools.set(cell, pool);
          this.members.set(cell, new Map());
        }
        this.members.get(cell)!.set(id, pool.take());
      }
    }
  }

  /** Grid dimensions from the first non-empty topology: room for 1.5 × the largest group. */
  private size(fresh: { id: string; cell: string }[]): void {
    const perCell = new Map<string, number>();
    for (const { id, cell } of fresh) if (id !== cell) perCell.set(cell, (perCell.get(cell) ?? 0) + 1);
    const cellCount = new Set(fresh.map((f) => f.cell)).size;
    const biggest = Math.max(1, ...perCell.values());
    this.memberCols = Math.max(1, Math.ceil(Math.sqrt(biggest * 1.5)));
    this.cellSize = this.memberCols * MEMBER_SPACING + CELL_GAP;
    // Wider than tall: screens are landscape.
    this.gridCols = Math.max(1, Math.ceil(Math.sqrt(cellCount * 1.6)));
  }

  private releaseNode(id: string, cell: string): void {
    this.cellOfNode.delete(id);
    const slots = this.members.get(cell);
    const slot = slots?.get(id);
    if (slots && slot !== undefined) {
      slots.delete(id);
      this.memberPools.get(cell)!.release(slot);
    }
    const stillUsed = (slots !== undefined && slots.size > 0) || this.cellOfNode.get(cell) === cell;
    if (!stillUsed) {
      const c = this.cells.get(cell);
      if (c !== undefined) this.cellPool.release(c);
      this.cells.delete(cell);
      this.members.delete(cell);
      this.memberPools.delete(cell);
    }
  }

  private cellOrigin(cell: string): Point | undefined {
    const index = this.cells.get(cell);
    if (index === undefined) return undefined;
    return { x: (index % this.gridCols) * this.cellSize, y: Math.floor(index / this.gridCols) * this.cellSize };
  }

  /** Where a visible node is drawn: a member in its slot, a cell's own node (or a collapsed group) at the centre. */
  position(node: VisNode): Point {
    const origin = this.cellOrigin(node.cell) ?? { x: 0, y: 0 };
    const slot = this.members.get(node.cell)?.get(node.id);
    if (slot === undefined || node.id === node.cell) {
      const half = (this.memberCols * MEMBER_SPACING) / 2;
      return { x: origin.x + half, y: origin.y + half };
    }
    return {
      x: origin.x + (slot % this.memberCols) * MEMBER_SPACING + MEMBER_SPACING / 2,
      y: origin.y + Math.floor(slot / this.memberCols) * MEMBER_SPACING + MEMBER_SPACING / 2,
    };
  }

  /** Width of a cell's member grid (px): how far an expanded host reaches from its centre, times two. */
  get cellExtent(): number {
    return this.memberCols * MEMBER_SPACING;
  }

  get cellCount(): number {
    return this.cellPool.size;
  }
}
