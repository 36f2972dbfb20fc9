import { useEffect } from 'react';
import { logout, startSessionKeeper } from './api/client';
import { LiveConnection } from './api/live';
import { act, useApp } from './store';
import { ConnectionBadge } from './views/common';
import { Login } from './views/Login';
import { Platform } from './views/Platform';
import { Topology } from './views/Topology';

export function App({ bench = false }: { bench?: boolean }) {
  const account = useApp((s) => s.session?.account);
  const role = useApp((s) => s.session?.role);
  const page = useApp((s) => s.page);
  const apiError = useApp((s) => s.apiError);

  useEffect(() => (bench ? undefined : startSessionKeeper()), [bench]);
  useEffect(() => {
    if (bench || !account) return;
    const live = new LiveConnection();
    return () => live.stop();
  }, [bench, account]);

  if (bench) {
    return (
      <div className="app">
        <Topology />
      </div>
    );
  }
  if (!account) return <Login />;
  return (
    <div className="app">
      <header className="top">
        <span className="brand">orchestrator</span>
        <nav aria-label="Views">
          {(['topology', 'platform'] as const).map((p) => (
            <button key={p} aria-current={page === p ? 'page' : undefined} onClick={() => act.setPage(p)}>
              {p === 'topology' ? 'Topology' : 'Platform'}
            </button>
          ))}
        </nav>
        <ConnectionBadge />
        <span className="who" data-testid="who">
          {account} ({role})
        </span>
        <button onClick={() => void logout()}>Log out</button>
      </header>
      {apiError && (
        <div className="banner" role="alert" data-testid="api-error">
          {apiError}
        </div>
      )}
      <main>{page === 'topology' ? <Topology /> : <Platform />}</main>
    </div>
  );
}
