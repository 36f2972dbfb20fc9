import { describe, expect, it } from 'vitest';
import type { TokenResponse } from '../src/api/types';
import { actions, can, createAppStore } from '../src/store';
import { apiNode, delta, snap } from './fixtures';

const token = (over: Partial<TokenResponse> = {}): TokenResponse => ({
  access_token: 'a1',
  token_type: 'bearer',
  expires_in: 900,
  refresh_token: 'r1',
  refresh_expires_in: 43200,
  account: 'ops',
  role: 'operator',
  ...over,
});

function setup() {
  const store = createAppStore();
  return { store, act: actions(store) };
}

describe('session', () => {
  it('login stores the tokens with absolute expiry times', () => {
    const { store, act } = setup();
    act.loggedIn(token(), 1_000);
    expect(store.getState().session).toEqual({
      account: 'ops',
      role: 'operator',
      accessToken: 'a1',
      accessExpiresAt: 1_000 + 900_000,
      refreshToken: 'r1',
      refreshExpiresAt: 1_000 + 43_200_000,
    });
  });

  it('a renewal without a new refresh token keeps the old one', () => {
    const { store, act } = setup();
    act.loggedIn(token(), 0);
    act.renewed(token({ access_token: 'a2', refresh_token: null, refresh_expires_in: null }), 5_000);
    const s = store.getState().session!;
    expect(s.accessToken).toBe('a2');
    expect(s.accessExpiresAt).toBe(905_000);
    expect(s.refreshToken).toBe('r1');
    expect(s.refreshExpiresAt).toBe(43_200_000);
  });

  it('ending the session drops tokens and data and says why', () => {
    const { store, act } = setup();
    act.loggedIn(token());
    act.snapshot(snap(0, [apiNode('h1')]));
    act.setPage('platform');
    act.endSession('expired');
    const s = store.getState();
    expect(s.session).toBeNull();
    expect(s.sessionEnded).toBe('expired');
    expect(s.graph.nodes.size).toBe(0);
    expect(s.page).toBe('topology');
  });

  it('controls follow the role', () => {
    const { store, act } = setup();
    expect(can(null, 'viewer')).toBe(false);
    act.loggedIn(token({ role: 'viewer' }));
    expect(can(store.getState().session, 'viewer')).toBe(true);
    expect(can(store.getState().session, 'operator')).toBe(false);
    act.loggedIn(token({ role: 'admin' }));
    expect(can(store.getState().session, 'operator')).toBe(true);
  });
});

describe('live topology', () => {
  it('a snapshot replaces the graph; deltas patch it in order', () => {
    const { store, act } = setup();
    act.snapshot(snap(3, [apiNode('a', 'h'), apiNode('b', 'h')], [['a', 'b']]));
    expect(store.getState().loaded).toBe(true);
    expect(act.delta(delta(4, { add: [apiNode('c', 'h')], remove: ['b'], edges_add: [{ source: 'a', target: 'c', connections: 1 }] }))).toBe(true);
    const g = store.getState().graph;
    expect([...g.nodes.keys()].sort()).toEqual(['a', 'c']);
    // The edge of the removed node went with it.
    expect([...g.edges.keys()]).toEqual(['a->c']);
    expect(g.seq).toBe(4);
  });

  it('an update replaces the node (health from the probe state)', () => {
    const { store, act } = setup();
    act.snapshot(snap(0, [apiNode('a', 'h')]));
    act.delta(delta(1, { update: [apiNode('a', 'h', 'offline')] }));
    expect(store.getState().graph.nodes.get('a')!.health).toBe('critical');
  });

  it('a gap in the sequence is reported (the connection re-subscribes); a duplicate is ignored', () => {
    const { store, act } = setup();
    act.snapshot(snap(0, [apiNode('a')]));
    expect(act.delta(delta(2, { add: [apiNode('x')] }))).toBe(false);
    expect(store.getState().graph.nodes.has('x')).toBe(false);
    expect(act.delta(delta(1, { add: [apiNode('y')] }))).toBe(true);
    expect(act.delta(delta(1, { add: [apiNode('z')] }))).toBe(true);
    expect([...store.getState().graph.nodes.keys()].sort()).toEqual(['a', 'y']);
  });

  it('deltas before the snapshot of a new view are ignored', () => {
    const { store, act } = setup();
    act.snapshot(snap(0, [apiNode('a')]));
    act.setView('hosts');
    expect(store.getState().loaded).toBe(false);
    expect(act.delta(delta(1, { add: [apiNode('x')] }))).toBe(true);
    expect(store.getState().graph.nodes.size).toBe(0);
  });

  it('the selection is cleared when its node disappears', () => {
    const { store, act } = setup();
    act.snapshot(snap(0, [apiNode('a'), apiNode('b')]));
    act.select('a');
    act.delta(delta(1, { remove: ['b'] }));
    expect(store.getState().selected).toBe('a');
    act.delta(delta(2, { remove: ['a'] }));
    expect(store.getState().selected).toBeNull();
  });

  it('expanding a group toggles it without touching the graph', () => {
    const { store, act } = setup();
    act.snapshot(snap(0, [apiNode('a', 'h')]));
    const graph = store.getState().graph;
    act.toggleExpanded('group:h');
    expect(store.getState().expanded.has('group:h')).toBe(true);
    act.toggleExpanded('group:h');
    expect(store.getState().expanded.has('group:h')).toBe(false);
    expect(store.getState().graph).toBe(graph);
  });
});
