import { ClerkAPIResponseError } from "@clerk/clerk-js/no-rhc";
import { describe, expect, it } from "vitest";
import { clerkConfig } from "../src/auth/auth";
import { clerkErrorText } from "../src/auth/clerk";

/** A page with these <meta> tags, as far as clerkConfig looks at one. */
function page(meta: Record<string, string>): Document {
  return {
    querySelector: (selector: string) => {
      const name = /meta\[name="([^"]+)"\]/.exec(selector)?.[1] ?? "";
      return name in meta ? { content: meta[name] } : null;
    },
  } as unknown as Document;
}

describe("clerkConfig", () => {
  it("is undefined where the page names no publishable key: development sign-in", () => {
    expect(clerkConfig(page({}))).toBeUndefined();
    expect(clerkConfig(page({ "aisaas:clerk-publishable-key": "" }))).toBeUndefined();
  });

  it("reads the publishable key and the Frontend API proxy the server names", () => {
    expect(clerkConfig(page({ "aisaas:clerk-publishable-key": "pk_test_abc" }))).toEqual({ publishableKey: "pk_test_abc" });
    const both = { "aisaas:clerk-publishable-key": "pk_live_abc", "aisaas:clerk-proxy-url": "https://app.example.com/__clerk" };
    expect(clerkConfig(page(both))).toEqual({ publishableKey: "pk_live_abc", proxyUrl: "https://app.example.com/__clerk" });
  });
});

describe("clerkErrorText", () => {
  it("gives the API's long message, else the error's own", () => {
    const refused = new ClerkAPIResponseError("Unprocessable", {
      status: 422,
      data: [{ code: "form_password_incorrect", message: "Password is incorrect.", long_message: "Password is incorrect. Try again." }],
    });
    expect(clerkErrorText(refused)).toBe("Password is incorrect. Try again.");
    expect(clerkErrorText(new Error("offline"))).toBe("offline");
    expect(clerkErrorText("odd")).toBe("odd");
  });
});
