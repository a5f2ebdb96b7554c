import "./style.css";
import { Api } from "./api/client";
import { ApiError } from "./api/problems";
import { clerkConfig, devAuth, type Auth } from "./auth/auth";
import { h } from "./dom";
import { adminView } from "./views/admin";
import { chatView } from "./views/chat";
import { historyView, showBalance } from "./views/credits";
import { imagesView } from "./views/images";
import { navigation, type Navigation, type Section } from "./views/nav";

const main = document.getElementById("main")!;
const balance = document.getElementById("balance")!;
const who = document.getElementById("who")!;
const signOut = document.getElementById("sign-out") as HTMLButtonElement;
let sections: Navigation | null = null;

function start(auth: Auth): void {
  const api = new Api(() => auth.token());

  const showSignIn = (): void => {
    balance.hidden = true;
    who.hidden = true;
    signOut.hidden = true;
    sections?.close();
    sections = null;
    main.replaceChildren(auth.view(api, showConsole));
  };

  // Signed out by the user, or refused (401) by the server: forget the session, then sign in again.
  const leave = (): void => {
    void auth.signOut().catch(() => undefined).finally(showSignIn);
  };

  function showConsole(): void {
    signOut.hidden = false;
    const history = historyView(api);
    // Credits held by work just stopped are settled a moment later: look again until none are.
    const refresh = async (again = 5) => {
      try {
        const now = await api.balance();
        showBalance(balance, now);
        if (now.reserved > 0 && again > 0) setTimeout(() => void refresh(again - 1), 1000);
        await history.refresh();
      } catch (caught) {
        if (caught instanceof ApiError && caught.kind === "unauthenticated") leave();
      }
    };
    const changed = () => void refresh();
    const images = imagesView(api, changed, leave);
    const views: Section[] = [
      { id: "chat", title: "Chat", element: chatView(api, changed, leave), focus: "prompt" },
      { id: "images", title: "Images", element: images.element, focus: "image-prompt", onShow: () => void images.refresh() },
      { id: "credits", title: "Credits", element: history.element },
    ];
    main.replaceChildren(...views.map((s) => s.element));
    const nav = (sections = navigation(views, main));
    void refresh();
    // Who the server says this is; the admin section only for an admin (the others get 403 anyway).
    void api.me().then(
      (me) => {
        if (sections !== nav) return;
        who.textContent = me.email ?? me.id;
        who.hidden = false;
        if (me.role === "admin") nav.add({ id: "admin", title: "Admin", element: adminView(api, changed) });
      },
      () => undefined, // the balance's refresh reports an expired session
    );
  }

  signOut.addEventListener("click", leave);
  if (auth.signedIn()) showConsole();
  else showSignIn();
}

const clerk = clerkConfig();
if (clerk) {
  // clerk-js is loaded only where Clerk signs in (its own chunk, from this origin).
  import("./auth/clerk")
    .then(({ clerkAuth }) => clerkAuth(clerk))
    .then(start, (caught: unknown) => {
      main.replaceChildren(
        h("p", { class: "card error", role: "alert" }, `Sign-in is unavailable right now: ${caught instanceof Error ? caught.message : String(caught)}`),
      );
    });
} else {
  start(devAuth());
}
