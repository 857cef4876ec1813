import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { json, mockFetch, renderWith } from "../test-utils";
import { EvalRunPage } from "./EvalRunPage";
import { Evals } from "./Evals";

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

const RUN = "evalrun-abc";
const summary = {
  source: "cmb-clin",
  model: "m",
  n: 8,
  Proactivity: 4.25,
  Accuracy: 3.5,
  Helpfulness: 4,
  "Linguistic Quality": 4.75,
  overall: 4.125,
};
const run = (extra: Record<string, unknown> = {}) => ({
  id: RUN,
  object: "eval.run",
  kind: "dialogues",
  model: "disc-medllm",
  dataset: "cmb-clin",
  config: { patient: "http://p:8001/v1/gpt", judge: "http://j:8001/v1/gpt", turns: 3, limit: 10, concurrency: null },
  status: "failed",
  error: { code: "runner_lost", message: "the process running this evaluation stopped" },
  progress: { total: 10, scored: 8, failed: 1 },
  summary,
  created_at: "2025-01-01T00:00:00Z",
  started_at: "2025-01-01T00:00:01Z",
  finished_at: "2025-01-01T00:10:00Z",
  ...extra,
});
const evalCase = (id: number) => ({
  id,
  case_id: `case-${id}`,
  source: "cmb-clin",
  status: "scored",
  conversation: [{ role: "user", content: "头痛" }],
  dataset_info: null,
  scores: { Proactivity: 4, Accuracy: 3, Helpfulness: 4, "Linguistic Quality": 5 },
  judge_reply: "Proactivity: 4",
  error: null,
  attempts: 1,
  updated_at: "2025-01-01T00:05:00Z",
});

beforeEach(() => {
  made.length = 0;
  window.history.replaceState(null, "", `/admin/evals/${RUN}`);
  document.cookie = "medchat_csrf=csrf-9; path=/";
});

describe("EvalRunPage", () => {
  it("shows the four averages and the overall one, charted, and the cases", async () => {
    mockFetch({
      [`GET /api/admin/evals/${RUN}`]: () =>
        json(run({ status: "succeeded", error: null, progress: { total: 8, scored: 8, failed: 0 } })),
      [`GET /api/admin/evals/${RUN}/cases`]: () =>
        json({ object: "list", data: [evalCase(1), evalCase(2)], has_more: false }),
    });
    renderWith(<EvalRunPage runId={RUN} />, { lang: "en" });
    expect(await screen.findByTestId("avg-Proactivity")).toHaveTextContent("4.25");
    expect(screen.getByTestId("avg-Accuracy")).toHaveTextContent("3.5");
    expect(screen.getByTestId("avg-Helpfulness")).toHaveTextContent("4");
    expect(screen.getByTestId("avg-Linguistic Quality")).toHaveTextContent("4.75");
    expect(screen.getByTestId("avg-overall")).toHaveTextContent("4.13");
    expect(screen.getByRole("img", { name: "Averages" })).toBeInTheDocument();
    const data = made[made.length - 1][1] as number[][];
    expect(data).toEqual([
      [0, 1, 2, 3],
      [4.25, 3.5, 4, 4.75],
    ]);
    expect(await screen.findByText("case-2")).toBeInTheDocument();
    expect(screen.getByLabelText("8/8 done")).toBeInTheDocument();
    // A run that scored every case has nothing to resume.
    expect(screen.queryByRole("button", { name: "Resume" })).not.toBeInTheDocument();
  });

  it("resumes a failed run through the resume route, with the CSRF token", async () => {
    const calls = mockFetch({
      [`GET /api/admin/evals/${RUN}`]: () => json(run()),
      [`GET /api/admin/evals/${RUN}/cases`]: () => json({ object: "list", data: [], has_more: false }),
      [`POST /api/admin/evals/${RUN}/resume`]: () => json(run({ status: "queued", error: null, finished_at: null })),
    });
    renderWith(<EvalRunPage runId={RUN} />, { lang: "en" });
    expect(await screen.findByRole("alert")).toHaveTextContent("runner_lost");
    expect(screen.getByLabelText("9/10 done")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Resume" }));
    await waitFor(() => expect(screen.getByText("queued")).toBeInTheDocument());
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.path).toBe(`/api/admin/evals/${RUN}/resume`);
    expect(post.headers.get("X-CSRF-Token")).toBe("csrf-9");
    expect(screen.queryByRole("button", { name: "Resume" })).not.toBeInTheDocument();
  });
});

describe("Evals", () => {
  it("lists runs with progress and overall average, and starts a run with the form's fields", async () => {
    const calls = mockFetch({
      "GET /v1/models": () => json({ object: "list", data: [{ id: "disc-medllm" }] }),
      "GET /api/admin/evals": () => json({ object: "list", data: [run()], has_more: false }),
      "POST /api/admin/evals": () => json(run({ id: "evalrun-new", status: "queued", summary: null }), 201),
    });
    renderWith(<Evals />, { lang: "en" });
    expect(await screen.findByRole("link", { name: RUN })).toBeInTheDocument();
    expect(screen.getByText("4.13")).toBeInTheDocument();
    expect(screen.getByLabelText("9/10 done")).toBeInTheDocument();
    await waitFor(() => expect(screen.getByLabelText("Model under test")).toHaveValue("disc-medllm"));
    await userEvent.selectOptions(screen.getByLabelText("Evaluation set"), "cmid");
    await userEvent.type(screen.getByLabelText("Patient simulator (URL/model)"), "http://p:8001/v1/gpt-4");
    await userEvent.type(screen.getByLabelText("Judge (URL/model)"), "http://j:8001/v1/gpt-4");
    await userEvent.type(screen.getByLabelText("Case limit"), "20");
    await userEvent.click(screen.getByRole("button", { name: "Start run" }));
    await waitFor(() => expect(window.location.pathname).toBe("/admin/evals/evalrun-new"));
    const post = calls.find((c) => c.method === "POST")!;
    expect(JSON.parse(post.body)).toEqual({
      model: "disc-medllm",
      dataset: "cmid",
      patient: "http://p:8001/v1/gpt-4",
      judge: "http://j:8001/v1/gpt-4",
      turns: 3,
      limit: 20,
      concurrency: null,
    });
  });
});
