// The consultation on screen as a pure state machine: what the patient did, what the gateway
// said, and the stream's typed events (`ChatStreamEvent`) in; the messages, the phase and the
// error out. No React, no network: `useChat` does the calls and dispatches what happened.
import type { ChatStreamEvent, Handoff, Message } from "../api/client";
import type { ChatError, ChatItem } from "./types";

export type Phase = "loading" | "idle" | "sending" | "streaming" | "stopping";

/** The turn under way, kept after a failure: what Retry does again. */
export type Pending = { kind: "send"; content: string; usersBefore: number } | { kind: "regenerate" };

export interface ChatState {
  items: ChatItem[];
  phase: Phase;
  error: ChatError | null;
  /** The session no longer exists: nothing more can be sent to it. */
  gone: boolean;
  /** The turn in flight, or the last one that failed; null once a turn is answered. */
  pending: Pending | null;
  /** A person is involved (a case is active for this session), as the gateway last said. */
  handoff: Handoff | null;
}

export type ChatAction =
  /** A new consultation, nothing in it yet. */
  | { type: "reset" }
  /** Another session is being read. */
  | { type: "loading" }
  | { type: "loaded"; messages: Message[]; handoff?: Handoff | null }
  /** The hand-off changed (asked for, claimed, paused, answered, ended), or was read. */
  | { type: "handoff"; handoff: Handoff | null }
  /** A clinician's reply arrived live. */
  | { type: "clinicianMessage"; message: Message }
  | { type: "loadFailed"; error: ChatError }
  /** A turn begins (a new consultation's session may still be being created). */
  | { type: "sending" }
  /** The question is on its way: shown at once. `key` names its bubble. */
  | { type: "asked"; content: string; key: string }
  /** The last question is answered again: its earlier answer goes. */
  | { type: "regenerating" }
  /** Retry, after the session was read again: `stored` says whether the failed question
   * reached the gateway (then it is answered again, not sent twice). */
  | { type: "retrying"; stored: Message[]; key: string }
  /** The gateway took the turn: the answer streams into a new bubble. */
  | { type: "opened"; key: string }
  | { type: "event"; event: ChatStreamEvent }
  | { type: "stopping" }
  /** The turn is over: answered, or stopped here. */
  | { type: "answered" }
  /** The turn, or what had to come before it, failed. */
  | { type: "failed"; error: ChatError };

export function initialChat(sessionId: string | null): ChatState {
  return { items: [], phase: sessionId ? "loading" : "idle", error: null, gone: false, pending: null, handoff: null };
}

export function fromStored(m: Message): ChatItem {
  return {
    key: `m${m.id}`,
    role: m.role === "user" || m.role === "clinician" ? m.role : "assistant",
    content: m.content,
    status: m.status === "stopped" || m.status === "failed" ? m.status : "complete",
    ...(m.author ? { author: m.author } : {}),
    ...(m.review ? { review: m.review } : {}),
  };
}

/** Stored messages as shown: a question left without an answer is marked so, unless it
 * waits for the clinician who paused the model. */
export function shown(messages: Message[], handoff: Handoff | null = null): ChatItem[] {
  const items = messages.map(fromStored);
  const last = items[items.length - 1];
  if (last?.role === "user" && !handoff?.model_paused) last.status = "unanswered";
  return items;
}

/** What Retry does: a question the gateway stored already is answered again (regenerate),
 * one it never got is sent again. */
export function planRetry(pending: Pending, stored: Message[]): Pending {
  if (pending.kind === "send" && stored.filter((m) => m.role === "user").length > pending.usersBefore) {
    return { kind: "regenerate" };
  }
  return pending;
}

const users = (items: ChatItem[]) => items.filter((x) => x.role === "user").length;

/** The answer being written (the last item, when it is the assistant's). */
function patchAnswer(items: ChatItem[], patch: (x: ChatItem) => ChatItem): ChatItem[] {
  const last = items[items.length - 1];
  if (last?.role !== "assistant") return items;
  return [...items.slice(0, -1), patch(last)];
}

/** An answer still marked streaming when its stream is over was cut short: the gateway keeps
 * what arrived as a stopped answer. */
function endStream(items: ChatItem[]): ChatItem[] {
  return patchAnswer(items, (x) => (x.status === "streaming" ? { ...x, status: "stopped" } : x));
}

function onEvent(items: ChatItem[], event: ChatStreamEvent): ChatItem[] {
  switch (event.event) {
    case "meta": // the emergency notice comes before the first word of the answer
      return patchAnswer(items, (x) => ({ ...x, emergency: event.data.emergency }));
    case "delta":
      return patchAnswer(items, (x) => ({ ...x, content: x.content + event.data.text }));
    case "done": {
      const done = event.data;
      return patchAnswer(items, (x) => ({
        ...x,
        key: `m${done.message.id}`,
        content: done.message.content,
        status: done.message.status === "stopped" ? "stopped" : "complete",
        disclaimer: done.disclaimer,
        emergency: done.emergency ?? x.emergency ?? null,
        prescription: done.prescription ?? null,
      }));
    }
    case "held": // no model answers while a clinician has paused it: no bubble
      return items.filter((x, i) => !(i === items.length - 1 && x.role === "assistant" && !x.content));
    case "error": // the partial answer is kept, as the gateway stored it
      return patchAnswer(items, (x) => ({ ...x, content: event.data.message.content ?? x.content, status: "failed" }));
  }
}

/** After a failed turn: an answer that never started goes and its question is marked
 * unanswered (Retry offers it again); a partial answer stays. */
function afterFailure(items: ChatItem[]): ChatItem[] {
  const last = items[items.length - 1];
  if (last?.role === "assistant" && last.status === "streaming" && !last.content) {
    return items
      .slice(0, -1)
      .map((x, i, all) => (i === all.length - 1 && x.role === "user" ? { ...x, status: "unanswered" as const } : x));
  }
  if (last?.role === "user") return [...items.slice(0, -1), { ...last, status: "unanswered" }];
  return endStream(items);
}

export function chatReducer(state: ChatState, action: ChatAction): ChatState {
  switch (action.type) {
    case "reset":
      return initialChat(null);
    case "loading":
      return { ...state, phase: "loading", error: null, gone: false, pending: null };
    case "loaded": {
      const handoff = action.handoff ?? null;
      return { ...state, items: shown(action.messages, handoff), phase: "idle", handoff };
    }
    case "handoff":
      return { ...state, handoff: action.handoff };
    case "clinicianMessage": {
      const item = fromStored(action.message);
      if (state.items.some((x) => x.key === item.key)) return state;
      return { ...state, items: [...state.items, item] };
    }
    case "loadFailed":
      return { ...state, items: [], phase: "idle", error: action.error, gone: action.error.kind === "session_gone" };
    case "sending":
      return { ...state, phase: "sending", error: null };
    case "asked":
      return {
        ...state,
        items: [...state.items, { key: action.key, role: "user", content: action.content, status: "complete" }],
        pending: { kind: "send", content: action.content, usersBefore: users(state.items) },
      };
    case "regenerating": {
      const items = [...state.items];
      while (items.length && items[items.length - 1].role === "assistant") items.pop();
      return { ...state, items, phase: "sending", error: null, pending: { kind: "regenerate" } };
    }
    case "retrying": {
      if (!state.pending) return state;
      const next = planRetry(state.pending, action.stored);
      const stored = shown(action.stored);
      const items =
        next.kind === "send"
          ? [...stored, { key: action.key, role: "user" as const, content: next.content, status: "complete" as const }]
          : stored.filter((x, i, all) => !(i === all.length - 1 && x.role === "assistant"));
      return { ...state, items, phase: "sending", error: null, pending: next };
    }
    case "opened":
      return {
        ...state,
        phase: state.phase === "stopping" ? "stopping" : "streaming",
        items: [
          ...state.items.map((x) => (x.status === "unanswered" ? { ...x, status: "complete" as const } : x)),
          { key: action.key, role: "assistant", content: "", status: "streaming" },
        ],
      };
    case "event": {
      const e = action.event;
      // A question can bring a clinician in (emergency rules, "转人工"): `meta` says so first,
      // `done` again; `held` means the model is paused and the clinician has the question.
      const handoff =
        e.event === "meta" || e.event === "done"
          ? (e.data.handoff ?? state.handoff)
          : e.event === "held"
            ? e.data
            : state.handoff;
      return { ...state, items: onEvent(state.items, e), handoff };
    }
    case "stopping":
      return { ...state, phase: "stopping" };
    case "answered":
      return { ...state, items: endStream(state.items), phase: "idle", error: null, pending: null };
    case "failed":
      return {
        ...state,
        items: afterFailure(state.items),
        phase: "idle",
        error: action.error,
        gone: state.gone || action.error.kind === "session_gone",
      };
  }
}
