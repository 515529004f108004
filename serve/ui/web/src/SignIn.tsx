import { useState } from "react";
import { call } from "./api";

/** Sign in with an API key (kept by the server in an HttpOnly session cookie, gone when the browser closes),
 * or with the identity provider when the server has browser sign-in configured. */
export function SignIn({ oidc, onSignedIn }: { oidc: boolean; onSignedIn: () => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await call("/ui/api/session", { method: "POST", body: { api_key: key.trim() } });
      setKey("");
      onSignedIn();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  const next = encodeURIComponent(window.location.pathname + window.location.search);
  return (
    <div className="signin">
      <h1>rayweave</h1>
      <form onSubmit={submit}>
        <label>
          API key
          <input type="password" name="api_key" autoComplete="off" value={key} onChange={(e) => setKey(e.target.value)} autoFocus />
        </label>
        <button type="submit" disabled={busy || !key.trim()}>
          Sign in
        </button>
        <p className="hint">The key is kept for this browser session only, in a cookie page scripts cannot read.</p>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </form>
      {oidc && (
        <p>
          <a href={`/auth/login?next=${next}`}>Sign in with your organisation's account</a>
        </p>
      )}
    </div>
  );
}
