// Small shared pieces: health in colour AND words, the connection indicator, sparklines.
import type { Health } from '../api/types';
import { useApp } from '../store';

const WORDS: Record<Health, string> = { healthy: 'Healthy', warning: 'Warning', critical: 'Critical', unknown: 'Unknown' };

export function HealthBadge({ health, label }: { health: Health; label?: string }) {
  return (
    <span className={`badge health-${health}`}>
      <span aria-hidden="true" className="dot" />
      {label ? `${label}: ` : ''}
      {WORDS[health]}
    </span>
  );
}

const CONNECTION_WORDS = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
} as const;

export function ConnectionBadge() {
  const connection = useApp((s) => s.connection);
  return (
    <span className={`badge conn-${connection}`} role="status" aria-live="polite" data-testid="connection">
      <span aria-hidden="true" className="dot" />
      {CONNECTION_WORDS[connection]}
    </span>
  );
}

export function Sparkline({ label, values, unit }: { label: string; values: (number | null | undefined)[]; unit: string }) {
  const points = values.map((v, i) => [i, v] as const).filter((p): p is readonly [number, number] => p[1] != null);
  const w = 160;
  const h = 32;
  if (points.length === 0) {
    return (
      <div className="spark">
        <span className="spark-label">{label}</span> <span className="muted">no samples yet</span>
      </div>
    );
  }
  const ys = points.map((p) => p[1]);
  const min = Math.min(...ys);
  const max = Math.max(...ys);
  const last = ys[ys.length - 1];
  const span = max - min || 1;
  const n = Math.max(1, values.length - 1);
  const d = points.map(([i, v]) => `${((i / n) * w).toFixed(1)},${(h - ((v - min) / span) * (h - 4) - 2).toFixed(1)}`).join(' ');
  const fmt = (v: number) => formatValue(v, unit);
  return (
    <div className="spark">
      <span className="spark-label">{label}</span>
      <svg width={w} height={h} role="img" aria-label={`${label} over the last hour: now ${fmt(last)}, min ${fmt(min)}, max ${fmt(max)}`}>
        <polyline points={d} fill="none" stroke="#0b57d0" strokeWidth="1.5" />
      </svg>
      <span className="spark-value">{fmt(last)}</span>
    </div>
  );
}

export function formatValue(v: number, unit: string): string {
  if (unit === 'bytes') {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
  }
  if (unit === '%') return `${v.toFixed(1)} %`;
  return `${Math.round(v)}`;
}
