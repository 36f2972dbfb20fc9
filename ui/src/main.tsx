import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { handleMessage } from './api/live';
import { App } from './App';
import { act, appStore } from './store';
import './styles.css';

// ?bench: no login, no WebSocket; scripts/bench_ui.mjs delivers server messages through the same handler the
// WebSocket uses, so the figures cover parse → store → diff → canvas.
const bench = new URLSearchParams(location.search).has('bench');
if (bench) {
  (window as unknown as { __orchestratorBench: unknown }).__orchestratorBench = {
    deliver: (raw: string) => handleMessage(raw, () => undefined),
    act,
    store: appStore,
  };
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App bench={bench} />
  </StrictMode>,
);
