import { afterEach, describe, expect, it } from "vitest";
import * as admin from "../src/api/admin";
import { Api } from "../src/api/client";
import { ApiError } from "../src/api/problems";
import { errorText } from "../src/views/users";
import { json, serve, type TestServer } from "./support/server";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("the admin calls", () => {
  it("sends a grant with its Idempotency-Key", async () => {
    server = await serve((_, response) =>
      json(response, 200, { idempotency_key: "admin:u:k", amount: 50, balance: { available: 70, reserved: 0, spent: 0, granted: 70 } }),
    );
    const done = await admin.grant(new Api(() => "tok", server.base), { userId: "u", amount: 50, reason: "purchase" }, "k-1");
    expect(done.balance.available).toBe(70);
    const [request] = server.seen;
    expect(`${request.method} ${request.url}`).toBe("POST /v1/admin/credits/grants");
    expect(request.headers["idempotency-key"]).toBe("k-1");
    expect(JSON.parse(request.body)).toEqual({ user_id: "u", amount: 50, reason: "purchase" });
  });

  it("sets a role and throws the API's problem, with its request id, when refused", async () => {
    server = await serve((request, response) =>
      request.url.endsWith("/u%2F1/role")
        ? json(response, 200, { id: "u/1", email: "b@example.com", role: "subscriber", created_at: "2026-12-01T00:00:00Z" })
        : json(response, 403, { status: 403, title: "Forbidden", request_id: "req-9" }, "application/problem+json"),
    );
    const api = new Api(() => "tok", server.base);
    expect((await admin.setRole(api, "u/1", "subscriber")).role).toBe("subscriber");
    expect(server.seen[0].method).toBe("PUT");
    expect(JSON.parse(server.seen[0].body)).toEqual({ role: "subscriber" });
    const refused = await admin.setRole(api, "u2", "admin").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).kind).toBe("forbidden");
    expect(errorText(refused)).toBe("Your account is not allowed to do this. (request id req-9)");
  });

  it("asks for a report grouped, limited and over the period", async () => {
    server = await serve((_, response) => json(response, 200, { group_by: "user", rows: [], totals: {} }));
    const period = admin.periodQuery(7, new Date("2026-12-08T00:00:00Z"));
    expect(period).toBe("since=2026-12-01T00%3A00%3A00.000Z");
    await admin.usage(new Api(() => "tok", server.base), "user", period, 10);
    expect(server.seen[0].url).toBe("/v1/admin/analytics/usage?group_by=user&limit=10&since=2026-12-01T00%3A00%3A00.000Z");
  });

  it("asks who is signed in with the bearer token", async () => {
    server = await serve((_, response) => json(response, 200, { id: "user_1", email: null, role: "admin" }));
    const me = await new Api(() => Promise.resolve("tok"), server.base).me();
    expect(me).toEqual({ id: "user_1", email: null, role: "admin" });
    expect(server.seen[0].url).toBe("/v1/me");
    expect(server.seen[0].headers.authorization).toBe("Bearer tok");
  });
});
