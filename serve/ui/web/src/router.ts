// Path routing under /ui (the server answers every /ui/* path with the page: serve/ui/routes.py).

import { useEffect, useState } from "react";

export const BASE = "/ui";

export type Route =
  | { page: "workflows" }
  | { page: "workflow"; id: string; tab: string }
  | { page: "run"; id: string }
  | { page: "not-found"; path: string };

export function parseRoute(pathname: string, search = ""): Route {
  const path = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const tab = new URLSearchParams(search).get("tab") ?? "graph";
  if (parts.length === 0 || (parts.length === 1 && parts[0] === "workflows")) return { page: "workflows" };
  if (parts.length === 2 && parts[0] === "workflows") return { page: "workflow", id: parts[1], tab };
  if (parts.length === 2 && parts[0] === "runs") return { page: "run", id: parts[1] };
  return { page: "not-found", path };
}

export function navigate(to: string): void {
  window.history.pushState(null, "", BASE + to);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.pathname, window.location.search));
  useEffect(() => {
    const update = () => setRoute(parseRoute(window.location.pathname, window.location.search));
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return route;
}
