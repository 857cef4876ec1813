import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import { json, message, mockFetch, renderWith, session, SID, sse } from "../test-utils";
import { ChatPage } from "./ChatPage";

const guest = { id: "u1", email: null, phone: null, role: "patient", is_guest: true };
const done = (content: string, extras: Record<string, unknown> = {}) => ({
  message: message(2, "assistant", content),
  user_message_id: 1,
  turns_used: 1,
  usage: { prompt_tokens: 5, completion_tokens: 2 },
  disclaimer: "回答由模型生成，不构成诊断。",
  emergency: null,
  ...extras,
});

beforeEach(() => {
  window.history.replaceState(null, "", "/chat");
  document.cookie = "medchat_csrf=csrf-123; path=/";
});

describe("ChatPage", () => {
  it("streams an answer as markdown, with the disclaimer, sending the CSRF token", async () => {
    const calls = mockFetch({
      "GET /api/auth/me": () => json(guest),
      "GET /api/sessions": () => json({ data: [], has_more: false }),
      "POST /api/sessions": () => json(session(), 201),
      [`POST /api/sessions/${SID}/messages`]: () =>
        sse([
          ["meta", { session_id: SID, emergency: null }],
          ["delta", { text: "**多" }],
          ["delta", { text: "休息**" }],
          ["done", done("**多休息**")],
        ]),
    });
    renderWith(<ChatPage sessionId={null} />, { auth: true });
    await userEvent.type(screen.getByLabelText("您的问题"), "我头痛三天了{Enter}");
    expect(await screen.findByText("多休息", { selector: "strong" })).toBeInTheDocument();
    expect(screen.getByText("回答由模型生成，不构成诊断。")).toBeInTheDocument();
    const post = calls.find((c) => c.path.endsWith("/messages"))!;
    expect(JSON.parse(post.body)).toMatchObject({ content: "我头痛三天了", stream: true, lang: "zh" });
    expect(post.headers.get("X-CSRF-Token")).toBe("csrf-123");
    expect(window.location.pathname).toBe(`/chat/${SID}`);
    expect(screen.getByRole("button", { name: "复制" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "重新生成" })).toBeEnabled();
  });

  it("shows the emergency notice prominently, as an alert", async () => {
    mockFetch({
      "GET /api/auth/me": () => json(guest),
      "GET /api/sessions": () => json({ data: [], has_more: false }),
      "POST /api/sessions": () => json(session(), 201),
      [`POST /api/sessions/${SID}/messages`]: () => {
        const notice = {
          categories: ["cardiac"],
          severity: "critical",
          message_zh: "请立即拨打120",
          message_en: "Call 120 now",
          matched: [],
        };
        return sse([
          ["meta", { emergency: notice }],
          ["delta", { text: "..." }],
          ["done", done("...", { emergency: notice })],
        ]);
      },
    });
    renderWith(<ChatPage sessionId={null} />, { auth: true });
    await userEvent.type(screen.getByLabelText("您的问题"), "胸口剧痛{Enter}");
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("请立即拨打120");
    expect(alert).toHaveTextContent("紧急提示");
  });

  it("retries an engine failure by regenerating the stored question, never posting it twice", async () => {
    const calls = mockFetch({
      "GET /api/auth/me": () => json(guest),
      "GET /api/sessions": () => json({ data: [session("头痛")], has_more: false }),
      [`GET /api/sessions/${SID}`]: [
        () => json({ ...session("头痛"), messages: [] }),
        // After the failure the gateway holds the question (and the failed answer).
        () =>
          json({ ...session("头痛"), messages: [message(1, "user", "头痛"), message(2, "assistant", "", "failed")] }),
      ],
      [`POST /api/sessions/${SID}/messages`]: () =>
        json({ error: { code: "engine_unavailable", message: "engine down" } }, 503, { "Retry-After": "5" }),
      [`POST /api/sessions/${SID}/regenerate`]: () =>
        sse([
          ["delta", { text: "好的" }],
          ["done", done("好的")],
        ]),
    });
    renderWith(<ChatPage sessionId={SID} />, { auth: true });
    await waitFor(() => expect(screen.getByLabelText("您的问题")).toBeEnabled());
    await userEvent.type(screen.getByLabelText("您的问题"), "头痛{Enter}");
    expect(await screen.findByText("模型暂时不可用，请稍后重试。")).toBeInTheDocument();
    const retry = screen.getByRole("button", { name: "重试" });
    await userEvent.click(retry);
    expect(await screen.findByText("好的")).toBeInTheDocument();
    expect(calls.filter((c) => c.path.endsWith("/messages"))).toHaveLength(1);
    expect(calls.filter((c) => c.path.endsWith("/regenerate"))).toHaveLength(1);
    expect(screen.queryByText("模型暂时不可用，请稍后重试。")).toBeNull();
  });

  it("resends a question the gateway refused before storing it (rate limited)", async () => {
    const calls = mockFetch({
      "GET /api/auth/me": () => json(guest),
      "GET /api/sessions": () => json({ data: [session("头痛")], has_more: false }),
      [`GET /api/sessions/${SID}`]: () => json({ ...session("头痛"), messages: [] }),
      [`POST /api/sessions/${SID}/messages`]: [
        () => json({ error: { code: "rate_limited", message: "slow down" } }, 429, { "Retry-After": "1" }),
        () =>
          sse([
            ["delta", { text: "答" }],
            ["done", done("答")],
          ]),
      ],
    });
    renderWith(<ChatPage sessionId={SID} />, { auth: true });
    await waitFor(() => expect(screen.getByLabelText("您的问题")).toBeEnabled());
    await userEvent.type(screen.getByLabelText("您的问题"), "头痛{Enter}");
    expect(await screen.findByText("发送太频繁了，请 1 秒后重试。")).toBeInTheDocument();
    const retry = screen.getByRole("button", { name: "重试" });
    expect(retry).toBeDisabled(); // until Retry-After has passed
    await waitFor(() => expect(retry).toBeEnabled(), { timeout: 3000 });
    await userEvent.click(retry);
    expect(await screen.findByText("答")).toBeInTheDocument();
    expect(calls.filter((c) => c.path.endsWith("/messages"))).toHaveLength(2);
    expect(calls.filter((c) => c.path.endsWith("/regenerate"))).toHaveLength(0);
  });

  it("says so when the session is gone", async () => {
    mockFetch({
      "GET /api/auth/me": () => json(guest),
      "GET /api/sessions": () => json({ data: [], has_more: false }),
      [`GET /api/sessions/${SID}`]: () => json({ error: { code: "not_found", message: "session not found" } }, 404),
    });
    renderWith(<ChatPage sessionId={SID} />, { auth: true });
    expect(await screen.findByText("这条咨询记录已不存在（可能已被删除）。")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "开始新的咨询" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "重试" })).toBeNull();
  });

  it("lists sessions with labelled rename and delete controls", async () => {
    const calls = mockFetch({
      "GET /api/auth/me": () => json(guest),
      "GET /api/sessions": () => json({ data: [session("头痛三天")], has_more: false }),
      [`GET /api/sessions/${SID}`]: () =>
        json({ ...session("头痛三天"), messages: [message(1, "user", "头痛三天"), message(2, "assistant", "多喝水")] }),
      [`PATCH /api/sessions/${SID}`]: () => json(session("偏头痛")),
    });
    renderWith(<ChatPage sessionId={SID} />, { auth: true });
    await userEvent.click(await screen.findByRole("button", { name: "重命名: 头痛三天" }));
    const input = screen.getByLabelText("新标题");
    await userEvent.clear(input);
    await userEvent.type(input, "偏头痛{Enter}");
    await waitFor(() => expect(calls.some((c) => c.method === "PATCH")).toBe(true));
    expect(JSON.parse(calls.find((c) => c.method === "PATCH")!.body)).toEqual({ title: "偏头痛" });
    expect(screen.getByRole("button", { name: "删除: 头痛三天" })).toBeInTheDocument();
    expect(await screen.findByText("多喝水")).toBeInTheDocument();
  });

  it("shows a clinician's reply as theirs, AI answers labelled, and the hand-off with its end button", async () => {
    window.history.replaceState(null, "", `/chat/${SID}`);
    const handoff = {
      case_id: "c1",
      state: "answered",
      urgent: false,
      clinician: { name: "王医生", title: "主治医师" },
      model_paused: true,
      message_zh: "医生已回复。",
      message_en: "A clinician has replied.",
    };
    const calls = mockFetch({
      "GET /api/auth/me": () => json(guest),
      "GET /api/sessions": () => json({ data: [session("转人工")], has_more: false }),
      [`GET /api/sessions/${SID}`]: () =>
        json({
          ...session("转人工"),
          messages: [
            message(1, "user", "转人工"),
            { ...message(2, "assistant", "好的"), ai_generated: true },
            { ...message(3, "clinician", "建议做胃镜。"), author: { name: "王医生", title: "主治医师" } },
          ],
        }),
      [`GET /api/sessions/${SID}/handoff`]: () => json(handoff),
      [`DELETE /api/sessions/${SID}/handoff`]: () => json({ ...handoff, state: "closed", model_paused: false }),
    });
    renderWith(<ChatPage sessionId={SID} />, { auth: true });
    expect(await screen.findByText("医生已回复。")).toBeInTheDocument();
    expect(screen.getByText("AI 已暂停：您的消息会直接交给医生。")).toBeInTheDocument();
    const reply = screen.getByRole("article", { name: "医生回复" });
    expect(reply).toHaveTextContent("王医生 · 主治医师");
    expect(reply).not.toHaveTextContent("AI 生成");
    expect(screen.getByRole("article", { name: "DISC-MedLLM" })).toHaveTextContent("AI 生成");
    await userEvent.click(screen.getByRole("button", { name: "结束人工对话" }));
    await waitFor(() => expect(screen.queryByText("医生已回复。")).not.toBeInTheDocument());
    expect(calls.some((c) => c.method === "DELETE" && c.path.endsWith("/handoff"))).toBe(true);
    expect(screen.getByRole("button", { name: "转人工" })).toBeInTheDocument();
  });
});
