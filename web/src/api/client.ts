// The gateway's API as the app uses it: a bearer token on every call, problem+json errors
// thrown as ApiError, and /v1/chat streamed as typed events.

import { ApiError, errorFromProblem, errorFromResponse, type Problem } from "./problems";
import { readSse } from "./sse";

export interface Balance {
  available: number;
  reserved: number;
  spent: number;
  granted: number;
}

export interface JournalEntry {
  id: string;
  kind: string;
  amount: number;
  reason?: string | null;
  available: number;
  at?: string;
  created_at?: string;
}

export interface JournalPage {
  entries: JournalEntry[];
  next_cursor?: string | null;
}

/** The signed-in user as the server judges them (GET /v1/me). */
export interface Me {
  id: string;
  email: string | null;
  role: "user" | "subscriber" | "admin";
}

export interface Model {
  id: string;
  owned_by: string;
  /** What it answers: chat completions or embeddings (the gateway's addition to OpenAI's shape). */
  kind: "chat" | "embedding";
}

export interface ChatMessage {
  role: "user" | "assistant" | "system";
  content: string;
}

export interface ChatCompletion {
  id: string;
  message: ChatMessage;
  model: string;
  provider: string;
  cached: boolean;
  finish_reason: string;
  credits: number;
}

export type ChatEvent =
  | { type: "chunk"; delta: string; provider: string; model: string }
  | { type: "done"; completion: ChatCompletion };

export class Api {
  constructor(
    private readonly token: () => string | null | Promise<string | null>,
    private readonly base = "",
  ) {}

  /** A call with the bearer token; a non-2xx answer is thrown as ApiError. */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    const token = await this.token();
    if (token) headers.set("Authorization", `Bearer ${token}`);
    if (init.body) headers.set("Content-Type", "application/json");
    let response: Response;
    try {
      response = await fetch(this.base + path, { ...init, headers });
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") throw error;
      throw new ApiError(0, {});
    }
    if (!response.ok) throw await errorFromResponse(response);
    return response;
  }

  async json<T>(path: string, init?: RequestInit): Promise<T> {
    return (await (await this.request(path, init)).json()) as T;
  }

  me(): Promise<Me> {
    return this.json("/v1/me");
  }

  balance(): Promise<Balance> {
    return this.json("/v1/credits");
  }

  history(limit = 20, cursor?: string | null): Promise<JournalPage> {
    const after = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    return this.json(`/v1/credits/history?limit=${limit}${after}`);
  }

  /** The chat models, in failover order (the list holds the embedding models too). */
  async chatModels(): Promise<Model[]> {
    return (await this.json<{ data: Model[] }>("/v1/models")).data.filter((m) => m.kind === "chat");
  }

  /** Development sign-in: a token from the gateway's development issuer. */
  async devToken(email: string, role: string): Promise<string> {
    const body = JSON.stringify({ email, role });
    return (await this.json<{ token: string }>("/v1/dev/token", { method: "POST", body })).token;
  }

  /** Streams an answer; aborting `signal` stops it (the gateway then charges what arrived). */
  async *chat(messages: ChatMessage[], model: string | undefined, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    const body = JSON.stringify({ messages, model, stream: true });
    const response = await this.request("/v1/chat", { method: "POST", body, signal });
    if (!response.body) throw new ApiError(0, {});
    for await (const event of readSse(response.body)) {
      const data: unknown = JSON.parse(event.data);
      if (event.event === "chunk") {
        const chunk = data as { delta: string; provider: string; model: string };
        yield { type: "chunk", delta: chunk.delta, provider: chunk.provider, model: chunk.model };
      } else if (event.event === "done") {
        yield { type: "done", completion: data as ChatCompletion };
        return;
      } else if (event.event === "error") {
        throw errorFromProblem(data as Problem);
      }
    }
  }
}
