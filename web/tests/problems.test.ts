import { describe, expect, it } from "vitest";
import { ApiError, errorFromProblem, errorFromResponse } from "../src/api/problems";

function problemResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/problem+json", ...headers },
  });
}

describe("errorFromResponse", () => {
  it("turns a 402 into insufficient credits with the server's detail", async () => {
    const error = await errorFromResponse(
      problemResponse(402, { title: "Insufficient credits", status: 402, detail: "needs 40, has 3", request_id: "r1" }),
    );
    expect(error).toBeInstanceOf(ApiError);
    expect(error.kind).toBe("insufficient_credits");
    expect(error.message).toBe("You do not have enough credits for this request. needs 40, has 3.");
    expect(error.requestId).toBe("r1");
  });

  it("tells how long to wait on a 429 from Retry-After", async () => {
    const error = await errorFromResponse(problemResponse(429, { title: "Too many requests" }, { "Retry-After": "7" }));
    expect(error.kind).toBe("rate_limited");
    expect(error.retryAfterS).toBe(7);
    expect(error.message).toBe("Too many requests. Please try again in 7 seconds.");
  });

  it("words a provider outage for a person, with the wait when given", async () => {
    const error = await errorFromResponse(problemResponse(503, { title: "Service unavailable", retry_after: 30 }));
    expect(error.kind).toBe("unavailable");
    expect(error.message).toBe("The AI service is unavailable right now (Service unavailable). Please try again in 30 seconds.");
    const bad = await errorFromResponse(problemResponse(502, { title: "Bad gateway" }));
    expect(bad.message).toBe("The AI service is unavailable right now (Bad gateway). Please try again shortly.");
  });

  it("lists the fields a 422 names", async () => {
    const error = await errorFromResponse(
      problemResponse(422, { title: "Invalid request", errors: [{ field: "model", message: "unknown model" }] }),
    );
    expect(error.message).toBe("The request was not accepted: model: unknown model.");
  });

  it("still gives an error when the body is not JSON", async () => {
    const error = await errorFromResponse(new Response("<html>oops</html>", { status: 500 }));
    expect(error.status).toBe(500);
    expect(error.kind).toBe("unavailable");
    expect(error.message).toContain("error 500");
  });

  it("asks to sign in again on 401", async () => {
    expect((await errorFromResponse(problemResponse(401, { title: "Unauthorized" }))).kind).toBe("unauthenticated");
  });
});

describe("errorFromProblem", () => {
  it("reads the status of a problem sent inside a stream", () => {
    const error = errorFromProblem({ status: 502, title: "Bad gateway", request_id: "r2" });
    expect(error.status).toBe(502);
    expect(error.kind).toBe("unavailable");
    expect(error.requestId).toBe("r2");
  });
});
