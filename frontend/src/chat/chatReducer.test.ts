// The chat's state machine on its own: no React, no fetch; events typed as the gateway
// documents them.
import { describe, expect, it } from "vitest";
import type { ChatAnswer, ChatStreamEvent, Emergency, Handoff, Message } from "../api/client";
import { chatReducer, initialChat, planRetry, type ChatAction, type ChatState } from "./chatReducer";
import type { ChatError } from "./types";

const msg = (id: number, role: string, content: string, status = "complete"): Message => ({
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
  ai_generated: role === "assistant",
});

const emergency: Emergency = {
  categories: ["cardiac"],
  severity: "critical",
  message_zh: "请立即拨打120",
  message_en: "Call an ambulance now",
  matched: ["cardiac.chest_pain"],
};

const answer = (content: string, status = "complete", extra: Partial<ChatAnswer> = {}): ChatAnswer => ({
  message: msg(2, "assistant", content, status),
  user_message_id: 1,
  turns_used: 1,
  usage: { prompt_tokens: 5, completion_tokens: 3 },
  disclaimer: "not a diagnosis",
  emergency: null,
  ai_generated: true,
  ...extra,
});

const ev = (event: ChatStreamEvent): ChatAction => ({ type: "event", event });
const meta = (e: Emergency | null = null) =>
  ev({
    event: "meta",
    data: { session_id: "s", user_message_id: 1, turns_used: 1, prompt_tokens: 5, emergency: e },
  });
const delta = (text: string) => ev({ event: "delta", data: { text } });

const engineDown: ChatError = { kind: "engine_unavailable", message: "down", retryAfter: null, retryable: true };

function play(actions: ChatAction[], from: ChatState = initialChat(null)): ChatState {
  return actions.reduce(chatReducer, from);
}

const ask = (content = "头痛"): ChatAction[] => [
  { type: "sending" },
  { type: "asked", content, key: "u1" },
  { type: "opened", key: "a1" },
];

describe("chatReducer", () => {
  it("send, streamed deltas, done: the stored answer with its disclaimer", () => {
    let s = play(ask());
    expect(s.phase).toBe("streaming");
    expect(s.items.map((x) => [x.role, x.status])).toEqual([
      ["user", "complete"],
      ["assistant", "streaming"],
    ]);
    s = play([meta(), delta("多"), delta("休息")], s);
    expect(s.items[1].content).toBe("多休息");
    s = play([ev({ event: "done", data: answer("多休息。") }), { type: "answered" }], s);
    expect(s.items[1]).toMatchObject({
      key: "m2",
      content: "多休息。",
      status: "complete",
      disclaimer: "not a diagnosis",
      emergency: null,
    });
    expect(s.phase).toBe("idle");
    expect(s.error).toBeNull();
    expect(s.pending).toBeNull();
  });

  it("shows the emergency notice from `meta`, before any word of the answer, and keeps it", () => {
    let s = play([...ask("胸口疼，出冷汗"), meta(emergency)]);
    expect(s.items[1]).toMatchObject({ content: "", status: "streaming", emergency });
    s = play([delta("请"), ev({ event: "done", data: answer("请就医") }), { type: "answered" }], s);
    expect(s.items[1].emergency).toEqual(emergency); // `done` without one keeps the earlier notice
  });

  it("an error mid-stream keeps the question and the partial answer, marked failed; Retry is offered", () => {
    let s = play([...ask(), meta(), delta("建议")]);
    s = play(
      [
        ev({
          event: "error",
          data: {
            error: { code: "engine_generation_failed", message: "failed" },
            message: msg(2, "assistant", "建议", "failed"),
          },
        }),
        { type: "failed", error: engineDown },
      ],
      s,
    );
    expect(s.items.map((x) => [x.role, x.content, x.status])).toEqual([
      ["user", "头痛", "complete"],
      ["assistant", "建议", "failed"],
    ]);
    expect(s.error).toEqual(engineDown);
    expect(s.phase).toBe("idle");
    expect(s.pending).toEqual({ kind: "send", content: "头痛", usersBefore: 0 });
  });

  it("a failure before any answer drops the empty bubble and marks the question unanswered", () => {
    const s = play([...ask(), { type: "failed", error: engineDown }]);
    expect(s.items.map((x) => [x.role, x.status])).toEqual([["user", "unanswered"]]);
    const refused = play([
      { type: "sending" },
      { type: "asked", content: "q", key: "u" },
      { type: "failed", error: engineDown },
    ]);
    expect(refused.items.map((x) => x.status)).toEqual(["unanswered"]);
  });

  it("stop: stopping while streaming, then the stopped answer the gateway sends", () => {
    let s = play([...ask(), delta("一"), { type: "stopping" }]);
    expect(s.phase).toBe("stopping");
    s = play([ev({ event: "done", data: answer("一", "stopped") }), { type: "answered" }], s);
    expect(s.items[1]).toMatchObject({ content: "一", status: "stopped" });
    expect(s.phase).toBe("idle");
  });

  it("a stream that ends without `done` (hung up) leaves the partial answer stopped", () => {
    const s = play([...ask(), delta("一"), { type: "answered" }]);
    expect(s.items[1]).toMatchObject({ content: "一", status: "stopped" });
  });

  it("a stop pressed before the gateway answered stays a stop", () => {
    const s = play([
      { type: "sending" },
      { type: "asked", content: "q", key: "u" },
      { type: "stopping" },
      { type: "opened", key: "a" },
    ]);
    expect(s.phase).toBe("stopping");
  });

  it("retry answers again a question the gateway stored, and resends one it never got", () => {
    const failed = play([
      { type: "loaded", messages: [msg(1, "user", "旧"), msg(2, "assistant", "答")] },
      ...ask("新"),
      { type: "failed", error: engineDown },
    ]);
    expect(failed.pending).toEqual({ kind: "send", content: "新", usersBefore: 1 });

    // The gateway stored the question (and a failed answer): regenerate, no second copy.
    const stored = [
      msg(1, "user", "旧"),
      msg(2, "assistant", "答"),
      msg(3, "user", "新"),
      msg(4, "assistant", "", "failed"),
    ];
    expect(planRetry(failed.pending!, stored)).toEqual({ kind: "regenerate" });
    let s = play([{ type: "sending" }, { type: "retrying", stored, key: "u2" }], failed);
    expect(s.items.map((x) => x.content)).toEqual(["旧", "答", "新"]);
    expect(s.pending).toEqual({ kind: "regenerate" });
    expect(s.error).toBeNull();
    s = play(
      [{ type: "opened", key: "a2" }, delta("好"), ev({ event: "done", data: answer("好") }), { type: "answered" }],
      s,
    );
    expect(s.items.map((x) => [x.content, x.status])).toEqual([
      ["旧", "complete"],
      ["答", "complete"],
      ["新", "complete"],
      ["好", "complete"],
    ]);

    // It never got there (refused before storing): the question is sent again.
    const before = stored.slice(0, 2);
    expect(planRetry(failed.pending!, before)).toEqual(failed.pending);
    s = play([{ type: "sending" }, { type: "retrying", stored: before, key: "u3" }], failed);
    expect(s.items.map((x) => [x.content, x.status])).toEqual([
      ["旧", "complete"],
      ["答", "complete"],
      ["新", "complete"],
    ]);
    expect(s.phase).toBe("sending");
  });

  it("regenerate drops the last answer; a gone session cannot be used", () => {
    let s = play([{ type: "loaded", messages: [msg(1, "user", "q"), msg(2, "assistant", "a")] }], initialChat("s"));
    s = chatReducer(s, { type: "regenerating" });
    expect(s.items.map((x) => x.role)).toEqual(["user"]);
    expect(s.pending).toEqual({ kind: "regenerate" });
    const gone: ChatError = { kind: "session_gone", message: "gone", retryAfter: null, retryable: false };
    s = chatReducer(s, { type: "failed", error: gone });
    expect(s.gone).toBe(true);
  });

  it("loading a session shows its messages; a question left without an answer is marked", () => {
    const s = play([{ type: "loading" }, { type: "loaded", messages: [msg(1, "user", "q")] }], initialChat("s"));
    expect(s.items).toEqual([{ key: "m1", role: "user", content: "q", status: "unanswered" }]);
    expect(play([{ type: "reset" }], s)).toEqual(initialChat(null));
  });
});

describe("clinicians in the loop", () => {
  const handoff = (state: Handoff["state"], paused = false): Handoff => ({
    case_id: "c1",
    state,
    urgent: false,
    clinician: state === "open" ? null : { name: "王医生", title: "主治医师" },
    model_paused: paused,
    message_zh: "已为您转接人工",
    message_en: "A person is being brought in",
  });
  const asked = (): ChatState =>
    [{ type: "sending" }, { type: "asked", content: "转人工", key: "u1" }, { type: "opened", key: "a1" }].reduce(
      (s, a) => chatReducer(s, a as ChatAction),
      initialChat(null),
    );

  it("takes the hand-off from meta and keeps the answer", () => {
    const meta: ChatStreamEvent = {
      event: "meta",
      data: {
        session_id: "s",
        user_message_id: 1,
        turns_used: 1,
        prompt_tokens: 3,
        emergency: null,
        handoff: handoff("open"),
      },
    };
    const s = chatReducer(asked(), { type: "event", event: meta });
    expect(s.handoff?.state).toBe("open");
    expect(s.items.map((x) => x.role)).toEqual(["user", "assistant"]);
  });

  it("drops the empty answer when the question is held for the clinician", () => {
    const held: ChatStreamEvent = { event: "held", data: handoff("claimed", true) };
    let s = chatReducer(asked(), { type: "event", event: held });
    s = chatReducer(s, { type: "answered" });
    expect(s.items.map((x) => [x.role, x.status])).toEqual([["user", "complete"]]);
    expect(s.handoff?.model_paused).toBe(true);
  });

  it("takes the hand-off from done too, and keeps the prescription notice on the answer", () => {
    const prescription = {
      classes: ["antibiotic"],
      message_zh: "处方",
      message_en: "Rx",
      matched: ["antibiotic.dose"],
    };
    const done: ChatStreamEvent = {
      event: "done",
      data: { ...answer("阿莫西林 0.5g", "complete", { prescription }), handoff: handoff("open") },
    };
    const s = [
      ev({
        event: "meta",
        data: { session_id: "s", user_message_id: 1, turns_used: 1, prompt_tokens: 3, emergency: null },
      }),
      ev({ event: "delta", data: { text: "阿莫西林" } }),
      ev(done),
      { type: "answered" } as ChatAction,
    ].reduce(chatReducer, asked());
    expect(s.handoff?.case_id).toBe("c1");
    expect(s.items[1]).toMatchObject({ key: "m2", status: "complete", prescription });
  });

  it("keeps the hand-off it knows when an event says nothing about one", () => {
    const known = chatReducer(asked(), { type: "handoff", handoff: handoff("claimed") });
    const s = [
      ev({
        event: "meta",
        data: { session_id: "s", user_message_id: 1, turns_used: 1, prompt_tokens: 3, emergency: null },
      }),
      ev({ event: "done", data: answer("好") }),
    ].reduce(chatReducer, known);
    expect(s.handoff?.state).toBe("claimed");
  });

  it("does not mark a held question unanswered when the session is read again", () => {
    const s = chatReducer(initialChat("s"), {
      type: "loaded",
      messages: [msg(1, "user", "在吗")],
      handoff: handoff("claimed", true),
    });
    expect(s.items[0].status).toBe("complete");
    const t = chatReducer(initialChat("s"), { type: "loaded", messages: [msg(1, "user", "在吗")], handoff: null });
    expect(t.items[0].status).toBe("unanswered");
  });

  it("shows a clinician's live reply once, signed, and a held question as waiting", () => {
    const reply = { ...msg(3, "clinician", "建议做胃镜"), author: { name: "王医生", title: "主治医师" } };
    let s = chatReducer(initialChat("s"), {
      type: "loaded",
      messages: [msg(1, "user", "转人工"), msg(2, "assistant", "好的"), msg(4, "user", "还要做什么检查？")],
      handoff: handoff("claimed", true),
    });
    expect(s.items[2].status).toBe("complete"); // waits for the clinician: not "unanswered"
    s = chatReducer(s, { type: "clinicianMessage", message: reply });
    s = chatReducer(s, { type: "clinicianMessage", message: reply });
    expect(s.items.filter((x) => x.role === "clinician")).toHaveLength(1);
    expect(s.items[3].author?.name).toBe("王医生");
    s = chatReducer(s, { type: "handoff", handoff: null });
    expect(s.handoff).toBeNull();
  });
});
