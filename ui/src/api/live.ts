// The live topology WebSocket (orchestrator/contracts/ws.py): authenticate in the first message, subscribe
// to the current view, apply the snapshot and deltas; reconnect with backoff and show it (store.connection).
import { markReceived } from '../perf';
import { act, appStore } from '../store';
import { onRenewed, refresh, SESSION_ENDED } from './client';
import {
  CLOSE_AUTH_TIMEOUT,
  CLOSE_FORBIDDEN,
  CLOSE_TOKEN_EXPIRED,
  CLOSE_UNAUTHENTICATED,
  type ServerMessage,
} from './types';

const MAX_BACKOFF_MS = 10_000;

function url(): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/api/v1/ws`;
}

/** Feed one server message to the store (also the benchmark's entry point: same code path). */
export function handleMessage(raw: string, resubscribe: () => void): void {
  // Cheap type sniff before the parse, so the timing starts at receipt (the server writes `type` first).
  const head = raw.slice(0, 48);
  if (/"type":\s*"snapshot"/.test(head)) markReceived('first-frame');
  else if (/"type":\s*"delta"/.test(head)) markReceived('update');
  const msg = JSON.parse(raw) as ServerMessage;
  switch (msg.type) {
    case 'ready':
      act.setConnection('live');
      act.setApiError(null);
      resubscribe();
      break;
    case 'snapshot':
      act.snapshot(msg);
      break;
    case 'delta':
      if (!act.delta(msg)) resubscribe(); // a gap: ask for a fresh snapshot
      break;
    case 'error':
      act.setApiError(msg.reason);
      break;
  }
}

export class LiveConnection {
  private ws: WebSocket | null = null;
  private attempts = 0;
  private timer: number | undefined;
  private stopped = false;
  private readonly unsubscribe: () => void;
  private readonly reauth = () => this.sendAuth();

  constructor() {
    // Re-subscribe when the view changes.
    this.unsubscribe = appStore.subscribe((s, prev) => {
      if (s.view !== prev.view) this.subscribe();
    });
    onRenewed.add(this.reauth);
    this.open();
  }

  private open(): void {
    if (this.stopped) return;
    act.setConnection(this.attempts === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(url());
    this.ws = ws;
    ws.onopen = () => this.sendAuth();
    ws.onmessage = (ev) => {
      this.attempts = 0;
      handleMessage(String(ev.data), () => this.subscribe());
    };
    ws.onclose = (ev) => void this.closed(ev.code);
  }

  private async closed(code: number): Promise<void> {
    this.ws = null;
    if (this.stopped) return;
    if (code === CLOSE_UNAUTHENTICATED || code === CLOSE_TOKEN_EXPIRED || code === CLOSE_AUTH_TIMEOUT) {
      // The token was refused: renew once; if that fails the session is over.
      if (!(await refresh())) {
        act.endSession(SESSION_ENDED);
        return;
      }
    } else if (code === CLOSE_FORBIDDEN) {
      act.setApiError('This account may not read the topology.');
      act.setConnection('idle');
      return;
    }
    act.setConnection('reconnecting');
    if (code !== CLOSE_UNAUTHENTICATED && code !== CLOSE_TOKEN_EXPIRED) {
      act.setApiError('Live updates are interrupted: reconnecting to the API…');
    }
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempts) * (0.75 + Math.random() * 0.5);
    this.attempts += 1;
    this.timer = window.setTimeout(() => this.open(), delay);
  }

  private sendAuth(): void {
    const token = appStore.getState().session?.accessToken;
    if (token && this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'auth', token }));
  }

  subscribe(): void {
    const { view } = appStore.getState();
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    // Grouping happens in the browser (expand on click without a round trip); the filter highlights there too.
    this.ws.send(JSON.stringify({ type: 'subscribe', view, filter: '' }));
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    this.unsubscribe();
    onRenewed.delete(this.reauth);
    this.ws?.close(1000, 'bye');
    act.setConnection('idle');
  }
}
