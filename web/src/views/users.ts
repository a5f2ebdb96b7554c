// Admin: granting credits (one Idempotency-Key per intended grant, kept for its retries) and
// the users with their roles, a page at a time.

import * as admin from "../api/admin";
import type { Api } from "../api/client";
import { ApiError } from "../api/problems";
import { dataTable, scroller } from "../charts/table";
import { h } from "../dom";

/** The known users' ids, offered as the grant form's user id is typed. */
export function userIds(): HTMLDataListElement {
  return h("datalist", { id: "user-ids" });
}

export function grantForm(api: Api, onGranted: () => void, ids: HTMLDataListElement): HTMLElement {
  const user = h("input", { id: "grant-user", name: "grant-user", required: true, maxlength: "128", autocomplete: "off", spellcheck: "false", list: ids.id });
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
    h("label", { for: "grant-user" }, "User id"), user, ids,
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
      error.textContent = errorText(caught);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** An error as a person reads it, with the request id to quote when the server gave one. */
export function errorText(caught: unknown): string {
  if (caught instanceof ApiError && caught.requestId) return `${caught.message} (request id ${caught.requestId})`;
  return caught instanceof Error ? caught.message : String(caught);
}

/** A user's role as a select and a Save button, both named after the user. */
function roleEditor(api: Api, user: admin.User, said: (text: string, failed: boolean) => void): HTMLElement {
  const who = user.email || user.id;
  const select = h("select", { name: "role", "aria-label": `Role of ${who}`, "data-user-id": user.id },
    ...admin.ROLES.map((r) => h("option", { value: r }, r)));
  select.value = user.role;
  const save = h("button", { type: "button", class: "save-role", "aria-label": `Save role of ${who}` }, "Save");
  save.addEventListener("click", async () => {
    save.disabled = true;
    said("", false);
    try {
      const stored = await admin.setRole(api, user.id, select.value as admin.Role);
      user.role = stored.role;
      select.value = stored.role;
      select.closest("td")?.setAttribute("data-value", stored.role);
      said(`${who} is now ${stored.role}.`, false);
    } catch (caught) {
      said(errorText(caught), true);
    } finally {
      save.disabled = false;
    }
  });
  return h("div", { class: "role-edit" }, select, save);
}

export function usersList(api: Api, ids: HTMLDataListElement): { element: HTMLElement; refresh: () => Promise<void> } {
  const holder = scroller("Users, scrollable");
  const more = h("button", { type: "button", id: "users-more", hidden: true }, "Show more users");
  const status = h("p", { id: "users-status", role: "status", class: "meta" });
  const error = h("p", { id: "users-error", class: "error", role: "alert" });
  const said = (text: string, failed: boolean) => {
    status.textContent = failed ? "" : text;
    error.textContent = failed ? text : "";
  };
  let shown: admin.User[] = [];
  let cursor: string | null = null;
  const render = () => {
    ids.replaceChildren(...shown.map((u) => h("option", { value: u.id }, u.email || u.id)));
    holder.replaceChildren(
      dataTable("users", "Users and their roles", [
        { key: "id", title: "User id", value: (u: admin.User) => u.id },
        { key: "email", title: "Email", value: (u: admin.User) => u.email || "—" },
        { key: "role", title: "Role", value: (u: admin.User) => u.role, cell: (u: admin.User) => roleEditor(api, u, said) },
      ], shown),
    );
  };
  const page = async (first: boolean) => {
    try {
      const got = await admin.users(api, 50, first ? null : cursor);
      shown = first ? got.users : [...shown, ...got.users];
      cursor = got.next_cursor ?? null;
      more.hidden = !cursor;
      render();
    } catch (caught) {
      said(errorText(caught), true);
    }
  };
  more.addEventListener("click", () => void page(false));
  const element = h("section", { "aria-labelledby": "users-title" }, h("h3", { id: "users-title" }, "Users"), holder, more, status, error);
  return { element, refresh: () => page(true) };
}
