import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { json, mockFetch, renderWith } from "./test-utils";
import { Welcome } from "./Welcome";

describe("Welcome", () => {
  it("says what this is and that it is not a diagnosis, in Chinese by default", () => {
    mockFetch({ "GET /api/auth/me": () => json({ error: { code: "unauthorized", message: "" } }, 401) });
    renderWith(<Welcome />, { auth: true });
    expect(screen.getByRole("heading", { name: "这不是诊断" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "以访客身份开始" })).toBeInTheDocument();
    expect(document.documentElement.lang).toBe("zh-CN");
  });

  it("switches to English and remembers it", async () => {
    mockFetch({ "GET /api/auth/me": () => json({ error: { code: "unauthorized", message: "" } }, 401) });
    renderWith(<Welcome />, { auth: true });
    await userEvent.click(screen.getByRole("button", { name: "English" }));
    expect(screen.getByRole("heading", { name: "This is not a diagnosis" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Start as guest" })).toBeInTheDocument();
    expect(document.documentElement.lang).toBe("en");
    expect(localStorage.getItem("medchat.lang")).toBe("en");
  });

  it("signs up with a phone number", async () => {
    const calls = mockFetch({
      "GET /api/auth/me": () => json({ error: { code: "unauthorized", message: "" } }, 401),
      "POST /api/auth/signup": () =>
        json(
          { user: { id: "u", email: null, phone: "13800000000", role: "patient", is_guest: false }, csrf_token: "c" },
          201,
        ),
    });
    renderWith(<Welcome />, { auth: true });
    await userEvent.click(screen.getByRole("button", { name: "没有账户？注册" }));
    await userEvent.type(screen.getByLabelText("邮箱或手机号"), "13800000000");
    await userEvent.type(screen.getByLabelText("密码（至少 8 位）"), "secret-pass");
    await userEvent.click(screen.getByRole("button", { name: "创建账户" }));
    await screen.findByRole("button", { name: "创建账户" });
    const signup = calls.find((c) => c.path === "/api/auth/signup")!;
    expect(JSON.parse(signup.body)).toEqual({ phone: "13800000000", password: "secret-pass" });
  });
});
