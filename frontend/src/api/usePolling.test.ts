import { act, renderHook } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { usePolling, type PollingOptions } from "./usePolling";

type Item = { status: string; n: number };

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

/** Let resolved promises run (and React apply their updates). */
const settle = () => act(async () => {});
const after = (ms: number) => act(async () => void (await vi.advanceTimersByTimeAsync(ms)));

const whileRunning: PollingOptions<Item> = { every: (x) => (x.status === "running" ? 1000 : null) };

function server(...answers: (Item | Error)[]) {
  return vi.fn(async () => {
    const next = answers.length > 1 ? answers.shift()! : answers[0];
    if (next instanceof Error) throw next;
    return next;
  });
}

describe("usePolling", () => {
  it("loads, polls while `every` asks to, then stops", async () => {
    const load = server({ status: "running", n: 1 }, { status: "running", n: 2 }, { status: "done", n: 3 });
    const { result } = renderHook(() => usePolling("k", load, whileRunning));
    expect(result.current.data).toBeNull();
    await settle();
    expect(result.current.data).toEqual({ status: "running", n: 1 });
    await after(1000);
    expect(result.current.data?.n).toBe(2);
    await after(1000);
    expect(result.current.data?.n).toBe(3);
    await after(10_000);
    expect(load).toHaveBeenCalledTimes(3);
  });

  it("keeps the last data through a failed load, retries, and clears the error on success", async () => {
    const load = server({ status: "running", n: 1 }, new Error("down"), { status: "done", n: 2 });
    const { result } = renderHook(() => usePolling("k", load, { ...whileRunning, retryAfterError: 3000 }));
    await settle();
    await after(1000);
    expect(result.current.error?.message).toBe("down");
    expect(result.current.data?.n).toBe(1);
    await after(2999);
    expect(load).toHaveBeenCalledTimes(2);
    await after(1);
    expect(result.current.error).toBeNull();
    expect(result.current.data?.n).toBe(2);
  });

  it("stops after maxLoads", async () => {
    const load = server({ status: "running", n: 1 });
    renderHook(() => usePolling("k", load, { ...whileRunning, maxLoads: 3 }));
    await settle();
    await after(10_000);
    expect(load).toHaveBeenCalledTimes(3);
  });

  it("starts again for a new key and drops a late answer for the old one", async () => {
    let release: (x: Item) => void = () => undefined;
    const slow = new Promise<Item>((r) => (release = r));
    const load = vi.fn((key: string) => (key === "a" ? slow : Promise.resolve({ status: "done", n: 2 })));
    const { result, rerender } = renderHook(({ k }) => usePolling(k, () => load(k), whileRunning), {
      initialProps: { k: "a" },
    });
    rerender({ k: "b" });
    await settle();
    expect(result.current.data?.n).toBe(2);
    release({ status: "running", n: 1 });
    await settle();
    await after(5000);
    expect(result.current.data?.n).toBe(2);
    expect(load.mock.calls.map((c) => c[0])).toEqual(["a", "b"]);
  });

  it("refresh loads now; setData shows an action's answer and polls on from it", async () => {
    const load = server({ status: "done", n: 1 }, { status: "done", n: 2 }, { status: "running", n: 4 });
    const { result } = renderHook(() => usePolling("k", load, whileRunning));
    await settle();
    act(() => result.current.refresh());
    await settle();
    expect(result.current.data?.n).toBe(2);
    act(() => result.current.setData({ status: "running", n: 3 })); // e.g. a resumed run
    expect(result.current.data?.n).toBe(3);
    expect(load).toHaveBeenCalledTimes(2);
    await after(1000);
    expect(result.current.data?.n).toBe(4);
  });

  it("stops polling when unmounted", async () => {
    const load = server({ status: "running", n: 1 });
    const { unmount } = renderHook(() => usePolling("k", load, whileRunning));
    await settle();
    unmount();
    await after(5000);
    expect(load).toHaveBeenCalledTimes(1);
  });
});
