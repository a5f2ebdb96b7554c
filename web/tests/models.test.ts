import { afterEach, describe, expect, it } from "vitest";
import { Api } from "../src/api/client";
import { json, serve, type TestServer } from "./support/server";

describe("the chat model list", () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("keeps the chat models, in the gateway's order, and leaves the embedding models out", async () => {
    const data = [
      { id: "gemini-2.5-flash", object: "model", created: 0, owned_by: "gemini", kind: "chat" },
      { id: "gpt-4o-mini", object: "model", created: 0, owned_by: "openai", kind: "chat" },
      { id: "text-embedding-3-small", object: "model", created: 0, owned_by: "openai", kind: "embedding" },
    ];
    server = await serve((_, response) => json(response, 200, { object: "list", data }));
    const models = await new Api(() => "tok", server.base).chatModels();
    expect(models.map((m) => m.id)).toEqual(["gemini-2.5-flash", "gpt-4o-mini"]);
    expect(server.seen.map((s) => s.url)).toEqual(["/v1/models"]);
  });
});
