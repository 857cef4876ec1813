// One consultation: its messages, the answer being streamed, stop, regenerate, and a retry
// that never asks the same question twice.
import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, errorFrom, unwrap, type ChatAnswer, type Message } from "../api/client";
import { readSse } from "../api/sse";
import type { Lang } from "../i18n";
import { classify } from "./errors";
import type { ChatError, ChatItem, Emergency } from "./types";

export type Phase = "loading" | "idle" | "sending" | "streaming" | "stopping";

function fromStored(m: Message): ChatItem {
  return {
    key: `m${m.id}`,
    role: m.role === "user" ? "user" : "assistant",
    content: m.content,
    status: m.status === "stopped" || m.status === "failed" ? m.status : "complete",
  };
}

/** Stored messages as shown: a question left without an answer is marked so. */
function shown(messages: Message[]): ChatItem[] {
  const items = messages.map(fromStored);
  const last = items[items.length - 1];
  if (last?.role === "user") last.status = "unanswered";
  return items;
}

interface Options {
  sessionId: string | null;
  lang: Lang;
  /** A session was created for the first question (the page moves to its address). */
  onCreated: (id: string) => void;
  /** Something the session list shows changed (a title, the order). */
  onChanged: () => void;
}

type Pending = { kind: "send"; content: string; usersBefore: number } | { kind: "regenerate" };

export function useChat({ sessionId, lang, onCreated, onChanged }: Options) {
  const [items, setItems] = useState<ChatItem[]>([]);
  const [phase, setPhase] = useState<Phase>(sessionId ? "loading" : "idle");
  const [error, setError] = useState<ChatError | null>(null);
  const [gone, setGone] = useState(false);
  const busy = useRef(false); // synchronous guard: a double click sends once
  const current = useRef<string | null>(sessionId);
  const created = useRef<string | null>(null);
  const pending = useRef<Pending | null>(null);
  const abort = useRef<AbortController | null>(null);
  const itemsRef = useRef(items);
  itemsRef.current = items;

  const load = useCallback(async (id: string) => {
    const detail = await unwrap(api.GET("/api/sessions/{session_id}", { params: { path: { session_id: id } } }));
    return detail.messages;
  }, []);

  useEffect(() => {
    current.current = sessionId;
    setError(null);
    setGone(false);
    if (sessionId === null) {
      setItems([]);
      setPhase("idle");
      return;
    }
    if (created.current === sessionId) return; // we made it a moment ago: the turn is on screen
    abort.current?.abort();
    busy.current = false;
    setPhase("loading");
    let live = true;
    load(sessionId)
      .then((messages) => {
        if (!live) return;
        setItems(shown(messages));
        setPhase("idle");
      })
      .catch((e) => {
        if (!live) return;
        const err = classify(e);
        setGone(err.kind === "session_gone");
        setError(err);
        setItems([]);
        setPhase("idle");
      });
    return () => {
      live = false;
    };
  }, [sessionId, load]);

  /** Stream one answer (to a new question, or again to the last one). */
  const answer = useCallback(
    async (id: string, content: string | null) => {
      const controller = new AbortController();
      abort.current = controller;
      const path = { session_id: id };
      const call =
        content === null
          ? api.POST("/api/sessions/{session_id}/regenerate", {
              params: { path },
              body: { stream: true, lang },
              parseAs: "stream",
              signal: controller.signal,
            })
          : api.POST("/api/sessions/{session_id}/messages", {
              params: { path },
              body: { content, stream: true, lang },
              parseAs: "stream",
              signal: controller.signal,
            });
      const { data, error, response } = await call;
      if (!response.ok || !data) throw await errorFrom(response, error ?? null);
      setPhase((p) => (p === "stopping" ? p : "streaming"));
      setItems((xs) => [
        ...xs.map((x) => (x.status === "unanswered" ? { ...x, status: "complete" as const } : x)),
        { key: `a-${Date.now()}`, role: "assistant", content: "", status: "streaming" },
      ]);
      const patchLast = (patch: (x: ChatItem) => ChatItem) =>
        setItems((xs) => [...xs.slice(0, -1), patch(xs[xs.length - 1])]);
      let finished = false;
      for await (const ev of readSse(data as ReadableStream<Uint8Array>, controller.signal)) {
        const payload = JSON.parse(ev.data);
        if (ev.event === "meta") {
          const emergency = (payload.emergency ?? null) as Emergency | null;
          patchLast((x) => ({ ...x, emergency }));
        } else if (ev.event === "delta") {
          patchLast((x) => ({ ...x, content: x.content + payload.text }));
        } else if (ev.event === "done") {
          const done = payload as ChatAnswer;
          finished = true;
          patchLast((x) => ({
            ...x,
            key: `m${done.message.id}`,
            content: done.message.content,
            status: done.message.status === "stopped" ? "stopped" : "complete",
            disclaimer: done.disclaimer,
            emergency: (done.emergency as Emergency | null | undefined) ?? x.emergency ?? null,
          }));
        } else if (ev.event === "error") {
          finished = true;
          const stored = payload.message as Message | undefined;
          patchLast((x) => ({ ...x, content: stored?.content ?? x.content, status: "failed" }));
          throw new ApiError(502, payload.error?.code ?? "engine_generation_failed", payload.error?.message ?? "");
        }
      }
      if (!finished) {
        // The stream ended early (stopped here, or the connection dropped): what arrived
        // is kept by the gateway as a stopped answer.
        patchLast((x) => ({ ...x, status: "stopped" }));
      }
    },
    [lang],
  );

  const run = useCallback(
    async (job: Pending, id: string) => {
      pending.current = job;
      try {
        await answer(id, job.kind === "send" ? job.content : null);
        pending.current = null;
        setError(null);
      } catch (e) {
        if (controllerAborted(abort.current)) {
          pending.current = null;
          return;
        }
        const err = classify(e);
        setError(err);
        if (err.kind === "session_gone") setGone(true);
        // A failure before any answer arrived leaves the question unanswered on screen.
        setItems((xs) => {
          const last = xs[xs.length - 1];
          if (last?.role === "assistant" && last.status === "streaming" && !last.content) {
            return xs.slice(0, -1).map((x, i, all) =>
              i === all.length - 1 && x.role === "user" ? { ...x, status: "unanswered" as const } : x,
            );
          }
          if (last?.role === "user") return [...xs.slice(0, -1), { ...last, status: "unanswered" as const }];
          return xs;
        });
      } finally {
        abort.current = null;
        busy.current = false;
        setPhase("idle");
        onChanged();
      }
    },
    [answer, onChanged],
  );

  const send = useCallback(
    async (content: string) => {
      const text = content.trim();
      if (!text || busy.current || gone) return false;
      busy.current = true;
      setError(null);
      setPhase("sending");
      let id = current.current;
      if (id === null) {
        try {
          id = (await unwrap(api.POST("/api/sessions", { body: {} }))).id;
        } catch (e) {
          setError(classify(e));
          busy.current = false;
          setPhase("idle");
          return false;
        }
        created.current = id;
        current.current = id;
        onCreated(id);
      }
      const usersBefore = itemsRef.current.filter((x) => x.role === "user").length;
      setItems((xs) => [...xs, { key: `u-${Date.now()}`, role: "user", content: text, status: "complete" }]);
      void run({ kind: "send", content: text, usersBefore }, id);
      return true;
    },
    [gone, onCreated, run],
  );

  const regenerate = useCallback(async () => {
    const id = current.current;
    if (!id || busy.current) return;
    busy.current = true;
    setError(null);
    setPhase("sending");
    setItems((xs) => {
      const out = [...xs];
      while (out.length && out[out.length - 1].role === "assistant") out.pop();
      return out;
    });
    await run({ kind: "regenerate" }, id);
  }, [run]);

  /** Retry the failed turn: ask the gateway what it stored first, so a question it already
   * has is answered again (regenerate) instead of being sent a second time. */
  const retry = useCallback(async () => {
    const id = current.current;
    const job = pending.current;
    if (!id || !job || busy.current) return;
    busy.current = true;
    setError(null);
    setPhase("sending");
    let next: Pending = job;
    try {
      const stored = await load(id);
      if (job.kind === "send" && stored.filter((m) => m.role === "user").length > job.usersBefore) {
        next = { kind: "regenerate" };
      }
      const resend = next.kind === "send" ? next.content : null;
      setItems(
        resend !== null
          ? [...shown(stored), { key: `u-${Date.now()}`, role: "user", content: resend, status: "complete" }]
          : shown(stored).filter((_, i, all) => !(i === all.length - 1 && all[i].role === "assistant")),
      );
    } catch (e) {
      const err = classify(e);
      setError(err);
      setGone(err.kind === "session_gone");
      busy.current = false;
      setPhase("idle");
      return;
    }
    await run(next, id);
  }, [load, run]);

  const stop = useCallback(async () => {
    const id = current.current;
    const controller = abort.current;
    if (!id || !controller) return;
    setPhase("stopping");
    try {
      await unwrap(api.POST("/api/sessions/{session_id}/stop", { params: { path: { session_id: id } } }));
    } catch {
      controller.abort(); // disconnecting stops the answer too
      return;
    }
    // The gateway ends the stream with the partial answer; if it does not soon, hang up.
    setTimeout(() => {
      if (abort.current === controller) controller.abort();
    }, 5000);
  }, []);

  return { items, phase, error, gone, send, regenerate, retry, stop };
}

function controllerAborted(c: AbortController | null): boolean {
  return !!c?.signal.aborted;
}
