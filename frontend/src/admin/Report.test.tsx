import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { renderWith } from "../test-utils";
import { lossPoints } from "./JobPage";
import { Report, type ValidationReport } from "./Report";

const made: unknown[][] = [];
vi.mock("uplot", () => ({
  default: class {
    static paths = { bars: () => () => null };
    constructor(...args: unknown[]) {
      made.push(args);
    }
    setSize() {}
    destroy() {}
  },
}));

const dist = (n: number) => ({
  count: n,
  mean: 100.5,
  min: 10,
  p50: 90,
  p90: 200,
  p95: 250,
  p99: 300,
  max: 1300,
  histogram: { edges: [0, 100, 200, 300], counts: [5, 3, 2] },
});

const report: ValidationReport = {
  rows: 10,
  errors: 2,
  warnings: 1,
  counts_by_code: { invalid_json: 1, empty_content: 1, long_row: 1 },
  problems: [
    { line: 3, code: "invalid_json", message: "not JSON", severity: "error" },
    { line: 7, code: "empty_content", message: "empty", severity: "error" },
    { line: 9, code: "long_row", message: "long", severity: "warning" },
  ],
  tokens: {
    user: dist(10),
    assistant: dist(10),
    row: dist(10),
    truncated_rows: 4,
    trained_tokens: 900,
    trained_tokens_lost: 120,
  },
};

describe("Report", () => {
  it("lists problems by line with codes, the truncation and token statistics, and a histogram", async () => {
    renderWith(<Report report={report} />, { lang: "en" });
    const lines = screen.getAllByTestId("problem-line").map((td) => td.textContent);
    expect(lines).toEqual(["3", "7", "9"]);
    expect(screen.getAllByText("invalid_json").length).toBeGreaterThan(0);
    expect(screen.getByTestId("truncated-rows")).toHaveTextContent("4");
    const rowStats = screen.getByRole("row", { name: /^row/ });
    expect(within(rowStats).getByText("1,300")).toBeInTheDocument();
    expect(screen.getByRole("img", { name: "Tokens per row (row)" })).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "assistant" }));
    expect(screen.getByRole("img", { name: "Tokens per row (assistant)" })).toBeInTheDocument();
    expect(made.length).toBeGreaterThan(0);
    const data = made[made.length - 1][1] as number[][];
    expect(data).toEqual([
      [0, 100, 200],
      [5, 3, 2],
    ]);
  });

  it("says when a file has no problems", () => {
    renderWith(<Report report={{ ...report, errors: 0, warnings: 0, problems: [], counts_by_code: {} }} />, {
      lang: "en",
    });
    expect(screen.getByText("No problems found.")).toBeInTheDocument();
  });
});

describe("lossPoints", () => {
  it("takes metrics events in step order", () => {
    const ev = (id: number, type: string, data: Record<string, unknown> | null) => ({
      id: `ftevent-${id}`,
      object: "fine_tuning.job.event" as const,
      created_at: 0,
      level: "info",
      message: "",
      type,
      data,
    });
    expect(
      lossPoints([
        ev(3, "metrics", { step: 2, loss: 1.5 }),
        ev(1, "message", null),
        ev(2, "metrics", { step: 1, loss: 2.5 }),
      ]),
    ).toEqual({ x: [1, 2], y: [2.5, 1.5] });
  });
});
