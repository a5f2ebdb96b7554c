import { describe, expect, it } from "vitest";
import { readSse, SseParser } from "../src/api/sse";

describe("SseParser", () => {
  it("parses named events and joins data lines", () => {
    const events = new SseParser().push('event: chunk\ndata: {"delta":"a"}\n\nevent: done\ndata: 1\ndata: 2\n\n');
    expect(events).toEqual([
      { event: "chunk", data: '{"delta":"a"}', id: undefined },
      { event: "done", data: "1\n2", id: undefined },
    ]);
  });

  it("keeps an event split across reads until its blank line", () => {
    const parser = new SseParser();
    expect(parser.push("event: chu")).toEqual([]);
    expect(parser.push("nk\ndata: hel")).toEqual([]);
    expect(parser.push("lo\n")).toEqual([]);
    expect(parser.push("\n")).toEqual([{ event: "chunk", data: "hello", id: undefined }]);
  });

  it("accepts CRLF and CR line ends, even a CRLF split between reads", () => {
    const parser = new SseParser();
    expect(parser.push("data: a\r")).toEqual([]);
    expect(parser.push("\n\r\n")).toEqual([{ event: "message", data: "a", id: undefined }]);
    expect(parser.push("data: b\r\r")).toEqual([{ event: "message", data: "b", id: undefined }]);
  });

  it("ignores comments, unknown fields and events without data", () => {
    const events = new SseParser().push(": keep-alive\n\nretry: 5\nevent: ping\n\nfoo: bar\ndata:x\n\n");
    expect(events).toEqual([{ event: "message", data: "x", id: undefined }]);
  });

  it("removes only one leading space of a value", () => {
    expect(new SseParser().push("data:  two\n\n")[0].data).toBe(" two");
  });
});

describe("readSse", () => {
  it("yields events from a byte stream cut in the middle of a UTF-8 character", async () => {
    const bytes = new TextEncoder().encode('event: chunk\ndata: {"delta":"é"}\n\n');
    const cut = bytes.indexOf(0xa9); // the second byte of é
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, cut));
        controller.enqueue(bytes.slice(cut));
        controller.close();
      },
    });
    const seen = [];
    for await (const event of readSse(body)) seen.push(event);
    expect(seen).toEqual([{ event: "chunk", data: '{"delta":"é"}', id: undefined }]);
  });
});
