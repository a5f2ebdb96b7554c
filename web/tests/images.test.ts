import { afterEach, describe, expect, it } from "vitest";
import { Api } from "../src/api/client";
import { createImage, deleteImage, followJob, jobFromEvent, listImages, type ImageJob } from "../src/api/images";
import { ApiError } from "../src/api/problems";
import { json, serve, type TestServer } from "./support/server";

const JOB = "0b5c9a3e-2f7e-4c1a-9d55-6a3f1e2b7c10";

function job(status: string, stage: string, progress: number, extra: Partial<ImageJob> = {}): ImageJob {
  return {
    id: JOB,
    status: status as ImageJob["status"],
    stage,
    progress,
    prompt: "a red lighthouse",
    name: "a red lighthouse",
    model: "local",
    size: "256x256",
    cost: 5,
    charged: status === "succeeded" ? 5 : 0,
    ...extra,
  };
}

function sse(name: string, body: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(body)}\nid: 1\n\n`;
}

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function collect(api: Api): Promise<ImageJob[]> {
  const out: ImageJob[] = [];
  for await (const state of followJob(api, JOB)) out.push(state);
  return out;
}

describe("jobFromEvent", () => {
  it("takes the job from an event named by its status", () => {
    const state = jobFromEvent({ event: "running", data: JSON.stringify(job("running", "generating", 40)) });
    expect(state).toMatchObject({ status: "running", stage: "generating", progress: 40 });
  });

  it("skips events it does not know", () => {
    expect(jobFromEvent({ event: "message", data: "{}" })).toBeUndefined();
  });

  it("throws the problem an error event carries", () => {
    const problem = { status: 503, title: "Service Unavailable", request_id: "r-1" };
    const thrown = (() => {
      try {
        jobFromEvent({ event: "error", data: JSON.stringify(problem) });
      } catch (caught) {
        return caught;
      }
    })();
    expect(thrown).toBeInstanceOf(ApiError);
    expect((thrown as ApiError).kind).toBe("unavailable");
    expect((thrown as ApiError).requestId).toBe("r-1");
  });
});

describe("followJob", () => {
  it("yields each state as it arrives and stops at the end, with the bearer token", async () => {
    server = await serve((_, response) => {
      response.writeHead(200, { "Content-Type": "text/event-stream" });
      response.write(": image job progress\nretry: 2000\n\n");
      response.write(sse("queued", job("queued", "queued", 0)));
      const running = sse("running", job("running", "generating", 40));
      response.write(running.slice(0, 20)); // an event cut between two reads
      setTimeout(() => {
        response.write(running.slice(20));
        response.write(sse("succeeded", job("succeeded", "done", 100, { imageId: "i-1", url: "/files/x.png" })));
        // The stream stays open: the client must stop by itself at the terminal event.
      }, 20);
    });
    const states = await collect(new Api(() => "tok", server.base));
    expect(states.map((s) => `${s.status}/${s.progress}`)).toEqual(["queued/0", "running/40", "succeeded/100"]);
    expect(states[2].imageId).toBe("i-1");
    expect(server.seen[0].url).toBe(`/v1/images/jobs/${JOB}/events`);
    expect(server.seen[0].headers.authorization).toBe("Bearer tok");
  });

  it("reads the job once more when the stream ends before the job does", async () => {
    server = await serve((request, response) => {
      if (request.url.endsWith("/events")) {
        response.writeHead(200, { "Content-Type": "text/event-stream" });
        response.end(sse("running", job("running", "generating", 40)));
      } else {
        json(response, 200, job("failed", "failed", 40, { error: { code: "provider", detail: "refused" } }));
      }
    });
    const states = await collect(new Api(() => "tok", server.base));
    expect(states.map((s) => s.status)).toEqual(["running", "failed"]);
    expect(states[1].error?.detail).toBe("refused");
    expect(server.seen.map((s) => s.url)).toEqual([`/v1/images/jobs/${JOB}/events`, `/v1/images/jobs/${JOB}`]);
  });

  it("throws a 404 before any event as an ApiError", async () => {
    server = await serve((_, response) =>
      json(response, 404, { title: "Not Found", status: 404, detail: "no such job" }, "application/problem+json"),
    );
    await expect(collect(new Api(() => "tok", server.base))).rejects.toMatchObject({ status: 404 });
  });
});

describe("the image calls", () => {
  it("asks for an image with its size and the idempotency key", async () => {
    server = await serve((_, response) => json(response, 202, job("queued", "queued", 0)));
    const state = await createImage(new Api(() => "tok", server.base), { prompt: "a cat", size: "512x512" }, "key-1");
    expect(state.id).toBe(JOB);
    const [request] = server.seen;
    expect(request.method).toBe("POST");
    expect(request.url).toBe("/v1/images");
    expect(request.headers["idempotency-key"]).toBe("key-1");
    expect(request.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(request.body)).toEqual({ prompt: "a cat", size: "512x512" });
  });

  it("lists a page after the cursor and deletes by id", async () => {
    server = await serve((request, response) => {
      if (request.method === "DELETE") {
        response.writeHead(204);
        response.end();
      } else json(response, 200, { images: [], nextCursor: null });
    });
    const api = new Api(() => "tok", server.base);
    await listImages(api, 12, "1733300000000.0b5c9a3e-2f7e-4c1a-9d55-6a3f1e2b7c10");
    await listImages(api, 12, null);
    await deleteImage(api, "img/1");
    expect(server.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      "GET /v1/images?limit=12&cursor=1733300000000.0b5c9a3e-2f7e-4c1a-9d55-6a3f1e2b7c10",
      "GET /v1/images?limit=12",
      "DELETE /v1/images/img%2F1",
    ]);
  });
});
