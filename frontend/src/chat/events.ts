// The streamed answer's events, typed from the gateway's OpenAPI (`ChatStreamEvent`).
import type { ChatStreamEvent } from "../api/client";
import type { SseEvent } from "../api/sse";

const NAMES: ReadonlySet<string> = new Set<ChatStreamEvent["event"]>(["meta", "delta", "done", "error", "held"]);

/** The typed event for one SSE event of a streamed answer; null for a name this client does
 * not know (a newer gateway may add events: they are skipped, not fatal). */
export function chatEvent(ev: SseEvent): ChatStreamEvent | null {
  if (!NAMES.has(ev.event)) return null;
  return { event: ev.event, data: JSON.parse(ev.data) } as ChatStreamEvent;
}
