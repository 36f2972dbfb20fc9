import { VIEWS, type View } from '../api/types';
import { GraphCanvas } from '../graph/GraphCanvas';
import { matchingIds, searchError } from '../selectors';
import { act, useApp } from '../store';
import { Details } from './Details';
import { NodeList } from './NodeList';

const VIEW_NAMES: Record<View, string> = {
  hosts: 'Hosts',
  containers: 'Containers',
  processes: 'Processes',
  pods: 'Pods',
  services: 'Services',
  'marathon-apps': 'Marathon apps',
};

export function Topology() {
  const view = useApp((s) => s.view);
  const grouped = useApp((s) => s.grouped);
  const search = useApp((s) => s.search);
  const loaded = useApp((s) => s.loaded);
  const count = useApp((s) => s.graph.nodes.size);
  const edges = useApp((s) => s.graph.edges.size);
  const matched = useApp((s) => matchingIds(s.graph, s.search)?.length ?? null);
  const connection = useApp((s) => s.connection);
  const lastUpdate = useApp((s) => s.lastUpdate);
  const seq = useApp((s) => s.graph.seq);
  const bad = search ? searchError(search) : null;

  return (
    <div className="topology">
      <div className="toolbar" role="toolbar" aria-label="Topology options">
        <label>
          View{' '}
          <select value={view} onChange={(e) => act.setView(e.target.value as View)} data-testid="view-select">
            {VIEWS.map((v) => (
              <option key={v} value={v}>
                {VIEW_NAMES[v]}
              </option>
            ))}
          </select>
        </label>
        <label>
          <input type="checkbox" checked={grouped} onChange={(e) => act.setGrouped(e.target.checked)} disabled={view === 'hosts'} /> Group
          by host
        </label>
        <label className="search">
          Search{' '}
          <input
            type="search"
            value={search}
            placeholder="name, field:value, cpu>80"
            onChange={(e) => act.setSearch(e.target.value)}
            aria-invalid={bad !== null}
            aria-describedby="search-help"
            data-testid="search"
          />
        </label>
        <span id="search-help" className={bad ? 'error' : 'muted'} role="status">
          {bad ? `Search: ${bad}` : matched !== null ? `${matched} of ${count} match` : `${count} nodes, ${edges} edges`}
        </span>
        {lastUpdate !== null && (
          <span className="muted updated" data-testid="updated" data-seq={seq}>
            updated {new Date(lastUpdate).toLocaleTimeString()}
          </span>
        )}
      </div>
      <div className="topology-body">
        {!loaded ? (
          <div className="state" role="status">
            {connection === 'live' ? 'Loading the topology…' : 'Waiting for the API…'}
          </div>
        ) : count === 0 ? (
          <div className="state" role="status" data-testid="empty">
            No {VIEW_NAMES[view].toLowerCase()} reported yet. Probes publish to the API every 15 s; check that they run
            and hold a token with the report:write scope.
          </div>
        ) : null}
        <GraphCanvas />
        <aside className="side" aria-label="Nodes and details">
          <Details />
          <NodeList />
        </aside>
      </div>
    </div>
  );
}
