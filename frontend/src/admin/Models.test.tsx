import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { json, mockFetch, renderWith } from "../test-utils";
import { Models } from "./Models";

const FT = "ft:disc-medllm:med:ftjob-1";
const list = (serving: string) => () =>
  json({
    object: "list",
    data: [
      { id: "disc-medllm", object: "model", serving: serving === "disc-medllm" },
      { id: FT, object: "model", kind: "merged", parent: "disc-medllm", serving: serving === FT },
    ],
  });

describe("Models", () => {
  afterEach(() => vi.restoreAllMocks());

  it("switches the serving model after confirmation and shows the new list", async () => {
    vi.spyOn(window, "confirm").mockReturnValue(true);
    const calls = mockFetch({
      "GET /v1/models": [list("disc-medllm"), list(FT)],
      "PUT /api/admin/serving": () => json({ model: FT, default_model: "disc-medllm" }),
    });
    renderWith(<Models />, { lang: "en" });
    await userEvent.click(await screen.findByRole("button", { name: "Serve patients" }));
    await waitFor(() => expect(screen.getByRole("row", { name: /ftjob-1.*Serving/ })).toBeInTheDocument());
    const put = calls.find((c) => c.method === "PUT");
    expect(JSON.parse(put?.body ?? "")).toEqual({ model: FT });
  });

  it("shows the gateway's refusal and keeps the current choice", async () => {
    vi.spyOn(window, "confirm").mockReturnValue(true);
    mockFetch({
      "GET /v1/models": list("disc-medllm"),
      "PUT /api/admin/serving": () =>
        json({ error: { code: "model_not_served", message: "Start TGI with LORA_ADAPTERS=…", param: "model" } }, 409),
    });
    renderWith(<Models />, { lang: "en" });
    await userEvent.click(await screen.findByRole("button", { name: "Serve patients" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Start TGI with LORA_ADAPTERS=… (model_not_served)");
    expect(screen.getByRole("row", { name: /disc-medllm Serving/ })).toBeInTheDocument();
  });
});
