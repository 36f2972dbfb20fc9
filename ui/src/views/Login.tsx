import { useState, type FormEvent } from 'react';
import { ApiError, login } from '../api/client';
import { useApp } from '../store';

export function Login() {
  const ended = useApp((s) => s.sessionEnded);
  const [account, setAccount] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(account, password);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 0
          ? 'The API cannot be reached. Check that it runs and try again.'
          : err instanceof ApiError && err.status === 401
            ? 'Unknown account or wrong password.'
            : err instanceof Error
              ? err.message
              : String(err),
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">orchestrator</h1>
        {ended && (
          <p className="notice" role="status">
            {ended}
          </p>
        )}
        <label>
          Account
          <input name="account" autoComplete="username" value={account} onChange={(e) => setAccount(e.target.value)} required />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </label>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}
