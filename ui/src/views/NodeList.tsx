// The node list: virtualised (only visible rows are in the DOM, so 10,000 rows scroll smoothly — the lesson of
// marathon #1867) and the keyboard way through the topology: arrows, Page Up/Down, Home/End, Enter opens details.
import { useVirtualizer } from '@tanstack/react-virtual';
import { useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { listRows } from '../selectors';
import { act, useApp } from '../store';
import { HealthBadge } from './common';

const ROW = 32;

export function NodeList() {
  const graph = useApp((s) => s.graph);
  const search = useApp((s) => s.search);
  const selected = useApp((s) => s.selected);
  const rows = useMemo(() => listRows(graph, search), [graph, search]);
  const [active, setActive] = useState(0);
  const parent = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({ count: rows.length, getScrollElement: () => parent.current, estimateSize: () => ROW, overscan: 8 });
  const current = Math.min(active, Math.max(0, rows.length - 1));

  const move = (to: number) => {
    const i = Math.max(0, Math.min(rows.length - 1, to));
    setActive(i);
    virtual.scrollToIndex(i, { align: 'auto' });
  };
  const onKey = (e: KeyboardEvent) => {
    const page = Math.max(1, Math.floor((parent.current?.clientHeight ?? ROW * 10) / ROW) - 1);
    const keys: Record<string, () => void> = {
      ArrowDown: () => move(current + 1),
      ArrowUp: () => move(current - 1),
      PageDown: () => move(current + page),
      PageUp: () => move(current - page),
      Home: () => move(0),
      End: () => move(rows.length - 1),
      Enter: () => rows[current] && act.select(rows[current].id),
    };
    const f = keys[e.key];
    if (f) {
      e.preventDefault();
      f();
    }
  };

  if (rows.length === 0) return null;
  return (
    <div
      ref={parent}
      className="node-list"
      role="listbox"
      tabIndex={0}
      aria-label={`Nodes (${rows.length}); arrow keys move, Enter opens details`}
      aria-activedescendant={rows[current] ? `row-${current}` : undefined}
      onKeyDown={onKey}
      data-testid="node-list"
    >
      <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
        {virtual.getVirtualItems().map((item) => {
          const node = rows[item.index];
          return (
            <div
              key={node.id}
              id={`row-${item.index}`}
              role="option"
              aria-selected={node.id === selected}
              className={`row${item.index === current ? ' active' : ''}${node.id === selected ? ' selected' : ''}`}
              style={{ position: 'absolute', top: 0, left: 0, right: 0, height: ROW, transform: `translateY(${item.start}px)` }}
              onClick={() => {
                setActive(item.index);
                act.select(node.id);
              }}
            >
              <span className="row-label">{node.label}</span>
              <span className="row-kind">{node.kind}</span>
              <HealthBadge health={node.health} />
            </div>
          );
        })}
      </div>
    </div>
  );
}
