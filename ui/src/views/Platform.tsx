// The platform at a glance: ZooKeeper quorum, Mesos, Marathon (apps, deployments, scale), sync lag, canary.
// Polled sequentially (the next request after the previous answer: dcos-ui PR #2953's lesson), paused while
// the tab is hidden.
import { useEffect, useState, type FormEvent } from 'react';
import { api, ApiError } from '../api/client';
import type { Health, MarathonApp, PlatformStatus } from '../api/types';
import { act, can, useApp } from '../store';
import { HealthBadge } from './common';

const POLL_MS = 10_000;

export async function loadPlatform(): Promise<void> {
  try {
    const [status, apps] = await Promise.all([api<PlatformStatus>('/status'), api<MarathonApp[] | { apps: MarathonApp[] }>('/marathon/apps')]);
    act.setPlatform(status, Array.isArray(apps) ? apps : apps.apps);
  } catch (e) {
    if (e instanceof ApiError && e.status !== 0 && e.status !== 401) act.setApiError(`Platform status: ${e.message}`);
  }
}

function appPath(id: string): string {
  // Marathon ids are absolute (/group/app); in the route the groups stay path segments (docs/api.md).
  return id.replace(/^\//, '').split('/').map(encodeURIComponent).join('/');
}

function Part({ title, health, summary, children }: { title: string; health: Health; summary: string; children?: React.ReactNode }) {
  const id = `part-${title.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <section className={`part part-${health}`} aria-labelledby={id}>
      <h2 id={id}>
        {title} <HealthBadge health={health} />
      </h2>
      <p className="summary">{summary}</p>
      {children}
    </section>
  );
}

export function Platform() {
  const status = useApp((s) => s.platform);
  const apps = useApp((s) => s.apps);
  const notice = useApp((s) => s.notice);

  useEffect(() => {
    let stop = false;
    let timer: number | undefined;
    const loop = async () => {
      if (document.visibilityState === 'visible') await loadPlatform();
      if (!stop) timer = window.setTimeout(loop, POLL_MS);
    };
    void loop();
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
  }, []);

  if (!status) {
    return (
      <div className="state" role="status">
        Loading the platform status…
      </div>
    );
  }
  const { zookeeper: zk, mesos, marathon, zk_sync: sync, canary } = status;
  return (
    <div className="platform">
      {notice && (
        <p className="notice" role="status" data-testid="notice">
          {notice}
        </p>
      )}
      <div className="parts">
        <Part title="ZooKeeper" health={zk.health} summary={zk.summary}>
          <p>
            Quorum: <strong>{zk.quorum ? 'yes' : 'NO'}</strong> · leader: {zk.leader ?? 'none'}
          </p>
          <table>
            <thead>
              <tr>
                <th scope="col">Server</th>
                <th scope="col">Mode</th>
                <th scope="col">Latency (ms)</th>
                <th scope="col">Znodes</th>
              </tr>
            </thead>
            <tbody>
              {zk.servers.map((s) => (
                <tr key={s.address}>
                  <td className="addr">{s.address}</td>
                  <td>{s.reachable ? (s.mode ?? '?') : `unreachable${s.error ? `: ${s.error}` : ''}`}</td>
                  <td>{s.latency_avg_ms ?? '–'}</td>
                  <td>{s.znode_count ?? '–'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Part>
        <Part title="Mesos" health={mesos.health} summary={mesos.summary}>
          <p>
            Leading master: {mesos.leader ?? 'none'} · agents: {mesos.agents_active} active, {mesos.agents_inactive} inactive
          </p>
          <p>Frameworks: {mesos.frameworks.length ? mesos.frameworks.join(', ') : 'none'}</p>
          <p>
            Tasks:{' '}
            {Object.entries(mesos.tasks)
              .map(([k, v]) => `${v} ${k.toLowerCase().replace(/^task_/, '')}`)
              .join(', ') || 'none'}
          </p>
        </Part>
        <Part title="ZooKeeper sync" health={sync.health} summary={sync.summary}>
          <p>Lag: {sync.lag_seconds == null ? 'unknown' : `${(sync.lag_seconds * 1000).toFixed(1)} ms`}</p>
        </Part>
        <Part title="Canary" health={canary.health} summary={canary.summary}>
          <ul className="gates">
            {canary.gates.map((g) => (
              <li key={g.name}>
                <HealthBadge health={g.ok == null ? 'unknown' : g.ok ? 'healthy' : 'critical'} label={g.name} /> {g.value ?? 'no data'}{' '}
                (needs {g.threshold})
              </li>
            ))}
          </ul>
        </Part>
      </div>
      <Part title="Marathon" health={marathon.health} summary={marathon.summary}>
        <p>
          Leader: {marathon.leader ?? 'none'} · deployments in flight: {marathon.deployments.length}
        </p>
        <Apps apps={apps ?? []} />
      </Part>
    </div>
  );
}

function Apps({ apps }: { apps: MarathonApp[] }) {
  const session = useApp((s) => s.session);
  const operator = can(session, 'operator');
  if (apps.length === 0) return <p className="muted">No Marathon apps.</p>;
  return (
    <table className="apps" data-testid="apps">
      <thead>
        <tr>
          <th scope="col">App</th>
          <th scope="col">Instances</th>
          <th scope="col">Running / healthy</th>
          <th scope="col">State</th>
          {operator && <th scope="col">Action</th>}
        </tr>
      </thead>
      <tbody>
        {apps.map((app) => (
          <tr key={app.id} data-app={app.id}>
            <th scope="row">{app.id}</th>
            <td>
              {app.instances}
              {app.policy && (
                <span className="muted">
                  {' '}
                  (autoscaled {app.policy.min_instances}–{app.policy.max_instances}
                  {app.policy.paused ? ', paused' : ''})
                </span>
              )}
            </td>
            <td>
              {app.running} / {app.healthy}
            </td>
            <td>
              {app.deployments.length > 0 ? (
                <HealthBadge health="warning" label="Deploying" />
              ) : app.unhealthy > 0 ? (
                <HealthBadge health="critical" label={`${app.unhealthy} unhealthy`} />
              ) : app.running < app.instances ? (
                <HealthBadge health="warning" label="Starting" />
              ) : (
                <HealthBadge health="healthy" />
              )}
            </td>
            {operator && <td>{app.policy ? <PolicyControl app={app} /> : <ScaleControl app={app} />}</td>}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

async function operate(what: string, path: string, method: string, body: unknown): Promise<void> {
  try {
    await api(path, { method, body: JSON.stringify(body) });
    act.setNotice(`${what}: accepted.`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) act.setNotice(`${what}: refused, ${e.message} (not forced).`);
    else act.setNotice(`${what}: failed, ${e instanceof Error ? e.message : String(e)}`);
  }
  await loadPlatform();
}

function ScaleControl({ app }: { app: MarathonApp }) {
  const [n, setN] = useState(String(app.instances));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void operate(`Scale ${app.id} to ${n}`, `/marathon/apps/${appPath(app.id)}/scale`, 'POST', { instances: Number(n) });
  };
  return (
    <form className="inline" onSubmit={submit}>
      <label>
        <span className="sr-only">Instances of {app.id}</span>
        <input type="number" min={0} max={10000} value={n} onChange={(e) => setN(e.target.value)} required />
      </label>
      <button type="submit">Scale</button>
    </form>
  );
}

function PolicyControl({ app }: { app: MarathonApp }) {
  const policy = app.policy!;
  const [min, setMin] = useState(String(policy.min_instances));
  const [max, setMax] = useState(String(policy.max_instances));
  const path = `/marathon/apps/${appPath(app.id)}/policy`;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void operate(`Bounds of ${app.id} to ${min}–${max}`, path, 'PATCH', { min_instances: Number(min), max_instances: Number(max) });
  };
  return (
    <form className="inline" onSubmit={submit}>
      <label>
        min <input type="number" min={0} value={min} onChange={(e) => setMin(e.target.value)} aria-label={`Minimum instances of ${app.id}`} />
      </label>
      <label>
        max <input type="number" min={0} value={max} onChange={(e) => setMax(e.target.value)} aria-label={`Maximum instances of ${app.id}`} />
      </label>
      <button type="submit">Set bounds</button>
      <button type="button" onClick={() => void operate(`${policy.paused ? 'Resume' : 'Pause'} autoscaling of ${app.id}`, path, 'PATCH', { paused: !policy.paused })}>
        {policy.paused ? 'Resume autoscaling' : 'Pause autoscaling'}
      </button>
    </form>
  );
}
