// Credits: the balance in the header, always visible, and the journal with what each change
// was for, newest first, a page at a time.

import type { Api, Balance, JournalEntry } from "../api/client";
import { h } from "../dom";

const PAGE = 20;

export function showBalance(target: HTMLElement, balance: Balance): void {
  target.hidden = false;
  target.dataset.available = String(balance.available);
  target.textContent = `Credits: ${balance.available}${balance.reserved ? ` (${balance.reserved} held)` : ""}`;
}

const KINDS: Record<string, string> = {
  grant: "Granted",
  reserve: "Held",
  commit: "Charged",
  release: "Returned",
  expire: "Hold expired",
};
const REASONS: Record<string, string> = {
  signup: "welcome credits",
  purchase: "purchase",
  admin: "granted by an administrator",
  refund: "refund",
};

/** What a journal entry means, in words: its kind and, for a grant, why. */
export function describe(e: JournalEntry): string {
  const kind = KINDS[e.kind] ?? e.kind;
  return e.reason ? `${kind}: ${REASONS[e.reason] ?? e.reason}` : kind;
}

/** The change to what can be spent, signed: +100 for a grant, -5 for a hold. */
function signed(n: number): string {
  return n > 0 ? `+${n}` : n < 0 ? `\u2212${-n}` : "0";
}

function row(e: JournalEntry): HTMLElement {
  const when = e.at ?? e.created_at;
  return h(
    "tr",
    { "data-kind": e.kind, "data-reason": e.reason ?? "" },
    h("td", {}, when ? h("time", { datetime: when }, new Date(when).toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" })) : ""),
    h("td", { class: "what" }, describe(e)),
    h("td", { class: "num" }, String(e.amount)),
    h("td", { class: "num" }, signed(e.available)),
  );
}

export function historyView(api: Api): { element: HTMLElement; refresh: () => Promise<void> } {
  const body = h("tbody", { id: "credit-history" });
  const table = h(
    "table",
    { class: "history" },
    h("caption", { class: "hint" }, "Each change to your credits, newest first."),
    h(
      "thead",
      {},
      h("tr", {}, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "What"),
        h("th", { scope: "col", class: "num" }, "Credits"), h("th", { scope: "col", class: "num" }, "Available")),
    ),
    body,
  );
  const more = h("button", { type: "button", id: "history-more", hidden: true }, "Show older entries");
  const error = h("p", { class: "error", role: "alert" });
  let cursor: string | null = null;
  const element = h(
    "section",
    { class: "card", "aria-labelledby": "history-title" },
    h("h2", { id: "history-title", tabindex: "-1" }, "Credit history"),
    h("div", { class: "scroll" }, table),
    more,
    error,
  );
  more.addEventListener("click", async () => {
    try {
      const page = await api.history(PAGE, cursor);
      body.append(...page.entries.map(row));
      cursor = page.next_cursor ?? null;
      more.hidden = !cursor;
    } catch (caught) {
      error.textContent = caught instanceof Error ? caught.message : String(caught);
    }
  });
  return {
    element,
    async refresh() {
      const page = await api.history(PAGE);
      cursor = page.next_cursor ?? null;
      more.hidden = !cursor;
      body.replaceChildren(
        ...(page.entries.length ? page.entries.map(row) : [h("tr", {}, h("td", { colspan: "4" }, "No entries yet."))]),
      );
    },
  };
}
