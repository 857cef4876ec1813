import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { json, mockFetch, renderWith } from "../test-utils";
import { Audit, auditQuery } from "./Audit";

const ACTOR = "aaaaaaaa-1111-2222-3333-444444444444";
const SUBJECT = "bbbbbbbb-1111-2222-3333-444444444444";
const entry = (id: number, action = "file.upload") => ({
  id,
  at: "2025-01-01T00:00:00Z",
  actor_id: ACTOR,
  actor_role: "admin",
  via: "session",
  action,
  target_type: "file",
  target_id: `file-${id}`,
  subject_id: SUBJECT,
  ip: "127.0.0.1",
  request_id: `req-${id}`,
  details: { bytes: 42 },
});

const audits = (calls: ReturnType<typeof mockFetch>) =>
  calls.filter((c) => c.path === "/api/admin/audit").map((c) => Object.fromEntries(c.query));

describe("Audit", () => {
  it("shows entries with short ids and details, and sends the filters that are set", async () => {
    const calls = mockFetch({ "GET /api/admin/audit": () => json({ data: [entry(7)], has_more: false }) });
    renderWith(<Audit />, { lang: "en" });
    expect(await screen.findByText("file.upload")).toBeInTheDocument();
    expect(screen.getByText("aaaaaaaa")).toBeInTheDocument();
    expect(screen.getByText("bbbbbbbb")).toBeInTheDocument();
    expect(screen.getByText("req-7")).toBeInTheDocument();
    expect(screen.getByText('{"bytes":42}')).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Load more" })).not.toBeInTheDocument();
    expect(audits(calls)).toEqual([{ limit: "100" }]);

    await userEvent.type(screen.getByLabelText("Action (prefix)"), "file.");
    await userEvent.type(screen.getByLabelText("Actor id"), ACTOR);
    await userEvent.type(screen.getByLabelText("Subject id"), ` ${SUBJECT} `);
    await userEvent.click(screen.getByRole("button", { name: "Filter" }));
    await waitFor(() => expect(audits(calls)).toHaveLength(2));
    expect(audits(calls)[1]).toEqual({ limit: "100", action: "file.", actor: ACTOR, subject: SUBJECT });
  });

  it("loads more with before = the last id shown, keeping the filters", async () => {
    const calls = mockFetch({
      "GET /api/admin/audit": [
        () => json({ data: [entry(9), entry(8)], has_more: true }),
        () => json({ data: [entry(9), entry(8)], has_more: true }),
        () => json({ data: [entry(5, "file.delete")], has_more: false }),
      ],
    });
    renderWith(<Audit />, { lang: "en" });
    await screen.findByText("req-9");
    await userEvent.type(screen.getByLabelText("Action (prefix)"), "file");
    await userEvent.click(screen.getByRole("button", { name: "Filter" }));
    await waitFor(() => expect(audits(calls)).toHaveLength(2));
    await userEvent.click(await screen.findByRole("button", { name: "Load more" }));
    expect(await screen.findByText("file.delete")).toBeInTheDocument();
    expect(audits(calls)[2]).toEqual({ limit: "100", action: "file", before: "8" });
    expect(screen.getAllByText(/^req-/).map((e) => e.textContent)).toEqual(["req-9", "req-8", "req-5"]);
    expect(screen.queryByRole("button", { name: "Load more" })).not.toBeInTheDocument();
  });

  it("sends since as an ISO instant", () => {
    const q = auditQuery({ action: "", actor: "", subject: "", since: "2025-03-04T05:06" });
    expect(q).toEqual({ limit: 100, since: new Date("2025-03-04T05:06").toISOString() });
  });
});
