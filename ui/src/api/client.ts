// REST calls to the API with the session's token; silent renewal while the UI is in use; a clean end of
// the session when the API says the token is no longer good.
import { act, appStore } from '../store';
import type { TokenResponse } from './types';

export const API = '/api/v1';
const SESSION_KEY = 'orchestrator.session';
/** Renew when less than this is left of the access token (it lives ≤ 15 min). */
const RENEW_BEFORE_MS = 120_000;
/** "In use": the tab is visible or a person touched it within this window. */
const IDLE_AFTER_MS = 30 * 60_000;

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function reason(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { detail?: unknown };
    if (typeof body.detail === 'string') return body.detail;
  } catch {
    /* not JSON: fall through */
  }
  return `${res.status} ${res.statusText}`;
}

async function send(path: string, init: RequestInit, token: string | null): Promise<Response> {
  const headers = new Headers(init.headers);
  if (token) headers.set('Authorization', `Bearer ${token}`);
  if (init.body !== undefined) headers.set('Content-Type', 'application/json');
  try {
    return await fetch(API + path, { ...init, headers });
  } catch {
    act.setApiError('The API cannot be reached. Retrying when you act again.');
    throw new ApiError('unreachable', 0);
  }
}

export async function login(account: string, password: string): Promise<void> {
  const res = await send('/login', { method: 'POST', body: JSON.stringify({ account, password }) }, null);
  if (!res.ok) throw new ApiError(await reason(res), res.status);
  act.loggedIn((await res.json()) as TokenResponse);
}

let refreshing: Promise<boolean> | null = null;

/** Exchange the refresh token for a new access token; false when the session cannot go on. */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    const refreshToken = appStore.getState().session?.refreshToken;
    if (!refreshToken) return false;
    const res = await send('/refresh', { method: 'POST', body: JSON.stringify({ refresh_token: refreshToken }) }, null);
    if (!res.ok) return false;
    act.renewed((await res.json()) as TokenResponse);
    onRenewed.forEach((f) => f());
    return true;
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** Listeners told when the access token changed (the WebSocket re-authenticates). */
export const onRenewed = new Set<() => void>();

export const SESSION_ENDED = 'Your session has ended (expired or revoked). Log in again to continue.';

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const token = appStore.getState().session?.accessToken ?? null;
  let res = await send(path, init, token);
  if (res.status === 401 && (await refresh())) {
    res = await send(path, init, appStore.getState().session?.accessToken ?? null);
  }
  if (res.status === 401) {
    act.endSession(SESSION_ENDED);
    throw new ApiError(SESSION_ENDED, 401);
  }
  act.setApiError(null);
  if (!res.ok) throw new ApiError(await reason(res), res.status);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export async function logout(): Promise<void> {
  // Revoke the refresh token too: a copy left in this tab's storage or a proxy log cannot renew anything.
  const refreshToken = appStore.getState().session?.refreshToken;
  try {
    await api('/logout', { method: 'POST', body: JSON.stringify(refreshToken ? { refresh_token: refreshToken } : {}) });
  } catch {
    /* the session ends here whatever the API says */
  }
  act.endSession('You logged out.');
}

let lastActivity = Date.now();

/** Keep the session alive while in use; persist it for this tab (sessionStorage: gone when the tab closes). */
export function startSessionKeeper(): () => void {
  const saved = sessionStorage.getItem(SESSION_KEY);
  if (saved && !appStore.getState().session) {
    try {
      appStore.setState({ session: JSON.parse(saved) });
    } catch {
      sessionStorage.removeItem(SESSION_KEY);
    }
  }
  const unsubscribe = appStore.subscribe((s, prev) => {
    if (s.session === prev.session) return;
    if (s.session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s.session));
    else sessionStorage.removeItem(SESSION_KEY);
  });
  const touch = () => {
    lastActivity = Date.now();
  };
  const events = ['pointerdown', 'keydown', 'wheel'] as const;
  events.forEach((e) => window.addEventListener(e, touch, { passive: true }));
  const tick = async () => {
    const s = appStore.getState().session;
    if (!s) return;
    const now = Date.now();
    const inUse = document.visibilityState === 'visible' || now - lastActivity < IDLE_AFTER_MS;
    if (now >= s.accessExpiresAt && !s.refreshToken) {
      act.endSession(SESSION_ENDED);
      return;
    }
    if (inUse && s.accessExpiresAt - now < RENEW_BEFORE_MS) {
      if (!(await refresh()) && Date.now() >= s.accessExpiresAt) act.endSession(SESSION_ENDED);
    }
  };
  const timer = window.setInterval(() => void tick(), 10_000);
  const onVisible = () => void tick();
  document.addEventListener('visibilitychange', onVisible);
  void tick();
  return () => {
    unsubscribe();
    window.clearInterval(timer);
    document.removeEventListener('visibilitychange', onVisible);
    events.forEach((e) => window.removeEventListener(e, touch));
  };
}
