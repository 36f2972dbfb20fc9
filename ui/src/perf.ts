// The app's own timings (issue 12): window.__orchestratorPerf gets one {name, nodes, edges, ms} per measured
// render. `first-frame`: snapshot received → first frame drawn with every element placed; `update`: delta
// received → the frame showing it.
export interface PerfEntry {
  name: 'first-frame' | 'update';
  nodes: number;
  edges: number;
  ms: number;
}

declare global {
  interface Window {
    __orchestratorPerf: PerfEntry[];
  }
}

window.__orchestratorPerf ??= [];
const MAX_ENTRIES = 1000; // bounded: a tab open for days must not grow without end

let pending: { name: PerfEntry['name']; t0: number } | null = null;

/** Called when a message arrives, before it is parsed. A snapshot supersedes a pending update; an update
 * that arrives before the previous one was drawn keeps the older start (the slower figure is the honest one). */
export function markReceived(name: PerfEntry['name'], t0 = performance.now()): void {
  if (pending && name === 'update') return;
  pending = { name, t0 };
}

export function takePending(): { name: PerfEntry['name']; t0: number } | null {
  const p = pending;
  pending = null;
  return p;
}

export function record(entry: PerfEntry): void {
  const list = window.__orchestratorPerf;
  list.push(entry);
  if (list.length > MAX_ENTRIES) list.splice(0, list.length - MAX_ENTRIES);
}
