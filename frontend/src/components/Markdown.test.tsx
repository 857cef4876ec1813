import { render } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { Markdown } from "./Markdown";

describe("Markdown", () => {
  it("renders markdown", () => {
    const { container } = render(<Markdown text={"**多喝水**\n\n- 休息\n- 观察"} />);
    expect(container.querySelector("strong")?.textContent).toBe("多喝水");
    expect(container.querySelectorAll("li")).toHaveLength(2);
  });

  it("never renders raw HTML or script URLs from model output", () => {
    const { container } = render(
      <Markdown
        text={
          '<script>alert(1)</script><img src=x onerror="alert(2)"><b>x</b>\n\n[link](javascript:alert(3)) ![i](https://evil.example/x.png)'
        }
      />,
    );
    expect(container.querySelector("script")).toBeNull();
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector("b")).toBeNull();
    expect(container.querySelector("[onerror]")).toBeNull();
    const link = container.querySelector("a");
    expect(link?.getAttribute("href") ?? "").not.toContain("javascript");
    expect(link?.getAttribute("rel")).toContain("noopener");
  });
});
