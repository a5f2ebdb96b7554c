import { afterEach, describe, expect, it } from "vitest";
import { Api, type JournalEntry } from "../src/api/client";
import { describe as describeEntry } from "../src/views/credits";
import { json, serve, type TestServer } from "./support/server";

function entry(kind: string, reason: string | null = null): JournalEntry {
  return { id: "e", kind, amount: 5, reason, available: -5 };
}

describe("a journal entry in words", () => {
  it("names a grant's reason", () => {
    expect(describeEntry(entry("grant", "signup"))).toBe("Granted: welcome credits");
    expect(describeEntry(entry("grant", "admin"))).toBe("Granted: granted by an administrator");
    expect(describeEntry(entry("grant", "purchase"))).toBe("Granted: purchase");
  });

  it("names holds, charges and returns", () => {
    expect(["reserve", "commit", "release", "expire"].map((k) => describeEntry(entry(k)))).toEqual([
      "Held",
      "Charged",
      "Returned",
      "Hold expired",
    ]);
  });

  it("shows a reason or kind it does not know as it came", () => {
    expect(describeEntry(entry("grant", "promo"))).toBe("Granted: promo");
    expect(describeEntry(entry("migrate"))).toBe("migrate");
  });
});

describe("the credit history call", () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("asks for the page after the cursor", async () => {
    server = await serve((_, response) => json(response, 200, { entries: [], next_cursor: null }));
    const api = new Api(() => "tok", server.base);
    await api.history(20);
    await api.history(20, "3.14");
    expect(server.seen.map((s) => s.url)).toEqual(["/v1/credits/history?limit=20", "/v1/credits/history?limit=20&cursor=3.14"]);
  });
});
