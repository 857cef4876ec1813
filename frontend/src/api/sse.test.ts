import { describe, expect, it } from "vitest";
import { readSse } from "./sse";

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
}

async function collect(chunks: string[]) {
  const out = [];
  for await (const ev of readSse(streamOf(chunks))) out.push(ev);
  return out;
}

describe("readSse", () => {
  it("parses events split across chunks, in order", async () => {
    const events = await collect([
      'event: meta\ndata: {"emergency":null}\n\nevent: del',
      'ta\ndata: {"text":"头"}\n',
      '\nevent: delta\r\ndata: {"text":"痛"}\r\n\r\n',
      'event: done\ndata: {"ok":true}\n\n',
    ]);
    expect(events.map((e) => e.event)).toEqual(["meta", "delta", "delta", "done"]);
    expect(JSON.parse(events[1].data).text).toBe("头");
    expect(JSON.parse(events[2].data).text).toBe("痛");
  });

  it("ignores comments, joins multi-line data, keeps a last event without a blank line", async () => {
    const events = await collect([": ping\n\ndata: a\ndata: b\n\nevent: end\ndata: {}"]);
    expect(events).toEqual([
      { event: "message", data: "a\nb" },
      { event: "end", data: "{}" },
    ]);
  });
});
