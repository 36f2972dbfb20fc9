// The one store (Zustand): session, navigation, the live topology, platform status and connection state.
// Actions are plain functions of the state so the unit tests drive the same code the app runs.
import { useStore } from 'zustand';
import { createStore } from 'zustand/vanilla';
import { toDelta, toNode, toEdge } from './api/adapt';
import type { DeltaMessage, MarathonApp, PlatformStatus, Role, SnapshotMessage, TokenResponse, View } from './api/types';
import { applyDelta, emptyGraph, fromSnapshot, type GraphData } from './graph/model';

export interface Session {
  account: string;
  role: Role;
  accessToken: string;
  /** Epoch ms after which the access token is no longer accepted. */
  accessExpiresAt: number;
  refreshToken: string | null;
  refreshExpiresAt: number | null;
}

export type Page = 'topology' | 'platform';
export type Connection = 'idle' | 'connecting' | 'live' | 'reconnecting';

export interface AppState {
  session: Session | null;
  /** Why the last session ended (expired, revoked, logged out), shown on the login page. */
  sessionEnded: string | null;
  page: Page;
  view: View;
  grouped: boolean;
  expanded: ReadonlySet<string>;
  graph: GraphData;
  totalNodes: number;
  /** A snapshot arrived for the current subscription (distinguishes "loading" from "empty"). */
  loaded: boolean;
  search: string;
  selected: string | null;
  /** When the last snapshot or delta was applied (epoch ms), shown so a person sees the data is live. */
  lastUpdate: number | null;
  connection: Connection;
  /** The API cannot be reached or refused us: shown as an error state, cleared on the next success. */
  apiError: string | null;
  platform: PlatformStatus | null;
  apps: MarathonApp[] | null;
  /** Result of the last Marathon action, for a person to read (role="status"). */
  notice: string | null;
}

export const initialState: AppState = {
  session: null,
  sessionEnded: null,
  page: 'topology',
  view: 'containers',
  grouped: true,
  expanded: new Set(),
  graph: emptyGraph,
  totalNodes: 0,
  loaded: false,
  search: '',
  selected: null,
  lastUpdate: null,
  connection: 'idle',
  apiError: null,
  platform: null,
  apps: null,
  notice: null,
};

const ROLE_RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** Whether the session's role may use controls that need `required` (the API refuses anyway). */
export function can(session: Session | null, required: Role): boolean {
  return session !== null && ROLE_RANK[session.role] >= ROLE_RANK[required];
}

export function sessionFrom(token: TokenResponse, now: number, previous?: Session | null): Session {
  return {
    account: token.account,
    role: token.role,
    accessToken: token.access_token,
    accessExpiresAt: now + token.expires_in * 1000,
    // A refresh answer may omit the refresh token: keep the one we have.
    refreshToken: token.refresh_token ?? previous?.refreshToken ?? null,
    refreshExpiresAt:
      token.refresh_expires_in != null ? now + token.refresh_expires_in * 1000 : (previous?.refreshExpiresAt ?? null),
  };
}

export function createAppStore(init: Partial<AppState> = {}) {
  return createStore<AppState>()(() => ({ ...initialState, ...init }));
}

export type AppStore = ReturnType<typeof createAppStore>;

export function actions(store: AppStore) {
  const set = store.setState;
  const get = store.getState;
  return {
    loggedIn(token: TokenResponse, now = Date.now()) {
      set({ session: sessionFrom(token, now, get().session), sessionEnded: null, apiError: null });
    },
    renewed(token: TokenResponse, now = Date.now()) {
      const prev = get().session;
      if (!prev) return;
      set({ session: sessionFrom(token, now, prev) });
    },
    /** End the session cleanly: drop tokens and data, say why, back to the login page. */
    endSession(reason: string | null) {
      set({ ...initialState, sessionEnded: reason, expanded: new Set() });
    },
    setPage(page: Page) {
      set({ page });
    },
    setView(view: View) {
      if (view === get().view) return;
      set({ view, graph: emptyGraph, loaded: false, selected: null, expanded: new Set(), totalNodes: 0 });
    },
    setGrouped(grouped: boolean) {
      set({ grouped });
    },
    toggleExpanded(groupId: string) {
      const expanded = new Set(get().expanded);
      if (expanded.has(groupId)) expanded.delete(groupId);
      else expanded.add(groupId);
      set({ expanded });
    },
    setSearch(search: string) {
      set({ search });
    },
    select(id: string | null) {
      set({ selected: id });
    },
    snapshot(msg: SnapshotMessage) {
      set({
        graph: fromSnapshot(msg.seq, msg.nodes.map(toNode), msg.edges.map(toEdge)),
        totalNodes: msg.total_nodes,
        loaded: true,
        lastUpdate: Date.now(),
      });
    },
    /** Apply a delta; false when it does not follow the last one (a gap: the caller re-subscribes). */
    delta(msg: DeltaMessage): boolean {
      const graph = get().graph;
      if (!get().loaded) return true; // a late delta of the previous subscription: its snapshot will follow
      if (msg.seq <= graph.seq) return true; // a duplicate: nothing to do
      if (msg.seq !== graph.seq + 1) return false;
      const next = applyDelta(graph, toDelta(msg));
      const selected = get().selected;
      set({
        graph: next,
        totalNodes: msg.total_nodes,
        lastUpdate: Date.now(),
        selected: selected !== null && !next.nodes.has(selected) ? null : selected,
      });
      return true;
    },
    setConnection(connection: Connection) {
      set({ connection });
    },
    setApiError(apiError: string | null) {
      set({ apiError });
    },
    setPlatform(platform: PlatformStatus | null, apps: MarathonApp[] | null) {
      set({ platform, apps });
    },
    setNotice(notice: string | null) {
      set({ notice });
    },
  };
}

export type Actions = ReturnType<typeof actions>;

// The application's instance.
export const appStore = createAppStore();
export const act = actions(appStore);
export function useApp<T>(selector: (s: AppState) => T): T {
  return useStore(appStore, selector);
}
