import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { vi } from "vitest";
import { AuthProvider } from "./auth/AuthContext";
import { I18nProvider, type Lang } from "./i18n";

export function renderWith(ui: ReactElement, { lang = "zh" as Lang, auth = false } = {}) {
  return render(<I18nProvider lang={lang}>{auth ? <AuthProvider>{ui}</AuthProvider> : ui}</I18nProvider>);
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

export function sse(events: [string, unknown][]) {
  const text = events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join("");
  return new Response(text, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

type Handler = (req: Request) => Response | Promise<Response>;

/** Replace fetch with a router of handlers keyed "METHOD /path"; records every request. */
export function mockFetch(routes: Record<string, Handler | Handler[]>) {
  const calls: { method: string; path: string; query: URLSearchParams; body: string; headers: Headers }[] = [];
  const spy = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = input instanceof Request ? input : new Request(String(input), init);
    const { pathname: path, searchParams: query } = new URL(req.url);
    const body = req.method === "GET" ? "" : await req.clone().text();
    calls.push({ method: req.method, path, query, body, headers: req.headers });
    const key = `${req.method} ${path}`;
    const handler = routes[key];
    if (!handler) return json({ error: { code: "not_found", message: `no mock for ${key}` } }, 404);
    if (Array.isArray(handler)) {
      const next = handler.length > 1 ? handler.shift()! : handler[0];
      return next(req);
    }
    return handler(req);
  });
  globalThis.fetch = spy as typeof fetch;
  return calls;
}

export const SID = "11111111-1111-1111-1111-111111111111";
export const session = (title = "") => ({
  id: SID,
  title,
  created_at: "2025-01-01T00:00:00Z",
  updated_at: "2025-01-01T00:00:00Z",
});
export const message = (id: number, role: string, content: string, status = "complete") => ({
  id,
  seq: id,
  role,
  content,
  status,
  finish_reason: null,
  error: null,
  prompt_tokens: null,
  completion_tokens: null,
  turns_used: null,
  created_at: "2025-01-01T00:00:00Z",
});
