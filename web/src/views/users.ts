// Admin: granting credits (one Idempotency-Key per intended grant, kept for its retries) and
// the users with their roles, a page at a time.

import * as admin from "../api/admin";
import type { Api } from "../api/client";
import { dataTable } from "../charts/table";
import { h } from "../dom";

export function grantForm(api: Api, onGranted: () => void): HTMLElement {
  const user = h("input", { id: "grant-user", name: "grant-user", required: true, maxlength: "128", autocomplete: "off", spellcheck: "false" });
  const amount = h("input", { id: "grant-amount", name: "grant-amount", type: "number", min: "1", max: "1000000", step: "1", required: true, inputmode: "numeric" });
  const reason = h("select", { id: "grant-reason", name: "grant-reason" },
    h("option", { value: "admin" }, "admin"), h("option", { value: "purchase" }, "purchase"), h("option", { value: "refund" }, "refund"));
  const submit = h("button", { type: "submit", id: "grant-submit" }, "Grant credits");
  const status = h("p", { id: "grant-status", role: "status", class: "meta" });
  const error = h("p", { id: "grant-error", class: "error", role: "alert" });
  // The same grant sent again (after a timeout, say) reuses its key and is granted once;
  // changing what is granted makes it a new grant.
  let key: string | null = null;
  const form = h("form", { class: "composer", "aria-labelledby": "grant-title" },
    h("h3", { id: "grant-title" }, "Grant credits"),
    h("label", { for: "grant-user" }, "User id"), user,
    h("label", { for: "grant-amount" }, "Amount"), amount,
    h("label", { for: "grant-reason" }, "Reason"), reason,
    h("div", { class: "actions" }, submit), status, error);
  form.addEventListener("input", () => (key = null));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    key ??= crypto.randomUUID();
    submit.disabled = true;
    status.textContent = "";
    error.textContent = "";
    try {
      const done = await admin.grant(api, { userId: user.value.trim(), amount: Number(amount.value), reason: reason.value as admin.GrantReason }, key);
      status.dataset.key = done.idempotency_key;
      status.textContent = `Granted ${done.amount} credits to ${user.value.trim()}; they now have ${done.balance.available} available.`;
      key = null;
      onGranted();
    } catch (caught) {
      error.textContent = caught instanceof Error ? caught.message : String(caught);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export function usersList(api: Api): { element: HTMLElement; refresh: () => Promise<void> } {
  const holder = h("div", { class: "scroll" });
  const more = h("button", { type: "button", id: "users-more", hidden: true }, "Show more users");
  const error = h("p", { class: "error", role: "alert" });
  let shown: admin.User[] = [];
  let cursor: string | null = null;
  const render = () =>
    holder.replaceChildren(
      dataTable("users", "Users and their roles", [
        { key: "id", title: "User id", value: (u: admin.User) => u.id },
        { key: "email", title: "Email", value: (u: admin.User) => u.email || "—" },
        { key: "role", title: "Role", value: (u: admin.User) => u.role },
      ], shown),
    );
  const page = async (first: boolean) => {
    try {
      const got = await admin.users(api, 50, first ? null : cursor);
      shown = first ? got.users : [...shown, ...got.users];
      cursor = got.next_cursor ?? null;
      more.hidden = !cursor;
      render();
    } catch (caught) {
      error.textContent = caught instanceof Error ? caught.message : String(caught);
    }
  };
  more.addEventListener("click", () => void page(false));
  const element = h("section", { "aria-labelledby": "users-title" }, h("h3", { id: "users-title" }, "Users"), holder, more, error);
  return { element, refresh: () => page(true) };
}
