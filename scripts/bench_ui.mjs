#!/usr/bin/env node
// UI benchmark in Debian's Chromium (headless, software rendering, canvas renderer): the app's own timings
// from window.__orchestratorPerf, p95 of RUNS runs per case. Messages are delivered through the same handler
// the WebSocket uses (parse → store → diff → canvas), from a synthetic topology, without the API.
//   node scripts/bench_ui.mjs [--runs 10] [--soak-seconds 60] [--soak-interval 15] [--only 10k-grouped,pan]
//                             [--dist DIR]   (another build, e.g. main's, to compare back to back)
// Needs `npm --prefix ui ci && npm --prefix ui run build` and /usr/bin/chromium.
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../ui/e2e/browser.mjs';
import { serveStatic } from '../ui/e2e/static.mjs';
import { delta, snapshot } from '../ui/e2e/synth.mjs';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const RUNS = Number(args.runs ?? 10);
const SOAK_S = Number(args['soak-seconds'] ?? 60);
const SOAK_EVERY_S = Number(args['soak-interval'] ?? 15);
const only = args.only ? new Set(args.only.split(',')) : null;

const dist = args.dist ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'ui', 'dist');
if (!existsSync(join(dist, 'index.html'))) {
  console.error('ui/dist is missing: run `npm --prefix ui run build` first');
  process.exit(2);
}

const p95 = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)];
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs) => `p95 ${p95(xs).toFixed(0)} ms (median ${median(xs).toFixed(0)}, n=${xs.length})`;
const fmtCpu = (xs) => `main-thread CPU p95 ${p95(xs).toFixed(0)} ms (median ${median(xs).toFixed(0)})`;

const server = await serveStatic(dist);
const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
// Main-thread CPU time (thread ticks) next to wall time: on a shared 2-core machine other processes stretch
// the wall figure; the CPU figure is what the UI itself costs.
const cdp = await page.context().newCDPSession(page);
await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });
const threadTime = async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'ThreadTime').value * 1000;

async function fresh({ grouped }) {
  await page.goto(`${server.url}?bench=1`);
  await page.waitForFunction(() => window.__orchestratorBench && window.__orchestratorCy);
  await page.evaluate((g) => window.__orchestratorBench.act.setGrouped(g), grouped);
}

/** Deliver one message as JSON text (as a WebSocket would); the text is put in the page first so that
 * moving it there is not counted. Returns the main thread's CPU ms from delivery to `name`'s next entry. */
async function deliver(msg, name) {
  await page.evaluate((r) => {
    window.__raw = r;
  }, JSON.stringify(msg));
  const before = await page.evaluate((n) => window.__orchestratorPerf.filter((e) => e.name === n).length, name);
  const t0 = await threadTime();
  await page.evaluate(() => window.__orchestratorBench.deliver(window.__raw));
  await page.waitForFunction(([n, c]) => window.__orchestratorPerf.filter((e) => e.name === n).length > c, [name, before], {
    timeout: 120_000,
    polling: 100,
  });
  const cpu = (await threadTime()) - t0;
  const entry = await page.evaluate((n) => window.__orchestratorPerf.filter((e) => e.name === n).at(-1), name);
  return { ...entry, cpu };
}

async function firstFrame(label, spec, grouped) {
  const ms = [];
  const cpu = [];
  let last;
  const snap = snapshot(spec);
  for (let i = 0; i < RUNS; i++) {
    await fresh({ grouped });
    last = await deliver(snap, 'first-frame');
    ms.push(last.ms);
    cpu.push(last.cpu);
  }
  console.log(`first-frame  ${label}: drawn ${last.nodes} nodes / ${last.edges} edges; wall ${fmt(ms)}; ${fmtCpu(cpu)}`);
  return ms;
}

const positions = () =>
  page.evaluate(() => {
    const out = {};
    window.__orchestratorCy.nodes().forEach((n) => {
      out[n.id()] = n.position();
    });
    return out;
  });

async function updates(label, spec, grouped) {
  await fresh({ grouped });
  const snap = snapshot(spec);
  await deliver(snap, 'first-frame');
  const ms = [];
  const cpu = [];
  let maxMove = 0;
  let before = await positions();
  for (let i = 1; i <= RUNS; i++) {
    const d = delta(snap, i, { hosts: spec.hosts });
    const e = await deliver(d, 'update');
    ms.push(e.ms);
    cpu.push(e.cpu);
    const after = await positions();
    const changed = new Set([...d.add, ...d.update].map((n) => n.id).concat(d.remove));
    for (const [id, p] of Object.entries(before)) {
      if (changed.has(id) || !after[id]) continue;
      maxMove = Math.max(maxMove, Math.hypot(after[id].x - p.x, after[id].y - p.y));
    }
    before = after;
  }
  console.log(`update       ${label}: wall ${fmt(ms)}; ${fmtCpu(cpu)}; max displacement of unchanged nodes ${maxMove.toFixed(1)} px`);
}

async function listScroll() {
  await fresh({ grouped: true });
  await deliver(snapshot({ hosts: 1000, perHost: 10, edges: 0 }), 'first-frame');
  const fps = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const list = document.querySelector('[data-testid="node-list"]');
        let frames = 0;
        const t0 = performance.now();
        const step = () => {
          frames++;
          list.scrollTop += 240; // ~7 rows per frame: a fast fling through 10,000 rows
          if (performance.now() - t0 < 3000) requestAnimationFrame(step);
          else resolve((frames * 1000) / (performance.now() - t0));
        };
        requestAnimationFrame(step);
      }),
  );
  console.log(`list scroll  10,000 rows (virtualised): ${fps.toFixed(1)} frames/s over 3 s`);
}

/** Panning the grouped 10,000-container view for 3 s, a step every frame: whatever is redrawn per viewport
 * change (Cytoscape's texture, the bundle layer) shows here as fewer frames per second. */
async function pan() {
  await fresh({ grouped: true });
  await deliver(snapshot({ hosts: 1000, perHost: 10, edges: 15000 }), 'first-frame');
  const fps = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const cy = window.__orchestratorCy;
        let frames = 0;
        const t0 = performance.now();
        const step = () => {
          frames++;
          cy.panBy({ x: frames % 120 < 60 ? 4 : -4, y: 0 });
          if (performance.now() - t0 < 3000) requestAnimationFrame(step);
          else resolve((frames * 1000) / (performance.now() - t0));
        };
        requestAnimationFrame(step);
      }),
  );
  console.log(`pan          10,000 containers grouped by host, a pan step every frame: ${fps.toFixed(1)} frames/s over 3 s`);
}

async function soak() {
  await fresh({ grouped: true });
  const spec = { hosts: 100, perHost: 10, edges: 1500 };
  const snap = snapshot(spec);
  await deliver(snap, 'first-frame');
  const heap = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    const { metrics } = await cdp.send('Performance.getMetrics');
    return Object.fromEntries(metrics.map((m) => [m.name, m.value]));
  };
  const start = await heap();
  const rounds = Math.max(1, Math.floor(SOAK_S / SOAK_EVERY_S));
  let idleTask = 0;
  let idleWall = 0;
  for (let i = 1; i <= rounds; i++) {
    await deliver(delta(snap, i, { hosts: spec.hosts }), 'update');
    // Idle between updates: CPU time the page's main thread used while nothing arrived.
    await new Promise((r) => setTimeout(r, 500));
    const a = await threadTime();
    const t = Date.now();
    await new Promise((r) => setTimeout(r, SOAK_EVERY_S * 1000 - 500));
    idleTask += (await threadTime()) - a;
    idleWall += Date.now() - t;
  }
  const end = await heap();
  const mb = (x) => (x / 2 ** 20).toFixed(1);
  console.log(
    `soak         ${rounds} updates every ${SOAK_EVERY_S} s (${SOAK_S} s), 1,000 nodes: JS heap ${mb(start.JSHeapUsedSize)} → ${mb(end.JSHeapUsedSize)} MiB ` +
      `(growth ${mb(end.JSHeapUsedSize - start.JSHeapUsedSize)} MiB); main-thread CPU while idle ${((100 * idleTask) / idleWall).toFixed(2)} % of a core`,
  );
}

try {
  // The machine is shared: the load average says how much of the figures is other work.
  const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`build: ${dist}`);
  console.log(`Chromium ${browser.version()}, headless, canvas renderer, ${RUNS} runs per case; ${cpus().length} CPUs, load average ${load()}`);
  const want = (k) => !only || only.has(k);
  if (want('1k')) await firstFrame('1,000 nodes / 1,500 edges, flat', { hosts: 100, perHost: 10, edges: 1500 }, false);
  if (want('10k-grouped')) await firstFrame('10,000 containers grouped by host (1,000 hosts)', { hosts: 1000, perHost: 10, edges: 15000 }, true);
  if (want('10k-flat')) await firstFrame('10,000 nodes flat', { hosts: 1000, perHost: 10, edges: 15000 }, false);
  if (want('update')) await updates('1,000 nodes flat, 5 added / 5 removed / 20 changed', { hosts: 100, perHost: 10, edges: 1500 }, false);
  if (want('update-10k')) await updates('10,000 containers grouped by host, same delta', { hosts: 1000, perHost: 10, edges: 15000 }, true);
  if (want('list')) await listScroll();
  if (want('pan')) await pan();
  if (want('soak')) await soak();
  console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
} finally {
  await browser.close();
  server.close();
}
