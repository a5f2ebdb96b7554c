// Development sign-in: an email and a role, exchanged for a development token.

import type { Api } from "../api/client";
import { ApiError } from "../api/problems";
import { h } from "../dom";

export function signInView(api: Api, onSignedIn: (token: string) => void): HTMLElement {
  const email = h("input", { id: "email", name: "email", type: "email", required: true, autocomplete: "email" });
  email.value = "a@example.com";
  const role = h(
    "select",
    { id: "role", name: "role" },
    h("option", { value: "user" }, "user"),
    h("option", { value: "subscriber" }, "subscriber"),
    h("option", { value: "admin" }, "admin"),
  );
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title" },
    h("h2", { id: "signin-title" }, "Sign in (development)"),
    h("p", { class: "hint" }, "A development token for any email and role; not available in production."),
    h("label", { for: "email" }, "Email"),
    email,
    h("label", { for: "role" }, "Role"),
    role,
    submit,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      onSignedIn(await api.devToken(email.value.trim(), role.value));
    } catch (caught) {
      error.textContent =
        caught instanceof ApiError && caught.status === 404
          ? "Development sign-in is not available on this server."
          : caught instanceof Error
            ? caught.message
            : String(caught);
    } finally {
      submit.disabled = false;
    }
  });
  queueMicrotask(() => email.focus());
  return form;
}
