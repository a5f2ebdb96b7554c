// Image generation: a job is accepted (202), its progress arrives as server-sent events
// (GET /v1/images/jobs/{id}/events, read with fetch so the bearer token goes along), and the
// image lands in the gallery, listed newest first a page at a time.

import type { Api } from "./client";
import { ApiError, errorFromProblem, type Problem } from "./problems";
import { readSse, type SseEvent } from "./sse";

export const SIZES = ["256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792"] as const;
export type ImageSize = (typeof SIZES)[number];

export type JobStatus = "queued" | "running" | "succeeded" | "failed";

export interface ImageJob {
  id: string;
  status: JobStatus;
  stage: string;
  progress: number;
  prompt: string;
  name: string;
  model: string;
  size: string;
  cost: number;
  charged: number;
  imageId?: string | null;
  url?: string | null;
  creditsRemaining?: number | null;
  error?: { code: string; detail: string } | null;
}

export interface Image {
  id: string;
  url: string;
  name: string;
  prompt: string;
  model: string;
  size: string;
  cost: number;
  width: number;
  height: number;
  jobId: string;
  createdAt: string;
}

export interface ImagePage {
  images: Image[];
  nextCursor?: string | null;
}

export interface ImageOrder {
  prompt: string;
  size?: ImageSize;
  name?: string;
}

const STATUSES: readonly string[] = ["queued", "running", "succeeded", "failed"];

export function isFinished(job: ImageJob): boolean {
  return job.status === "succeeded" || job.status === "failed";
}

/** The job an event of the stream carries; an `error` event is thrown; anything else is skipped. */
export function jobFromEvent(event: SseEvent): ImageJob | undefined {
  if (event.event === "error") throw errorFromProblem(JSON.parse(event.data) as Problem);
  if (!STATUSES.includes(event.event)) return undefined;
  const job = JSON.parse(event.data) as ImageJob;
  return { ...job, status: event.event as JobStatus };
}

/** Asks for an image: the accepted job (its credits are held from now on). */
export function createImage(api: Api, order: ImageOrder, idempotencyKey: string): Promise<ImageJob> {
  const body = JSON.stringify({ prompt: order.prompt, size: order.size, name: order.name || undefined });
  return api.json("/v1/images", { method: "POST", body, headers: { "Idempotency-Key": idempotencyKey } });
}

export function getJob(api: Api, jobId: string): Promise<ImageJob> {
  return api.json(`/v1/images/jobs/${encodeURIComponent(jobId)}`);
}

/** Each state of the job as it changes, until it succeeds or fails. A stream that ends
 * early (a proxy's timeout, the server going away) is followed by one plain read. */
export async function* followJob(api: Api, jobId: string, signal?: AbortSignal): AsyncGenerator<ImageJob> {
  const response = await api.request(`/v1/images/jobs/${encodeURIComponent(jobId)}/events`, { signal });
  if (!response.body) throw new ApiError(0, {});
  for await (const event of readSse(response.body)) {
    const job = jobFromEvent(event);
    if (!job) continue;
    yield job;
    if (isFinished(job)) return;
  }
  yield await getJob(api, jobId);
}

export function listImages(api: Api, limit: number, cursor?: string | null): Promise<ImagePage> {
  const after = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
  return api.json(`/v1/images?limit=${limit}${after}`);
}

export async function deleteImage(api: Api, imageId: string): Promise<void> {
  await api.request(`/v1/images/${encodeURIComponent(imageId)}`, { method: "DELETE" });
}
