// The signed-in user's token, kept for this browser tab only.

const KEY = "aisaas.token";

/** The `role` claim a token asserts, if any. Read without verifying: it only decides what to
 * show; the server checks the signature and refuses (403) whatever the role does not allow. */
export function claimedRole(token: string | null): string | undefined {
  const payload = token?.split(".")[1];
  if (!payload) return undefined;
  try {
    const text = atob(payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "="));
    const claims: unknown = JSON.parse(text);
    const role = claims && typeof claims === "object" ? (claims as Record<string, unknown>).role : undefined;
    return typeof role === "string" ? role : undefined;
  } catch {
    return undefined;
  }
}

export const session = {
  token(): string | null {
    return sessionStorage.getItem(KEY);
  },
  signIn(token: string): void {
    sessionStorage.setItem(KEY, token);
  },
  signOut(): void {
    sessionStorage.removeItem(KEY);
  },
};
