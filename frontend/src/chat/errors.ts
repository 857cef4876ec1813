import { ApiError } from "../api/client";
import type { ChatError } from "./types";

/** What the patient is told about a failure, by kind. */
export function classify(error: unknown): ChatError {
  if (error instanceof ApiError) {
    if (error.status === 404)
      return { kind: "session_gone", message: error.message, retryAfter: null, retryable: false };
    if (error.status === 429)
      return { kind: "rate_limited", message: error.message, retryAfter: error.retryAfter ?? 10, retryable: true };
    if (error.status === 503 || error.status === 504 || error.status === 502 || error.code.startsWith("engine"))
      return { kind: "engine_unavailable", message: error.message, retryAfter: error.retryAfter, retryable: true };
    if (error.status === 0) return { kind: "network", message: error.message, retryAfter: null, retryable: true };
    return { kind: "other", message: error.message, retryAfter: null, retryable: error.status >= 500 };
  }
  if (error instanceof TypeError) return { kind: "network", message: String(error), retryAfter: null, retryable: true };
  return { kind: "other", message: String(error), retryAfter: null, retryable: true };
}
