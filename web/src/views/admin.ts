// Admin: usage and estimated cost by day, model, provider and user, credits granted against
// spent, a grant form and the users with their roles. Charts carry their numbers as tables.

import * as admin from "../api/admin";
import type { Api } from "../api/client";
import { chart } from "../charts/chart";
import { dataTable, type Column } from "../charts/table";
import { h } from "../dom";
import { grantForm, usersList } from "./users";

const count = (n: number) => n.toLocaleString("en-US");
const usd = (n: number) => `$${n.toFixed(n && n < 0.01 ? 6 : 2)}`;
const percent = (n: number) => `${(n * 100).toFixed(1)}%`;
const tokens = (f: admin.UsageFigures) => f.prompt_tokens + f.completion_tokens;

function usageColumns(first: string): Column<admin.UsageRow>[] {
  return [
    { key: "key", title: first, value: (r) => r.key },
    { key: "requests", title: "Requests", value: (r) => r.figures.requests, format: count },
    { key: "tokens", title: "Tokens", value: (r) => tokens(r.figures), format: count },
    { key: "cost_usd", title: "Estimated cost", value: (r) => r.figures.cost_usd, format: usd },
    { key: "cache_hit_ratio", title: "Cache hits", value: (r) => r.figures.cache_hit_ratio, format: percent },
    { key: "credits", title: "Credits", value: (r) => r.figures.credits, format: count },
  ];
}

function byDay(report: admin.UsageReport): HTMLElement {
  const series = (id: string, title: string, pick: (f: admin.UsageFigures) => number, format: (n: number) => string) =>
    chart({ id, title, kind: "columns", format, data: report.rows.map((r) => ({ label: r.key, value: pick(r.figures) })) });
  const t = report.totals;
  return h(
    "section",
    { "aria-labelledby": "usage-day-title" },
    h("h3", { id: "usage-day-title" }, "Usage by day"),
    h("p", { id: "usage-totals", class: "hint" },
      `In this period: ${count(t.requests)} requests, ${count(tokens(t))} tokens, ${usd(t.cost_usd)} estimated, ${percent(t.cache_hit_ratio)} from the cache.`),
    h("div", { class: "charts" },
      series("requests-by-day", "Requests", (f) => f.requests, count),
      series("tokens-by-day", "Tokens", tokens, count),
      series("cost-by-day", "Estimated cost (USD)", (f) => f.cost_usd, usd),
      series("cache-by-day", "Cache hit ratio", (f) => f.cache_hit_ratio, percent)),
  );
}

function byCategory(id: string, title: string, first: string, report: admin.UsageReport): HTMLElement {
  return h(
    "section",
    { "aria-labelledby": `${id}-title` },
    h("h3", { id: `${id}-title` }, title),
    chart({ id: `${id}-chart`, title: `Estimated cost by ${first.toLowerCase()} (USD)`, kind: "bars", format: usd,
      data: report.rows.map((r) => ({ label: r.key, value: r.figures.cost_usd })) }),
    h("div", { class: "scroll" }, dataTable(id, title, usageColumns(first), report.rows)),
  );
}

function credits(report: admin.CreditsReport): HTMLElement {
  const reasons = Object.entries(report.granted_by_reason).map(([label, value]) => ({ label, value }));
  return h(
    "section",
    { "aria-labelledby": "credits-report-title" },
    h("h3", { id: "credits-report-title" }, "Credits granted vs spent"),
    h("div", { class: "charts" },
      chart({ id: "credits-flow", title: "Credits", kind: "bars", format: count, data: [
        { label: "granted", value: report.granted },
        { label: "spent", value: report.spent },
        { label: "released", value: report.released },
      ] }),
      chart({ id: "granted-by-reason", title: "Granted by reason", kind: "bars", format: count, data: reasons })),
  );
}

export function adminView(api: Api, onGranted: () => void): HTMLElement {
  const period = h("select", { id: "period", name: "period" },
    h("option", { value: "7" }, "Last 7 days"), h("option", { value: "30" }, "Last 30 days"), h("option", { value: "90" }, "Last 90 days"));
  period.value = "30";
  const reports = h("div", { id: "reports", "aria-live": "polite", "aria-busy": "true" });
  const error = h("p", { id: "admin-error", class: "error", role: "alert" });
  const people = usersList(api);

  const load = async () => {
    reports.setAttribute("aria-busy", "true");
    error.textContent = "";
    try {
      const since = admin.periodQuery(Number(period.value));
      const [day, model, provider, user, flow] = await Promise.all([
        admin.usage(api, "day", since),
        admin.usage(api, "model", since),
        admin.usage(api, "provider", since),
        admin.usage(api, "user", since, 10),
        admin.creditsReport(api, since),
      ]);
      reports.replaceChildren(
        byDay(day),
        byCategory("usage-by-model", "By model", "Model", model),
        byCategory("usage-by-provider", "By provider", "Provider", provider),
        byCategory("top-users", "Top users", "User", user),
        credits(flow),
      );
    } catch (caught) {
      error.textContent = caught instanceof Error ? caught.message : String(caught);
    } finally {
      reports.setAttribute("aria-busy", "false");
    }
  };
  period.addEventListener("change", () => void load());
  void load();
  void people.refresh();

  const granted = () => {
    onGranted();
    void load();
    void people.refresh();
  };
  return h(
    "section",
    { class: "card admin", "aria-labelledby": "admin-title" },
    h("h2", { id: "admin-title", tabindex: "-1" }, "Admin"),
    h("label", { for: "period" }, "Period"),
    period,
    error,
    reports,
    grantForm(api, granted),
    people.element,
  );
}
