// Details of the selected node: metadata, health in words, sparklines of the last hour (15 s samples).
import { useEffect, useRef, useState } from 'react';
import { api, ApiError } from '../api/client';
import type { NodeDetails } from '../api/types';
import { act, useApp } from '../store';
import { formatValue, HealthBadge, Sparkline } from './common';

export function Details() {
  const selected = useApp((s) => s.selected);
  const view = useApp((s) => s.view);
  const node = useApp((s) => (s.selected ? s.graph.nodes.get(s.selected) : undefined));
  const [details, setDetails] = useState<NodeDetails | null>(null);
  const [error, setError] = useState<string | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    setDetails(null);
    setError(null);
    if (!selected) return;
    let cancelled = false;
    api<NodeDetails>(`/topology/${view}/nodes/${encodeURIComponent(selected)}`)
      .then((d) => !cancelled && setDetails(d))
      .catch((e: unknown) => !cancelled && setError(e instanceof ApiError ? e.message : String(e)));
    heading.current?.focus();
    return () => {
      cancelled = true;
    };
  }, [selected, view]);

  if (!selected || !node) return null;
  const samples = details?.samples ?? [];
  return (
    <section
      className="details"
      aria-labelledby="details-title"
      data-testid="details"
      onKeyDown={(e) => e.key === 'Escape' && act.select(null)}
    >
      <header>
        <h2 id="details-title" tabIndex={-1} ref={heading}>
          {node.label}
        </h2>
        <button onClick={() => act.select(null)} aria-label="Close details">
          Close
        </button>
      </header>
      <p>
        {node.kind} · <HealthBadge health={node.health} />
      </p>
      <div className="sparks">
        <Sparkline label="CPU" unit="%" values={samples.map((s) => s.cpu)} />
        <Sparkline label="Memory" unit="bytes" values={samples.map((s) => s.memory)} />
        <Sparkline label="Connections" unit="" values={samples.map((s) => s.connections)} />
      </div>
      {error && (
        <p className="error" role="alert">
          Details unavailable: {error}
        </p>
      )}
      <table className="kv">
        <caption className="sr-only">Metadata and current metrics</caption>
        <tbody>
          {Object.entries(node.metrics).map(([k, v]) => (
            <tr key={`m-${k}`}>
              <th scope="row">{k}</th>
              <td>{formatValue(v, k === 'memory' ? 'bytes' : k === 'cpu' ? '%' : '')}</td>
            </tr>
          ))}
          {Object.entries(node.metadata).map(([k, v]) => (
            <tr key={`d-${k}`}>
              <th scope="row">{k}</th>
              <td>{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
