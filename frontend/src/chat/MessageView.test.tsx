// How each kind of message reads to the patient: the model's answers labelled AI-generated
// (or reviewed by a named clinician instead), a clinician's replies signed as theirs.
import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { renderWith } from "../test-utils";
import { MessageView } from "./MessageView";
import type { ChatItem } from "./types";

const dr = { name: "王医生", title: "主治医师" };
const answer = (over: Partial<ChatItem> = {}): ChatItem => ({
  key: "m2",
  role: "assistant",
  content: "可能是胃炎。",
  status: "complete",
  ...over,
});
const show = (item: ChatItem, lang: "zh" | "en" = "zh") =>
  renderWith(<MessageView item={item} last={false} busy={false} onRegenerate={() => undefined} />, { lang });

describe("MessageView", () => {
  it("labels every model answer AI-generated", () => {
    show(answer());
    const article = screen.getByRole("article", { name: "DISC-MedLLM" });
    expect(article).toHaveTextContent("AI 生成");
    expect(article).toHaveAttribute("data-ai-generated", "true");
  });

  it("says a clinician reviewed it instead, by name", () => {
    show(answer({ review: { verdict: "correct", reviewer: dr, corrected: null } }), "en");
    const article = screen.getByRole("article", { name: "DISC-MedLLM" });
    expect(article).toHaveTextContent("Reviewed by 王医生");
    expect(article).not.toHaveTextContent("AI-generated");
    expect(article).not.toHaveAttribute("data-ai-generated");
  });

  it("shows a corrected answer as corrected, the model's original one click away", async () => {
    show(answer({ review: { verdict: "corrected", reviewer: dr, corrected: "请尽快就医。" } }));
    expect(screen.getByText("已由王医生审核并修正")).toBeInTheDocument();
    expect(screen.getByText("请尽快就医。").closest(".bubble")).toHaveClass("bubble-correction");
    await userEvent.click(screen.getByText("AI 的原回答"));
    expect(screen.getByText("可能是胃炎。")).toBeVisible();
    expect(screen.getByText("AI 生成")).toBeInTheDocument(); // the original keeps its label
  });

  it("signs a clinician's message with name and title, never as the model", () => {
    show({ key: "m3", role: "clinician", content: "请做胃镜。", status: "complete", author: dr });
    const article = screen.getByRole("article", { name: "医生回复" });
    expect(article).toHaveTextContent("王医生 · 主治医师");
    expect(article).not.toHaveTextContent("AI 生成");
    expect(screen.queryByRole("article", { name: "DISC-MedLLM" })).not.toBeInTheDocument();
  });

  it("shows the prescription notice in the page's language", () => {
    const prescription = {
      classes: ["antibiotic"],
      message_zh: "处方药须由医生决定。",
      message_en: "Prescribing is a doctor's decision.",
      matched: ["antibiotic.dose"],
    };
    show(answer({ prescription }), "en");
    expect(screen.getByRole("note")).toHaveTextContent("Prescribing is a doctor's decision.");
  });
});
