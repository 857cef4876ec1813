// The patient's side of a hand-off in the chat: asking for a person, the banner, the model
// paused (a question held, not answered), and the clinician's replies arriving live.
import { act, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Handoff } from "../api/client";
import { json, message, mockFetch, renderWith, session, SID, sse } from "../test-utils";
import { ChatPage } from "./ChatPage";

const guest = { id: "u1", email: null, phone: null, role: "patient", is_guest: true };
const handoff = (over: Partial<Handoff> = {}): Handoff => ({
  case_id: "c1",
  state: "open",
  urgent: false,
  clinician: null,
  model_paused: false,
  message_zh: "已为您转接人工，医生会尽快回复。",
  message_en: "A clinician will reply soon.",
  ...over,
});

/** The browser's EventSource, played by the test: `emit` sends a named event. */
class FakeEventSource {
  static last: FakeEventSource | null = null;
  readonly listeners = new Map<string, ((e: MessageEvent) => void)[]>();
  closed = false;
  constructor(
    readonly url: string,
    readonly init?: EventSourceInit,
  ) {
    FakeEventSource.last = this;
  }
  addEventListener(name: string, fn: (e: MessageEvent) => void) {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), fn]);
  }
  close() {
    this.closed = true;
  }
  emit(name: string, data?: unknown) {
    const event = new MessageEvent(name, { data: data === undefined ? undefined : JSON.stringify(data) });
    act(() => this.listeners.get(name)?.forEach((fn) => fn(event)));
  }
}

beforeEach(() => {
  window.history.replaceState(null, "", `/chat/${SID}`);
  document.cookie = "medchat_csrf=tok; path=/";
  (globalThis as { EventSource?: unknown }).EventSource = FakeEventSource;
});
afterEach(() => {
  delete (globalThis as { EventSource?: unknown }).EventSource;
  FakeEventSource.last = null;
});

const stored = [message(1, "user", "我胃疼"), { ...message(2, "assistant", "可能是胃炎。"), ai_generated: true }];

describe("hand-off in the chat", () => {
  it("asks for a clinician with the button and shows the banner; ending it brings the button back", async () => {
    const calls = mockFetch({
      "GET /api/auth/me": () => json(guest),
      "GET /api/sessions": () => json({ data: [session("胃疼")], has_more: false }),
      [`GET /api/sessions/${SID}`]: () => json({ ...session("胃疼"), messages: stored }),
      [`GET /api/sessions/${SID}/handoff`]: () => json(null),
      [`POST /api/sessions/${SID}/handoff`]: () => json(handoff(), 201),
      [`DELETE /api/sessions/${SID}/handoff`]: () => json(handoff({ state: "closed" })),
    });
    renderWith(<ChatPage sessionId={SID} />, { auth: true });
    await userEvent.click(await screen.findByRole("button", { name: "转人工" }));
    const banner = await screen.findByRole("status", { name: "人工接诊" });
    expect(banner).toHaveTextContent("已为您转接人工，医生会尽快回复。");
    expect(screen.queryByRole("button", { name: "转人工" })).not.toBeInTheDocument();
    const post = calls.find((c) => c.method === "POST" && c.path.endsWith("/handoff"))!;
    expect(post.headers.get("X-CSRF-Token")).toBe("tok");
    await userEvent.click(screen.getByRole("button", { name: "结束人工对话" }));
    await waitFor(() => expect(screen.queryByRole("status", { name: "人工接诊" })).not.toBeInTheDocument());
    expect(screen.getByRole("button", { name: "转人工" })).toBeInTheDocument();
  });

  it("follows the session live: the claim, the paused model and the clinician's reply", async () => {
    mockFetch({
      "GET /api/auth/me": () => json(guest),
      "GET /api/sessions": () => json({ data: [session("胃疼")], has_more: false }),
      [`GET /api/sessions/${SID}`]: () => json({ ...session("胃疼"), messages: stored }),
      [`GET /api/sessions/${SID}/handoff`]: () => json(handoff()),
    });
    renderWith(<ChatPage sessionId={SID} />, { auth: true });
    await screen.findByRole("status", { name: "人工接诊" });
    const source = FakeEventSource.last!;
    expect(source.url).toBe(`/api/sessions/${SID}/events`);
    expect(source.init).toEqual({ withCredentials: true });
    source.emit("open");
    const dr = { name: "王医生", title: "主治医师" };
    source.emit("handoff", handoff({ state: "claimed", clinician: dr, model_paused: true }));
    expect(screen.getByText("接诊医生：王医生 · 主治医师")).toBeInTheDocument();
    expect(screen.getByText("AI 已暂停：您的消息会直接交给医生。")).toBeInTheDocument();
    const reply = { ...message(3, "clinician", "建议做胃镜。"), author: dr, ai_generated: false };
    source.emit("message", reply);
    source.emit("message", reply); // delivered twice (a reconnect): shown once
    expect(screen.getAllByRole("article", { name: "医生回复" })).toHaveLength(1);
    expect(screen.getByRole("article", { name: "医生回复" })).toHaveTextContent("建议做胃镜。");
  });

  it("shows an urgent hand-off prominently, as an alert", async () => {
    mockFetch({
      "GET /api/auth/me": () => json(guest),
      "GET /api/sessions": () => json({ data: [session("胃疼")], has_more: false }),
      [`GET /api/sessions/${SID}`]: () => json({ ...session("胃疼"), messages: stored }),
      [`GET /api/sessions/${SID}/handoff`]: () =>
        json(handoff({ urgent: true, message_zh: "正在为您联系医生，如有危险请立即拨打 120。" })),
    });
    renderWith(<ChatPage sessionId={SID} />, { auth: true });
    const banner = await screen.findByRole("alert", { name: "人工接诊" });
    expect(banner).toHaveClass("handoff-urgent");
    expect(banner).toHaveTextContent("请立即拨打 120");
  });

  it("reads what it missed after a reconnect", async () => {
    const reply = { ...message(3, "clinician", "请来门诊。"), author: { name: "王医生", title: null } };
    mockFetch({
      "GET /api/auth/me": () => json(guest),
      "GET /api/sessions": () => json({ data: [session("胃疼")], has_more: false }),
      [`GET /api/sessions/${SID}`]: [
        () => json({ ...session("胃疼"), messages: stored }),
        () => json({ ...session("胃疼"), messages: [...stored, reply] }),
      ],
      [`GET /api/sessions/${SID}/handoff`]: [() => json(handoff()), () => json(handoff({ state: "answered" }))],
    });
    renderWith(<ChatPage sessionId={SID} />, { auth: true });
    await screen.findByRole("status", { name: "人工接诊" });
    const source = FakeEventSource.last!;
    source.emit("open");
    source.emit("open"); // the connection dropped and came back
    expect(await screen.findByText("请来门诊。")).toBeInTheDocument();
    await waitFor(() =>
      expect(screen.getByRole("status", { name: "人工接诊" })).toHaveAttribute("data-state", "answered"),
    );
  });

  it("holds a question for the clinician who paused the model: no answer bubble", async () => {
    const paused = handoff({ state: "claimed", clinician: { name: "王医生", title: null }, model_paused: true });
    mockFetch({
      "GET /api/auth/me": () => json(guest),
      "GET /api/sessions": () => json({ data: [session("胃疼")], has_more: false }),
      [`GET /api/sessions/${SID}`]: () => json({ ...session("胃疼"), messages: stored }),
      [`GET /api/sessions/${SID}/handoff`]: () => json(paused),
      [`POST /api/sessions/${SID}/messages`]: () =>
        sse([
          [
            "meta",
            { session_id: SID, user_message_id: 3, turns_used: 0, prompt_tokens: 0, emergency: null, handoff: paused },
          ],
          ["held", paused],
        ]),
    });
    renderWith(<ChatPage sessionId={SID} />, { auth: true });
    await screen.findByText("AI 已暂停：您的消息会直接交给医生。");
    await userEvent.type(screen.getByLabelText("您的问题"), "还要做什么检查？{Enter}");
    expect(await screen.findByText("还要做什么检查？")).toBeInTheDocument();
    await waitFor(() => expect(screen.getByRole("button", { name: "发送" })).toBeInTheDocument());
    expect(screen.getAllByRole("article", { name: "DISC-MedLLM" })).toHaveLength(1);
    expect(screen.getByText("还要做什么检查？").closest("article")).toHaveAttribute("data-status", "complete");
  });
});
