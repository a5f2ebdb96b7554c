// Credits: the balance in the header, always visible, and the journal below the chat.

import type { Api, Balance, JournalEntry } from "../api/client";
import { h } from "../dom";

export function showBalance(target: HTMLElement, balance: Balance): void {
  target.hidden = false;
  target.dataset.available = String(balance.available);
  target.textContent = `Credits: ${balance.available}${balance.reserved ? ` (${balance.reserved} held)` : ""}`;
}

function entry(e: JournalEntry): HTMLElement {
  const when = e.at ?? e.created_at;
  return h(
    "li",
    {},
    h("span", { class: "kind" }, e.kind),
    h("span", { class: "amount" }, String(e.amount)),
    e.reason ? h("span", { class: "reason" }, e.reason) : "",
    when ? h("time", { datetime: when }, new Date(when).toLocaleString()) : "",
  );
}

export function historyView(): { element: HTMLElement; refresh: (api: Api) => Promise<void> } {
  const list = h("ul", { id: "credit-history", class: "history" });
  const element = h(
    "section",
    { class: "card", "aria-labelledby": "history-title" },
    h("h2", { id: "history-title" }, "Credit history"),
    list,
  );
  return {
    element,
    async refresh(api: Api) {
      const page = await api.history(20);
      list.replaceChildren(...(page.entries.length ? page.entries.map(entry) : [h("li", {}, "No entries yet.")]));
    },
  };
}
