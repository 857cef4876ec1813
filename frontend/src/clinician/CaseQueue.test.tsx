import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import { json, mockFetch, renderWith } from "../test-utils";
import { CaseQueue } from "./CaseQueue";
import { aCase } from "./testCases";

beforeEach(() => window.history.replaceState(null, "", "/clinician"));

describe("CaseQueue", () => {
  it("shows urgent cases with their category and the SLA clock, time left or overdue", async () => {
    const calls = mockFetch({
      "GET /api/cases": () =>
        json({
          data: [
            aCase({ id: "c9", reason: "emergency", category: "suicide", urgent: true, overdue: true }),
            aCase({ id: "c2", state: "claimed", claimed_by: { name: "王医生", title: null }, model_paused: true }),
          ],
          has_more: false,
        }),
    });
    renderWith(<CaseQueue />);
    const urgent = await screen.findByRole("link", { name: "急症规则 · 自伤/自杀" });
    const row = urgent.closest("li")!;
    expect(within(row).getByText("紧急")).toBeInTheDocument();
    expect(within(row).getByText(/已超时/)).toHaveClass("overdue");
    const other = screen.getByRole("link", { name: "患者要求人工" }).closest("li")!;
    expect(other).toHaveTextContent("已接手");
    expect(other).toHaveTextContent("王医生");
    expect(other).toHaveTextContent("AI 已暂停");
    expect(other).toHaveTextContent("剩余 1 小时 30 分钟");
    expect(calls[0].query.get("state")).toBe("active");
    expect(screen.getByRole("link", { name: "患者要求人工" })).toHaveAttribute("href", "/clinician/cases/c2");
  });

  it("filters my cases, and asks the gateway for the closed ones", async () => {
    const calls = mockFetch({
      "GET /api/cases": (req) =>
        new URL(req.url).searchParams.get("state") === "closed"
          ? json({ data: [], has_more: false })
          : json({
              data: [
                aCase({ id: "a" }),
                aCase({ id: "b", reason: "unhelpful", state: "claimed", claimed_by_me: true }),
              ],
              has_more: false,
            }),
    });
    renderWith(<CaseQueue />, { lang: "en" });
    await screen.findByRole("link", { name: "Patient asked for a person" });
    await userEvent.click(screen.getByRole("tab", { name: "My cases" }));
    expect(screen.queryByRole("link", { name: "Patient asked for a person" })).not.toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Answer rated unhelpful" })).toBeInTheDocument();
    await userEvent.click(screen.getByRole("tab", { name: "Closed" }));
    expect(await screen.findByText("No cases.")).toBeInTheDocument();
    expect(calls.map((c) => c.query.get("state"))).toContain("closed");
  });
});
