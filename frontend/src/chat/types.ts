import type { Author, Emergency, Prescription, ReviewLabel } from "../api/client";

export type { Emergency };

/** A message as shown: stored ones, plus the question and answer of a turn in flight.
 * `assistant` is the model; `clinician` a person, signed with their name. */
export interface ChatItem {
  key: string;
  role: "user" | "assistant" | "clinician";
  content: string;
  status: "complete" | "streaming" | "stopped" | "failed" | "unanswered";
  emergency?: Emergency | null;
  disclaimer?: string | null;
  prescription?: Prescription | null;
  author?: Author | null;
  review?: ReviewLabel | null;
}

export type ChatErrorKind = "engine_unavailable" | "rate_limited" | "session_gone" | "network" | "other";

export interface ChatError {
  kind: ChatErrorKind;
  message: string;
  retryAfter: number | null;
  /** Whether Retry can be offered (a session that is gone cannot be retried). */
  retryable: boolean;
}
