import { useCallback, useEffect, useState } from "react";
import { call, get, onSignedOut, type Session } from "./api";
import { RunPage } from "./RunPage";
import { Notifications } from "./Notifications";
import { navigate, useRoute } from "./router";
import { SignIn } from "./SignIn";
import { WorkflowList } from "./WorkflowList";
import { WorkflowPage } from "./WorkflowPage";

/** The page: the sign-in form until a session exists, then the workflow list, a workflow or a run. */
export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const route = useRoute();
  const refresh = useCallback(() => {
    get<Session>("/ui/api/session").then(setSession, () => setSession({ signed_in: false, oidc_login: false }));
  }, []);
  useEffect(refresh, [refresh]);
  useEffect(() => onSignedOut(() => setSession((s) => (s ? { ...s, signed_in: false } : s))), []);

  if (session === null) return <div className="loading">Loading…</div>;
  if (!session.signed_in) return <SignIn oidc={session.oidc_login} onSignedIn={refresh} />;

  const signOut = async () => {
    await call("/ui/api/session", { method: "DELETE" }).catch(() => undefined);
    refresh();
  };
  return (
    <div className="app">
      <header className="topbar">
        <a
          className="brand"
          href="/ui/"
          onClick={(e) => {
            e.preventDefault();
            navigate("/");
          }}
        >
          rayweave
        </a>
        <Notifications key={session.username} user={session.username ?? ""} />
        <span className="who" data-testid="username">
          {session.username}
        </span>
        <button onClick={signOut}>Sign out</button>
      </header>
      <main>
        {route.page === "workflows" && <WorkflowList />}
        {route.page === "workflow" && <WorkflowPage key={route.id} id={route.id} tab={route.tab} />}
        {route.page === "run" && <RunPage key={route.id} id={route.id} />}
        {route.page === "not-found" && <p className="error">No page at /ui{route.path}.</p>}
      </main>
    </div>
  );
}
