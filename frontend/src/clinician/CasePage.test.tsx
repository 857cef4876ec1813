import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import type { CaseDetail } from "../api/client";
import { json, message, mockFetch, renderWith } from "../test-utils";
import { CasePage } from "./CasePage";
import { aCase } from "./testCases";

const doctor = { id: "d1", email: "dr@h.test", phone: null, role: "clinician", is_guest: false };
const dr = { name: "王医生", title: "主治医师" };
const detail = (over: Partial<CaseDetail> = {}): CaseDetail => ({
  ...aCase(),
  messages: [
    { ...message(1, "user", "我胃疼两周了"), ai_generated: false },
    { ...message(2, "assistant", "可能是胃炎。"), ai_generated: true },
  ],
  summary: null,
  ...over,
});

beforeEach(() => {
  window.history.replaceState(null, "", "/clinician/cases/c1");
  document.cookie = "medchat_csrf=tok; path=/";
});

describe("CasePage", () => {
  it("claims with the model paused by default, then offers pause/resume, reply and close", async () => {
    const claimed = detail({ state: "claimed", claimed_by: dr, claimed_by_me: true, model_paused: true });
    const calls = mockFetch({
      "GET /api/auth/me": () => json(doctor),
      "GET /api/cases/c1": [() => json(detail()), () => json(claimed)],
      "POST /api/cases/c1/claim": () => json(claimed),
    });
    renderWith(<CasePage caseId="c1" />, { auth: true });
    expect(await screen.findByText("我胃疼两周了")).toBeInTheDocument();
    expect(screen.getByText("患者")).toBeInTheDocument();
    expect(screen.getByText("AI 生成")).toBeInTheDocument();
    expect(screen.getByText("接手后才能回复和审核。")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "回答正确" })).not.toBeInTheDocument();
    expect(screen.getByLabelText("接手后暂停 AI")).toBeChecked();
    await userEvent.click(screen.getByRole("button", { name: "接手" }));
    expect(await screen.findByRole("button", { name: "恢复 AI" })).toBeInTheDocument();
    const claim = calls.find((c) => c.path.endsWith("/claim"))!;
    expect(JSON.parse(claim.body)).toEqual({ pause_model: true });
    expect(claim.headers.get("X-CSRF-Token")).toBe("tok");
    expect(screen.getByTestId("case-state")).toHaveTextContent("已接手");
    expect(screen.getByTestId("case-state")).toHaveTextContent("王医生 · 主治医师");
    expect(screen.getByRole("button", { name: "结束病例" })).toBeInTheDocument();
    expect(screen.getByLabelText("回复患者")).toBeInTheDocument();
  });

  it("sends a reply, and shows the clinician's messages signed, apart from the model's", async () => {
    const claimed = detail({ state: "claimed", claimed_by: dr, claimed_by_me: true });
    const reply = { ...message(3, "clinician", "请做胃镜。"), author: dr, ai_generated: false };
    const answered = { ...claimed, state: "answered" as const, messages: [...claimed.messages, reply] };
    const calls = mockFetch({
      "GET /api/auth/me": () => json(doctor),
      "GET /api/cases/c1": [() => json(claimed), () => json(answered)],
      "POST /api/cases/c1/messages": () => json(reply, 201),
    });
    renderWith(<CasePage caseId="c1" />, { auth: true });
    await userEvent.type(await screen.findByLabelText("回复患者"), "请做胃镜。");
    await userEvent.click(screen.getByRole("button", { name: "发送" }));
    const signed = await screen.findByText("王医生 · 主治医师", { selector: ".badge" });
    const bubble = signed.closest(".msg")!;
    expect(bubble).toHaveClass("msg-clinician");
    expect(bubble).toHaveTextContent("请做胃镜。");
    expect(bubble).not.toHaveTextContent("AI 生成");
    expect(JSON.parse(calls.find((c) => c.method === "POST")!.body)).toEqual({ content: "请做胃镜。" });
    await waitFor(() => expect(screen.getByLabelText("回复患者")).toHaveValue(""));
  });

  it("reviews an AI answer: correct, or a correction with its reason", async () => {
    const claimed = detail({ state: "claimed", claimed_by: dr, claimed_by_me: true });
    const reviewed = {
      ...claimed,
      messages: [
        claimed.messages[0],
        { ...claimed.messages[1], review: { verdict: "corrected" as const, reviewer: dr, corrected: "请就医。" } },
      ],
    };
    const calls = mockFetch({
      "GET /api/auth/me": () => json(doctor),
      "GET /api/cases/c1": [() => json(claimed), () => json(claimed), () => json(reviewed)],
      "POST /api/cases/c1/reviews": () => json({}, 201),
    });
    renderWith(<CasePage caseId="c1" />, { auth: true });
    await userEvent.click(await screen.findByRole("button", { name: "回答正确" }));
    await waitFor(() => expect(calls.filter((c) => c.path.endsWith("/reviews"))).toHaveLength(1));
    await userEvent.click(screen.getByRole("button", { name: "修正回答" }));
    const save = screen.getByRole("button", { name: "保存审核" });
    expect(save).toBeDisabled();
    await userEvent.type(screen.getByLabelText("修正后的回答"), "请就医。");
    await userEvent.selectOptions(screen.getByLabelText("原因"), "遗漏危险信号");
    await userEvent.click(save);
    expect(await screen.findByText("已由王医生审核并修正")).toBeInTheDocument();
    const bodies = calls.filter((c) => c.path.endsWith("/reviews")).map((c) => JSON.parse(c.body));
    expect(bodies).toEqual([
      { message_id: 2, verdict: "correct" },
      { message_id: 2, verdict: "corrected", corrected: "请就医。", reason: "missed_red_flag" },
    ]);
    expect(screen.getByText("请就医。").closest(".bubble")).toHaveClass("bubble-correction");
  });

  it("writes the summary on request, labelled as AI-written, and shows a failure", async () => {
    const withSummary = detail({ summary: { text: "胃痛两周，餐后加重。", model: "disc", ai_generated: true } });
    mockFetch({
      "GET /api/auth/me": () => json(doctor),
      "GET /api/cases/c1": [() => json(detail()), () => json(withSummary), () => json(withSummary)],
      "POST /api/cases/c1/summary": [
        () => json({ text: "胃痛两周，餐后加重。", model: "disc", ai_generated: true }),
        () => json({ error: { code: "engine_unavailable", message: "模型不可用" } }, 503),
      ],
    });
    renderWith(<CasePage caseId="c1" />, { auth: true });
    const panel = await screen.findByRole("region", { name: "AI 摘要" });
    expect(within(panel).getByText("由 AI 生成，请对照原对话核实")).toBeInTheDocument();
    await userEvent.click(within(panel).getByRole("button", { name: "生成摘要" }));
    expect(await within(panel).findByText("胃痛两周，餐后加重。")).toBeInTheDocument();
    await userEvent.click(within(panel).getByRole("button", { name: "生成摘要" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("模型不可用");
  });

  it("lets an admin close and review a case they do not hold, but not reply", async () => {
    const other = detail({ state: "claimed", claimed_by: { name: "李医生", title: null } });
    mockFetch({
      "GET /api/auth/me": () => json({ ...doctor, role: "admin" }),
      "GET /api/cases/c1": () => json(other),
    });
    renderWith(<CasePage caseId="c1" />, { auth: true, lang: "en" });
    expect(await screen.findByRole("button", { name: "Close the case" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Correct" })).toBeInTheDocument();
    expect(screen.queryByLabelText("Reply to the patient")).not.toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Pause the AI" })).not.toBeInTheDocument();
  });
});
