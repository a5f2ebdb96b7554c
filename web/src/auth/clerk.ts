// Clerk sign-in with clerk-js, bundled (its build without remotely hosted code: it loads no
// script from anywhere). An email and password form drives the SDK's sign-in (create, then the
// password as first factor when asked), `setActive` makes the session current, and each API call
// carries `session.getToken()`, which clerk-js keeps fresh.

import { Clerk, isClerkAPIResponseError } from "@clerk/clerk-js/no-rhc";
import type { Api } from "../api/client";
import { h } from "../dom";
import type { Auth, ClerkConfig } from "./auth";

/** A Clerk error as a person reads it: the API's own long message when it gave one. */
export function clerkErrorText(caught: unknown): string {
  if (isClerkAPIResponseError(caught)) {
    const first = caught.errors[0];
    return first?.longMessage || first?.message || caught.message;
  }
  return caught instanceof Error ? caught.message : String(caught);
}

export async function clerkAuth(config: ClerkConfig): Promise<Auth> {
  const clerk = new Clerk(config.publishableKey, config.proxyUrl ? { proxyUrl: config.proxyUrl } : undefined);
  await clerk.load();
  return {
    token: async () => (clerk.session ? await clerk.session.getToken() : null),
    signedIn: () => Boolean(clerk.session),
    // With a callback clerk-js runs it instead of navigating to its after-sign-out URL: the console
    // shows its sign-in form itself, and no navigation races whatever the page does next.
    signOut: () => clerk.signOut(() => undefined),
    view: (_api: Api, onSignedIn: () => void) => clerkSignInView(clerk, onSignedIn),
  };
}

export function clerkSignInView(clerk: Clerk, onSignedIn: () => void): HTMLElement {
  const email = h("input", { id: "email", name: "email", type: "email", required: true, autocomplete: "username" });
  const password = h("input", { id: "password", name: "password", type: "password", required: true, autocomplete: "current-password" });
  const error = h("p", { id: "signin-error", class: "error", role: "alert" });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title" },
    h("h2", { id: "signin-title" }, "Sign in"),
    h("label", { for: "email" }, "Email"),
    email,
    h("label", { for: "password" }, "Password"),
    password,
    submit,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      const signIn = clerk.client?.signIn;
      if (!signIn) throw new Error("Sign-in is not available right now. Please reload the page.");
      let attempt = await signIn.create({ identifier: email.value.trim(), password: password.value });
      if (attempt.status === "needs_first_factor") {
        attempt = await attempt.attemptFirstFactor({ strategy: "password", password: password.value });
      }
      if (attempt.status !== "complete" || !attempt.createdSessionId) {
        throw new Error("This account needs a further sign-in step, which the console does not offer yet.");
      }
      await clerk.setActive({ session: attempt.createdSessionId });
      password.value = "";
      onSignedIn();
    } catch (caught) {
      error.textContent = clerkErrorText(caught);
    } finally {
      submit.disabled = false;
    }
  });
  queueMicrotask(() => email.focus());
  return form;
}
