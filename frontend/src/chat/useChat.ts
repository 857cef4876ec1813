// One consultation: the calls to the gateway (read the session, ask, answer again, stop) and
// the stream read into typed events. What the screen shows follows from `chatReducer`; this
// hook only does the I/O and dispatches what happened.
import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import { api, ApiError, errorFrom, unwrap, type Handoff, type Message } from "../api/client";
import { readSse } from "../api/sse";
import type { Lang } from "../i18n";
import { chatReducer, initialChat, planRetry } from "./chatReducer";
import { classify } from "./errors";
import { chatEvent } from "./events";

export type { Phase } from "./chatReducer";

interface Options {
  sessionId: string | null;
  lang: Lang;
  /** A session was created for the first question (the page moves to its address). */
  onCreated: (id: string) => void;
  /** Something the session list shows changed (a title, the order). */
  onChanged: () => void;
}

async function readSession(id: string): Promise<Message[]> {
  const detail = await unwrap(api.GET("/api/sessions/{session_id}", { params: { path: { session_id: id } } }));
  return detail.messages;
}

async function readHandoff(id: string): Promise<Handoff | null> {
  return (
    (await unwrap(api.GET("/api/sessions/{session_id}/handoff", { params: { path: { session_id: id } } }))) ?? null
  );
}

export function useChat({ sessionId, lang, onCreated, onChanged }: Options) {
  const [state, dispatch] = useReducer(chatReducer, sessionId, initialChat);
  const busy = useRef(false); // synchronous guard: a double click sends once
  const current = useRef<string | null>(sessionId);
  const created = useRef<string | null>(null);
  const abort = useRef<AbortController | null>(null);

  useEffect(() => {
    current.current = sessionId;
    if (sessionId === null) {
      dispatch({ type: "reset" });
      return;
    }
    if (created.current === sessionId) return; // we made it a moment ago: the turn is on screen
    abort.current?.abort();
    busy.current = false;
    dispatch({ type: "loading" });
    let live = true;
    // The hand-off is secondary: a failure to read it leaves the conversation readable.
    Promise.all([readSession(sessionId), readHandoff(sessionId).catch(() => null)]).then(
      ([messages, handoff]) => live && dispatch({ type: "loaded", messages, handoff }),
      (e) => live && dispatch({ type: "loadFailed", error: classify(e) }),
    );
    return () => {
      live = false;
    };
  }, [sessionId]);

  // While a session is open, a clinician's replies and the hand-off's changes arrive live.
  // The browser's EventSource reconnects by itself; after a reconnect the session and its
  // hand-off are read again for what was said meanwhile (replies are keyed by their stored
  // id, so nothing shows twice).
  useEffect(() => {
    if (sessionId === null || typeof EventSource === "undefined") return;
    const source = new EventSource(`/api/sessions/${encodeURIComponent(sessionId)}/events`, { withCredentials: true });
    let opened = false;
    source.addEventListener("open", () => {
      if (opened) {
        readSession(sessionId)
          .then((messages) =>
            messages
              .filter((m) => m.role === "clinician")
              .forEach((message) => dispatch({ type: "clinicianMessage", message })),
          )
          .catch(() => undefined);
        readHandoff(sessionId)
          .then((handoff) => dispatch({ type: "handoff", handoff }))
          .catch(() => undefined);
      }
      opened = true;
    });
    source.addEventListener("handoff", (e) =>
      dispatch({ type: "handoff", handoff: JSON.parse((e as MessageEvent<string>).data) as Handoff }),
    );
    source.addEventListener("message", (e) =>
      dispatch({ type: "clinicianMessage", message: JSON.parse((e as MessageEvent<string>).data) as Message }),
    );
    return () => source.close();
  }, [sessionId]);

  /** Stream one answer: to a new question (`content`), or again to the last one (null). */
  const answer = useCallback(
    async (id: string, content: string | null, signal: AbortSignal) => {
      const path = { session_id: id };
      const call =
        content === null
          ? api.POST("/api/sessions/{session_id}/regenerate", {
              params: { path },
              body: { stream: true, lang },
              parseAs: "stream",
              signal,
            })
          : api.POST("/api/sessions/{session_id}/messages", {
              params: { path },
              body: { content, stream: true, lang },
              parseAs: "stream",
              signal,
            });
      const { data, error, response } = await call;
      if (!response.ok || !data) throw await errorFrom(response, error ?? null);
      dispatch({ type: "opened", key: `a-${Date.now()}` });
      for await (const ev of readSse(data as ReadableStream<Uint8Array>, signal)) {
        const event = chatEvent(ev);
        if (!event) continue;
        dispatch({ type: "event", event });
        if (event.event === "error") throw new ApiError(502, event.data.error.code, event.data.error.message);
      }
    },
    [lang],
  );

  const run = useCallback(
    async (id: string, content: string | null) => {
      const controller = new AbortController();
      abort.current = controller;
      try {
        await answer(id, content, controller.signal);
        if (current.current === id) dispatch({ type: "answered" });
      } catch (e) {
        // Hung up here (a stop that did not end the stream, another session opened): not a failure.
        if (current.current !== id) return;
        dispatch(controller.signal.aborted ? { type: "answered" } : { type: "failed", error: classify(e) });
      } finally {
        if (abort.current === controller) abort.current = null;
        busy.current = false;
        onChanged();
      }
    },
    [answer, onChanged],
  );

  const send = useCallback(
    async (content: string) => {
      const text = content.trim();
      if (!text || busy.current || state.gone) return false;
      busy.current = true;
      dispatch({ type: "sending" });
      let id = current.current;
      if (id === null) {
        try {
          id = (await unwrap(api.POST("/api/sessions", { body: {} }))).id;
        } catch (e) {
          dispatch({ type: "failed", error: classify(e) });
          busy.current = false;
          return false;
        }
        created.current = id;
        current.current = id;
        onCreated(id);
      }
      dispatch({ type: "asked", content: text, key: `u-${Date.now()}` });
      void run(id, text);
      return true;
    },
    [state.gone, onCreated, run],
  );

  const regenerate = useCallback(async () => {
    const id = current.current;
    if (!id || busy.current) return;
    busy.current = true;
    dispatch({ type: "regenerating" });
    await run(id, null);
  }, [run]);

  /** Retry the failed turn: ask the gateway what it stored first, so a question it already
   * has is answered again (regenerate) instead of being sent a second time. */
  const pending = state.pending;
  const retry = useCallback(async () => {
    const id = current.current;
    if (!id || !pending || busy.current) return;
    busy.current = true;
    dispatch({ type: "sending" });
    let stored: Message[];
    try {
      stored = await readSession(id);
    } catch (e) {
      dispatch({ type: "failed", error: classify(e) });
      busy.current = false;
      return;
    }
    const next = planRetry(pending, stored);
    dispatch({ type: "retrying", stored, key: `u-${Date.now()}` });
    await run(id, next.kind === "send" ? next.content : null);
  }, [pending, run]);

  const stop = useCallback(async () => {
    const id = current.current;
    const controller = abort.current;
    if (!id || !controller) return;
    dispatch({ type: "stopping" });
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

  /** The patient asks for a person (a new consultation gets its session first). */
  const [asking, setAsking] = useState(false);
  const askClinician = useCallback(async () => {
    let id = current.current;
    setAsking(true);
    try {
      if (id === null) {
        id = (await unwrap(api.POST("/api/sessions", { body: {} }))).id;
        created.current = id;
        current.current = id;
        onCreated(id);
      }
      const handoff = await unwrap(
        api.POST("/api/sessions/{session_id}/handoff", { params: { path: { session_id: id } } }),
      );
      dispatch({ type: "handoff", handoff });
    } catch (e) {
      dispatch({ type: "failed", error: classify(e) });
    } finally {
      setAsking(false);
    }
  }, [onCreated]);

  /** The patient ends the hand-off: the model answers again. */
  const endHandoff = useCallback(async () => {
    const id = current.current;
    if (!id) return;
    try {
      await unwrap(api.DELETE("/api/sessions/{session_id}/handoff", { params: { path: { session_id: id } } }));
      dispatch({ type: "handoff", handoff: null });
    } catch (e) {
      dispatch({ type: "failed", error: classify(e) });
    }
  }, []);

  const { items, phase, error, gone, handoff } = state;
  return { items, phase, error, gone, handoff, asking, send, regenerate, retry, stop, askClinician, endHandoff };
}
