// The admin API: usage and cost reports, credits granted against spent, users, and grants.
// The server decides who is an admin; the console only asks (a 403 means "not you").

import type { Api } from "./client";

export type UsageGrouping = "day" | "user" | "model" | "provider";

export interface UsageFigures {
  requests: number;
  cached: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
  credits: number;
  cache_hit_ratio: number;
}

export interface UsageRow {
  key: string;
  figures: UsageFigures;
}

export interface UsageReport {
  group_by: UsageGrouping;
  rows: UsageRow[];
  totals: UsageFigures;
}

export interface CreditsReport {
  granted: number;
  granted_by_reason: Record<string, number>;
  spent: number;
  released: number;
}

export const ROLES = ["user", "subscriber", "admin"] as const;
export type Role = (typeof ROLES)[number];

export interface User {
  id: string;
  email: string;
  role: Role;
  created_at: string;
}

export interface UserPage {
  users: User[];
  next_cursor?: string | null;
}

export type GrantReason = "admin" | "purchase" | "refund";

export interface Grant {
  userId: string;
  amount: number;
  reason: GrantReason;
}

export interface Granted {
  idempotency_key: string;
  amount: number;
  balance: { available: number; reserved: number; spent: number; granted: number };
}

/** The period's query string: `since` is `days` days before now; the end is now. */
export function periodQuery(days: number, now = new Date()): string {
  const since = new Date(now.getTime() - days * 86_400_000);
  return `since=${encodeURIComponent(since.toISOString())}`;
}

export function usage(api: Api, groupBy: UsageGrouping, period: string, limit = 100): Promise<UsageReport> {
  return api.json(`/v1/admin/analytics/usage?group_by=${groupBy}&limit=${limit}&${period}`);
}

export function creditsReport(api: Api, period: string): Promise<CreditsReport> {
  return api.json(`/v1/admin/analytics/credits?${period}`);
}

export function users(api: Api, limit = 50, cursor?: string | null): Promise<UserPage> {
  const after = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
  return api.json(`/v1/admin/users?limit=${limit}${after}`);
}

/** Sets a user's role; the answer is the user as now stored. */
export function setRole(api: Api, userId: string, role: Role): Promise<User> {
  const body = JSON.stringify({ role });
  return api.json(`/v1/admin/users/${encodeURIComponent(userId)}/role`, { method: "PUT", body });
}

/** Grants credits; the same key again (a retry) grants once. */
export function grant(api: Api, order: Grant, idempotencyKey: string): Promise<Granted> {
  const body = JSON.stringify({ user_id: order.userId, amount: order.amount, reason: order.reason });
  return api.json("/v1/admin/credits/grants", {
    method: "POST",
    body,
    headers: { "Idempotency-Key": idempotencyKey },
  });
}
