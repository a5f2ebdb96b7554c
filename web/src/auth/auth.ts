// Who signs in, and with what: Clerk when the server names a publishable key (in <meta> tags
// of the page it serves), otherwise the development sign-in. Either gives the API its bearer
// token, fresh for each call.

import type { Api } from "../api/client";
import { signInView } from "../views/signin";
import { session } from "./session";

export interface Auth {
  /** The bearer token for the next call; null when signed out. */
  token(): Promise<string | null>;
  signedIn(): boolean;
  signOut(): Promise<void>;
  /** The sign-in form; `onSignedIn` runs once a token can be had. */
  view(api: Api, onSignedIn: () => void): HTMLElement;
}

export interface ClerkConfig {
  publishableKey: string;
  proxyUrl?: string;
}

/** What the page says about Clerk; undefined where it names no publishable key. */
export function clerkConfig(page: Document = document): ClerkConfig | undefined {
  const meta = (name: string) => page.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content || undefined;
  const publishableKey = meta("aisaas:clerk-publishable-key");
  if (!publishableKey) return undefined;
  const proxyUrl = meta("aisaas:clerk-proxy-url");
  return proxyUrl ? { publishableKey, proxyUrl } : { publishableKey };
}

/** Development sign-in: a development token, kept for this tab only. */
export function devAuth(): Auth {
  return {
    token: () => Promise.resolve(session.token()),
    signedIn: () => session.token() !== null,
    signOut: () => Promise.resolve(session.signOut()),
    view: (api, onSignedIn) =>
      signInView(api, (token) => {
        session.signIn(token);
        onSignedIn();
      }),
  };
}
