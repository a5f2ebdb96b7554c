// RFC 9457 problem documents turned into typed errors with a message for a person.

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  request_id?: string;
  retry_after?: number;
  errors?: { field: string; message: string }[];
  [key: string]: unknown;
}

export type ErrorKind =
  | "unauthenticated"
  | "forbidden"
  | "insufficient_credits"
  | "rate_limited"
  | "invalid"
  | "unavailable"
  | "network"
  | "other";

export class ApiError extends Error {
  readonly kind: ErrorKind;

  constructor(
    readonly status: number,
    readonly problem: Problem,
    readonly retryAfterS?: number,
  ) {
    super(humanMessage(status, problem, retryAfterS));
    this.name = "ApiError";
    this.kind = kindOf(status);
  }

  get requestId(): string | undefined {
    return this.problem.request_id;
  }
}

function kindOf(status: number): ErrorKind {
  if (status === 0) return "network";
  if (status === 401) return "unauthenticated";
  if (status === 403) return "forbidden";
  if (status === 402) return "insufficient_credits";
  if (status === 429) return "rate_limited";
  if (status === 413 || status === 422 || status === 400) return "invalid";
  if (status >= 500) return "unavailable";
  return "other";
}

function seconds(s: number): string {
  const n = Math.max(1, Math.ceil(s));
  return n === 1 ? "1 second" : `${n} seconds`;
}

/** What to tell a person: plain words first, the server's detail after, never a stack. */
export function humanMessage(status: number, problem: Problem, retryAfterS?: number): string {
  let detail = typeof problem.detail === "string" ? problem.detail.trim() : "";
  if (detail && !/[.!?]$/.test(detail)) detail += ".";
  switch (kindOf(status)) {
    case "network":
      return "The server could not be reached. Check your connection and try again.";
    case "unauthenticated":
      return "Your session has expired or is not valid. Please sign in again.";
    case "forbidden":
      return "Your account is not allowed to do this.";
    case "insufficient_credits":
      return `You do not have enough credits for this request.${detail ? " " + detail : ""}`;
    case "rate_limited":
      return retryAfterS !== undefined
        ? `Too many requests. Please try again in ${seconds(retryAfterS)}.`
        : "Too many requests. Please wait a moment and try again.";
    case "invalid": {
      const fields = (problem.errors ?? []).map((e) => `${e.field}: ${e.message}`).join("; ");
      return `The request was not accepted: ${fields || detail || problem.title || "invalid input"}.`;
    }
    case "unavailable": {
      const wait = retryAfterS !== undefined ? ` Please try again in ${seconds(retryAfterS)}.` : " Please try again shortly.";
      return `The AI service is unavailable right now (${problem.title || "error " + status}).${wait}`;
    }
    default:
      return detail || problem.title || `Request failed (${status}).`;
  }
}

function retryAfter(response: Response | undefined, problem: Problem): number | undefined {
  const header = response?.headers.get("Retry-After");
  if (header && /^\d+$/.test(header.trim())) return Number(header.trim());
  if (header) {
    const when = Date.parse(header);
    if (!Number.isNaN(when)) return Math.max(0, (when - Date.now()) / 1000);
  }
  return typeof problem.retry_after === "number" ? problem.retry_after : undefined;
}

/** The error a non-2xx response stands for; a body that is not a problem still gives one. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  let problem: Problem = {};
  try {
    const body: unknown = JSON.parse(await response.text());
    if (body && typeof body === "object" && !Array.isArray(body)) problem = body as Problem;
  } catch {
    problem = {};
  }
  return new ApiError(response.status, problem, retryAfter(response, problem));
}

/** The error a problem document inside a stream (`event: error`) stands for. */
export function errorFromProblem(problem: Problem): ApiError {
  const status = typeof problem.status === "number" ? problem.status : 500;
  return new ApiError(status, problem, retryAfter(undefined, problem));
}
