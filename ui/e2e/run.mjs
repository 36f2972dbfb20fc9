#!/usr/bin/env node
// End-to-end: Debian's Chromium against the REAL API (demo topology, built-in fake Marathon) on loopback.
// tests/test_ui.py starts the API and passes its URL and the demo's logins:
//   E2E_URL=http://127.0.0.1:PORT/ E2E_VIEWER=name:password E2E_OPERATOR=... E2E_ADMIN=... node e2e/run.mjs
// and optionally a second API whose demo has hosts but no containers (the empty state):
//   E2E_EMPTY_URL=... E2E_EMPTY_VIEWER=name:password
// One browser for every case (CI time); a fresh context (cookies, storage) per person. Screenshots go to
// E2E_ARTIFACTS (default ui/artifacts/e2e), which git ignores.
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './browser.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');
const URL_ = process.env.E2E_URL;
const creds = (name) => {
  const v = process.env[name];
  if (!v || !v.includes(':')) throw new Error(`${name} must be account:password`);
  const i = v.indexOf(':');
  return { account: v.slice(0, i), password: v.slice(i + 1) };
};
if (!URL_) throw new Error('E2E_URL is required');
const OUT = process.env.E2E_ARTIFACTS ?? join(here, '..', 'artifacts', 'e2e');
mkdirSync(OUT, { recursive: true });
const T = 20_000; // every wait is bounded

let passed = 0;
let failed = 0;
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack.split('\n').slice(0, 4).join('\n     ') : e}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function axeCheck(page, label) {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa'] } });
    return r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join('; ')})`);
  });
  assert(violations.length === 0, `axe found WCAG A/AA violations on ${label}:\n  ${violations.join('\n  ')}`);
}

async function login(page, who, url = URL_) {
  await page.goto(url);
  await page.getByLabel('Account').fill(who.account);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByTestId('who').waitFor({ timeout: T });
}

const shot = (page, name) => page.screenshot({ path: join(OUT, `${name}.png`) });
const perf = (page) => page.evaluate(() => window.__orchestratorPerf);

async function api(path, token, init = {}) {
  const res = await fetch(new URL(`api/v1${path}`, URL_), {
    ...init,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });
  const body = await res.json().catch(() => null);
  return { status: res.status, body };
}

async function tokenFor(who) {
  const r = await api('/login', null, { method: 'POST', body: JSON.stringify(who) });
  assert(r.status === 200, `API login of ${who.account}: ${r.status}`);
  return r.body.access_token;
}

const browser = await launch();
const viewer = creds('E2E_VIEWER');
const operator = creds('E2E_OPERATOR');
const admin = creds('E2E_ADMIN');

try {
  // ------------------------------------------------------------------ operator: the whole tour
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  await step('login page is accessible (axe, WCAG AA)', async () => {
    await page.goto(URL_);
    await page.getByLabel('Account').waitFor({ timeout: T });
    await axeCheck(page, 'the login page');
    await shot(page, '01-login');
  });

  await step('a wrong password is refused with a clear message', async () => {
    await page.getByLabel('Account').fill(operator.account);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: /wrong password|Unknown account|invalid/i }).waitFor({ timeout: T });
  });

  await step('operator logs in; the topology arrives over the WebSocket and is drawn', async () => {
    await login(page, operator);
    await page.getByTestId('connection').filter({ hasText: 'Live' }).waitFor({ timeout: T });
    await page.waitForFunction(() => window.__orchestratorPerf.some((e) => e.name === 'first-frame'), null, { timeout: T, polling: 100 });
    const first = (await perf(page)).find((e) => e.name === 'first-frame');
    assert(first.nodes > 0, 'first frame drew no nodes');
    const drawn = await page.evaluate(() => window.__orchestratorCy.nodes().length);
    assert(drawn > 0, 'the canvas holds no nodes');
    // Grouped by host (the default): host-to-host bundles are on their own layer under Cytoscape's canvas
    // and really painted.
    const layer = await page.evaluate(() => {
      const c = document.querySelector('canvas.bundles');
      if (!c) return null;
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let painted = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
      return { bundles: Number(c.dataset.bundles), painted };
    });
    assert(layer && layer.bundles > 0, `no host-to-host bundle drawn: ${JSON.stringify(layer)}`);
    assert(layer.painted > 0, 'the bundle layer holds bundles but painted nothing');
    await shot(page, '02-topology');
  });

  await step('a WebSocket delta arrives and changes the graph without moving unchanged nodes', async () => {
    const read = () =>
      page.evaluate(() => {
        const out = {};
        window.__orchestratorCy.nodes().forEach((n) => {
          out[n.id()] = { ...n.position() };
        });
        return { seq: Number(document.querySelector('[data-testid="updated"]').dataset.seq), pos: out };
      });
    const before = await read();
    // The demo publishes a delta every second; wait for a few.
    await page.waitForFunction((s) => Number(document.querySelector('[data-testid="updated"]').dataset.seq) >= s + 3, before.seq, { timeout: T, polling: 100 });
    const after = await read();
    let moved = 0;
    let common = 0;
    for (const [id, p] of Object.entries(before.pos)) {
      const q = after.pos[id];
      if (!q) continue;
      common++;
      if (Math.hypot(q.x - p.x, q.y - p.y) > 0.5) moved++;
    }
    assert(common > 0, 'no node stayed between the two frames');
    assert(moved === 0, `${moved} of ${common} unchanged nodes moved over deltas ${before.seq}..${after.seq}`);
  });

  await step('grouped by host: a click expands a host into its containers', async () => {
    const gid = await page.evaluate(() => window.__orchestratorCy.nodes('.group').first().id());
    assert(gid && gid.startsWith('group:'), 'no host group drawn');
    await page.evaluate((id) => {
      window.__orchestratorCy.getElementById(id).emit('tap');
    }, gid);
    await page.waitForFunction((id) => window.__orchestratorCy.getElementById(id).children().length > 0, gid, { timeout: T, polling: 100 });
    await shot(page, '03-expanded');
  });

  await step('search with the API grammar highlights matches in the graph and the list', async () => {
    const label = await page.locator('[data-testid="node-list"] [role="option"] .row-label').first().innerText();
    await page.getByTestId('search').fill(`name:"${label}"`);
    await page.locator('#search-help').filter({ hasText: /\d+ of \d+ match/ }).waitFor({ timeout: T });
    const text = await page.locator('#search-help').innerText();
    const [, hit] = /(\d+) of/.exec(text);
    assert(Number(hit) >= 1, `search for ${label} matched nothing: ${text}`);
    const marked = await page.evaluate(() => window.__orchestratorCy.nodes('.match').length);
    assert(marked >= 1, 'no node highlighted in the graph');
    await page.getByTestId('search').fill('cpu>');
    await page.locator('#search-help').filter({ hasText: /expected a number/ }).waitFor({ timeout: T });
    await page.getByTestId('search').fill('');
  });

  await step('keyboard: the node list moves with arrows and Enter opens details with sparklines', async () => {
    await page.getByTestId('node-list').focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await page.getByTestId('details').waitFor({ timeout: T });
    await page.locator('[data-testid="details"] svg[aria-label^="CPU over the last hour"]').waitFor({ timeout: T });
    await shot(page, '04-details');
    await axeCheck(page, 'the topology page with details');
    await page.keyboard.press('Escape');
    await page.getByTestId('details').waitFor({ state: 'detached', timeout: T });
  });

  await step('views switch (hosts, processes) and each arrives', async () => {
    for (const view of ['hosts', 'processes', 'containers']) {
      const n = (await perf(page)).filter((e) => e.name === 'first-frame').length;
      await page.getByTestId('view-select').selectOption(view);
      await page.waitForFunction((k) => window.__orchestratorPerf.filter((e) => e.name === 'first-frame').length > k, n, { timeout: T, polling: 100 });
    }
  });

  let scaled = null;
  await step('platform view: quorum, leaders, lag, gates in words; accessible', async () => {
    await page.getByRole('button', { name: 'Platform' }).click();
    await page.getByRole('heading', { name: /ZooKeeper/ }).first().waitFor({ timeout: T });
    await page.getByText(/Quorum:/).waitFor({ timeout: T });
    await page.getByTestId('apps').waitFor({ timeout: T });
    const words = await page.locator('.part h2 .badge').allInnerTexts();
    assert(words.every((w) => /Healthy|Warning|Critical|Unknown/.test(w)), `health not in words: ${words}`);
    await axeCheck(page, 'the platform page');
    await shot(page, '05-platform');
  });

  await step('operator scales an app; the fake Marathon receives it and the audit log records it', async () => {
    const row = page.locator('[data-testid="apps"] tbody tr').filter({ has: page.getByRole('button', { name: 'Scale' }) }).first();
    const appId = await row.getAttribute('data-app');
    const token = await tokenFor(operator);
    const before = (await api('/marathon/apps', token)).body;
    const app = (Array.isArray(before) ? before : before.apps).find((a) => a.id === appId);
    const target = app.instances + 1;
    await row.locator('input[type="number"]').fill(String(target));
    await row.getByRole('button', { name: 'Scale' }).click();
    await page.getByTestId('notice').filter({ hasText: /accepted|refused/ }).waitFor({ timeout: T });
    const notice = await page.getByTestId('notice').innerText();
    assert(/accepted/.test(notice), `scale not accepted: ${notice}`);
    // Marathon (the fake behind the API) now holds the new count.
    const deadline = Date.now() + T;
    let now;
    do {
      const r = (await api('/marathon/apps', token)).body;
      now = (Array.isArray(r) ? r : r.apps).find((a) => a.id === appId).instances;
      if (now === target) break;
      await new Promise((r2) => setTimeout(r2, 250));
    } while (Date.now() < deadline);
    assert(now === target, `Marathon has ${now} instances of ${appId}, expected ${target}`);
    const audit = (await api('/audit', await tokenFor(admin))).body;
    const entry = audit.entries.find((e) => e.action.includes('scale') && e.actor === operator.account && e.outcome === 'ok');
    assert(entry, `no audit entry for the scale: ${JSON.stringify(audit.entries.slice(-5))}`);
    assert((entry.target ?? '').includes(appId.replace(/^\//, '')), `audit target ${entry.target} is not ${appId}`);
    scaled = { appId, target };
  });

  await step('an autoscaled app offers bounds and pause, never a raw instance count', async () => {
    const rows = page.locator('[data-testid="apps"] tbody tr').filter({ hasText: 'autoscaled' });
    assert((await rows.count()) > 0, 'the demo has no autoscaled app');
    const row = rows.first();
    assert((await row.getByRole('button', { name: 'Scale' }).count()) === 0, 'an autoscaled app has a Scale button');
    await row.getByRole('button', { name: /Pause autoscaling|Resume autoscaling/ }).waitFor({ timeout: T });
    await row.getByRole('button', { name: 'Pause autoscaling' }).click();
    await page.getByTestId('notice').filter({ hasText: /Pause autoscaling.*accepted/ }).waitFor({ timeout: T });
    await row.getByRole('button', { name: 'Resume autoscaling' }).waitFor({ timeout: T });
  });
  await step('log out revokes the session: the old refresh token renews nothing', async () => {
    const { refreshToken } = await page.evaluate(() => JSON.parse(sessionStorage.getItem('orchestrator.session')));
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('You logged out.').waitFor({ timeout: T });
    assert((await page.evaluate(() => sessionStorage.getItem('orchestrator.session'))) === null, 'tokens left in storage');
    const r = await api('/refresh', null, { method: 'POST', body: JSON.stringify({ refresh_token: refreshToken }) });
    assert(r.status === 401, `the refresh token still works after logout: ${r.status}`);
  });
  await step('no uncaught error in the page', async () => {
    assert(errors.length === 0, errors.join(' | '));
  });
  await ctx.close();

  // ------------------------------------------------------------------ viewer: no mutating control
  const vctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const vpage = await vctx.newPage();
  // The WebSocket passes through a route (to the real API) so a step can cut it, as a restarting replica
  // or a network blip would: the page must show that it reconnects and come back live by itself.
  let routed = null;
  await vpage.routeWebSocket(/\/api\/v1\/ws$/, (ws) => {
    routed = ws;
    ws.connectToServer();
  });
  await step('viewer sees no scale or policy control', async () => {
    await login(vpage, viewer);
    await vpage.getByRole('button', { name: 'Platform' }).click();
    await vpage.getByTestId('apps').waitFor({ timeout: T });
    assert((await vpage.getByRole('button', { name: /Scale|Set bounds|autoscaling/ }).count()) === 0, 'a viewer sees a mutating control');
    assert((await vpage.locator('[data-testid="apps"] input').count()) === 0, 'a viewer sees an input in the apps table');
    await shot(vpage, '06-viewer-platform');
  });
  await step('the API refuses the viewer anyway (403)', async () => {
    const r = await api('/marathon/apps/shop/web/scale', await tokenFor(viewer), { method: 'POST', body: JSON.stringify({ instances: 3 }) });
    assert(r.status === 403, `viewer scale answered ${r.status}`);
  });
  await step('a dropped WebSocket shows "Reconnecting…" and comes back live', async () => {
    await vpage.getByRole('button', { name: 'Topology' }).click();
    await vpage.getByTestId('connection').filter({ hasText: 'Live' }).waitFor({ timeout: T });
    assert(routed, 'the WebSocket did not pass through the route');
    await routed.close({ code: 1012, reason: 'service restart' });
    await vpage.getByTestId('connection').filter({ hasText: 'Reconnecting' }).waitFor({ timeout: T });
    await shot(vpage, '07-reconnecting');
    await vpage.getByTestId('connection').filter({ hasText: 'Live' }).waitFor({ timeout: T });
  });
  await step('a token about to expire is renewed silently (no login, the stream stays live)', async () => {
    const old = await vpage.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem('orchestrator.session'));
      // One minute left: inside the renewal window (two minutes), as after 13 minutes of use.
      s.accessExpiresAt = Date.now() + 60_000;
      sessionStorage.setItem('orchestrator.session', JSON.stringify(s));
      return s.accessToken;
    });
    await vpage.reload();
    await vpage.waitForFunction((t) => JSON.parse(sessionStorage.getItem('orchestrator.session') ?? '{}').accessToken !== t, old, { timeout: T, polling: 100 });
    const s = await vpage.evaluate(() => JSON.parse(sessionStorage.getItem('orchestrator.session')));
    assert(s.accessExpiresAt - Date.now() > 5 * 60_000, 'the renewed token does not live longer');
    await vpage.getByTestId('who').waitFor({ timeout: T });
    await vpage.getByTestId('connection').filter({ hasText: 'Live' }).waitFor({ timeout: T });
    const who = await api('/whoami', s.accessToken);
    assert(who.status === 200 && who.body.account === viewer.account, `the renewed token is not accepted: ${who.status}`);
  });
  await step('an expired or revoked session ends cleanly with a way back in', async () => {
    await vpage.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem('orchestrator.session'));
      s.accessToken = 'revoked.token.value';
      s.refreshToken = 'revoked-refresh';
      sessionStorage.setItem('orchestrator.session', JSON.stringify(s));
    });
    await vpage.reload();
    await vpage.getByText(/session has ended/).waitFor({ timeout: T });
    await vpage.getByLabel('Account').waitFor({ timeout: T });
    await shot(vpage, '08-session-ended');
    await login(vpage, viewer);
  });
  await step('an unreachable API is shown as an error, not a blank page', async () => {
    await vpage.route('**/api/v1/status', (r) => r.abort('connectionrefused'));
    await vpage.route('**/api/v1/marathon/apps', (r) => r.abort('connectionrefused'));
    await vpage.getByRole('button', { name: 'Platform' }).click();
    await vpage.getByTestId('api-error').filter({ hasText: /cannot be reached/ }).waitFor({ timeout: T });
    await vpage.unrouteAll();
  });
  await vctx.close();
  // ------------------------------------------------------------------ a second API: hosts, no containers
  if (process.env.E2E_EMPTY_URL) {
    const ectx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const epage = await ectx.newPage();
    await step('a view with nothing in it says so and what to check', async () => {
      await login(epage, creds('E2E_EMPTY_VIEWER'), process.env.E2E_EMPTY_URL);
      await epage.getByTestId('connection').filter({ hasText: 'Live' }).waitFor({ timeout: T });
      await epage.getByTestId('empty').filter({ hasText: /No containers reported yet/ }).waitFor({ timeout: T });
      await axeCheck(epage, 'the empty containers view');
      await shot(epage, '09-empty');
    });
    await ectx.close();
  }
  if (scaled) console.log(`scaled ${scaled.appId} to ${scaled.target}`);
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
