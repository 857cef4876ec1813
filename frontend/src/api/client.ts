// The typed API client: paths and bodies come from schema.d.ts, generated from the gateway's
// OpenAPI (`npm run gen:api`); nothing here restates them by hand.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type User = Schemas["UserOut"];
export type Session = Schemas["SessionOut"];
export type SessionDetail = Schemas["SessionDetail"];
export type Message = Schemas["MessageOut"];
export type FileObject = Schemas["FileObject"];
export type Job = Schemas["JobObject"];
export type JobEvent = Schemas["EventObject"];
export type EvalRun = Schemas["EvalRunObject"];
export type EvalRunCreate = Schemas["EvalRunCreate"];
export type EvalCase = Schemas["EvalCaseObject"];
export type AuditEntry = Schemas["AuditOut"];
/** An answer as stored, with its notices (the JSON answer, and a stream's `done` event). */
export type ChatAnswer = Schemas["ChatAnswer"];
export type Emergency = Schemas["Emergency"];
/** One problem of an uploaded file (an error body's `details`). */
export type Problem = Schemas["Problem"];
export type ErrorBody = Schemas["ErrorBody"];
export type ModelObject = Schemas["ModelObject"];
export type Prescription = Schemas["Prescription"];
/** Clinicians in the loop (services/gateway/cases). */
export type Handoff = Schemas["Handoff"];
export type Author = Schemas["Author"];
export type ReviewLabel = Schemas["ReviewLabel"];
export type Case = Schemas["CaseOut"];
export type CaseDetail = Schemas["CaseDetail"];
export type CaseSummary = Schemas["CaseSummary"];
/** One live event of a session while a person is involved: `handoff` or `message`. */
export type SessionLiveEvent =
  paths["/api/sessions/{session_id}/events"]["get"]["responses"][200]["content"]["text/event-stream"];

/** One server-sent event of a streamed answer (`event` names it; `data` is its JSON):
 * `meta`, `delta`…, then `done` or `error` (`services/gateway/chat/events.py`). */
export type ChatStreamEvent =
  paths["/api/sessions/{session_id}/messages"]["post"]["responses"][200]["content"]["text/event-stream"];
export type ChatStreamEventOf<E extends ChatStreamEvent["event"]> = Extract<ChatStreamEvent, { event: E }>;

export const CSRF_COOKIE = "medchat_csrf";
export const CSRF_HEADER = "X-CSRF-Token";

/** The CSRF token our pages echo on every write (double-submit cookie, readable by design). */
export function csrfToken(): string {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (!["GET", "HEAD", "OPTIONS"].includes(request.method)) {
      const token = csrfToken();
      if (token) request.headers.set(CSRF_HEADER, token);
    }
    return request;
  },
};

export const api = createClient<paths>({
  baseUrl: typeof window === "undefined" ? "" : window.location.origin,
  credentials: "same-origin",
  // Looked up at call time, so tests can replace globalThis.fetch.
  fetch: (request: Request) => globalThis.fetch(request),
});
api.use(csrf);

/** The gateway's one error body: {"error": {"code", "message", "param", "details"?}}. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter: number | null = null,
    readonly details: Problem[] | null = null,
  ) {
    super(message);
  }
}

export async function errorFrom(response: Response, body?: unknown): Promise<ApiError> {
  if (body === undefined) {
    try {
      body = await response.json();
    } catch {
      body = null;
    }
  }
  const error = (body as Partial<ErrorBody> | null)?.error as Record<string, unknown> | undefined;
  const retry = Number(response.headers.get("Retry-After"));
  return new ApiError(
    response.status,
    typeof error?.code === "string" ? error.code : `http_${response.status}`,
    typeof error?.message === "string" ? error.message : response.statusText,
    Number.isFinite(retry) && retry > 0 ? retry : null,
    Array.isArray(error?.details) ? (error.details as Problem[]) : null,
  );
}

/** The data of an openapi-fetch result, or its error thrown as an ApiError. */
export async function unwrap<T>(result: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await result;
  if (!response.ok) throw await errorFrom(response, error ?? null);
  return data as T;
}

/** Ids of the models the gateway lists (served first), for model pickers. */
export async function modelIds(): Promise<string[]> {
  const list = await unwrap(api.GET("/v1/models"));
  return list.data.map((m) => m.id);
}
