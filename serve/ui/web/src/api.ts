// The API client of the page: same origin, signed in by the session cookie (HttpOnly: scripts never see the
// key), with the CSRF cookie echoed in X-CSRF-Token on unsafe requests (serve/sessions.py).

import type { Diagnostic } from "./model";

/** An error answer of the API (application/problem+json, RFC 9457). */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly diagnostics: Diagnostic[] = [],
  ) {
    super(detail);
  }
}

export function csrfToken(): string {
  const match = document.cookie.split("; ").find((c) => c.startsWith("rw_csrf="));
  return match ? decodeURIComponent(match.slice("rw_csrf=".length)) : "";
}

/** Calls listeners when a request finds the session gone (401), so the page can show the sign-in form. */
const signedOut = new Set<() => void>();
export function onSignedOut(listener: () => void): () => void {
  signedOut.add(listener);
  return () => signedOut.delete(listener);
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Call `path` on the API; resolves with the JSON body (and the response), rejects with an `ApiProblem`. */
export async function call<T>(path: string, options: CallOptions = {}): Promise<{ data: T; response: Response }> {
  const method = options.method ?? "GET";
  const headers: Record<string, string> = { Accept: "application/json", ...(options.headers ?? {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (!["GET", "HEAD", "OPTIONS"].includes(method)) headers["X-CSRF-Token"] = csrfToken();
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const problem = (data ?? {}) as { detail?: string; diagnostics?: Diagnostic[] };
    if (response.status === 401 && !path.startsWith("/ui/api/session")) signedOut.forEach((l) => l());
    throw new ApiProblem(response.status, problem.detail ?? `${response.status} ${response.statusText}`, problem.diagnostics ?? []);
  }
  return { data: data as T, response };
}

export async function get<T>(path: string): Promise<T> {
  return (await call<T>(path)).data;
}

export async function post<T>(path: string, body: unknown): Promise<T> {
  return (await call<T>(path, { method: "POST", body })).data;
}

/** The WebSocket URL of a path on this server (same origin: the session cookie goes with the handshake). */
export function socketUrl(path: string): string {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

export interface Session {
  signed_in: boolean;
  username?: string;
  scopes?: string[];
  /** How the session was opened: "api-key" (this page's form) or "oidc" (GET /auth/login). */
  kind?: string;
  oidc_login: boolean;
}
