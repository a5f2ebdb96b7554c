import "./style.css";
import { Api } from "./api/client";
import { ApiError } from "./api/problems";
import { session } from "./session";
import { chatView } from "./views/chat";
import { historyView, showBalance } from "./views/credits";
import { signInView } from "./views/signin";

const main = document.getElementById("main")!;
const balance = document.getElementById("balance")!;
const signOut = document.getElementById("sign-out") as HTMLButtonElement;
const api = new Api(() => session.token());

function showSignIn(): void {
  session.signOut();
  balance.hidden = true;
  signOut.hidden = true;
  main.replaceChildren(
    signInView(api, (token) => {
      session.signIn(token);
      showConsole();
    }),
  );
}

function showConsole(): void {
  signOut.hidden = false;
  const history = historyView();
  // Credits held by an answer just stopped are settled a moment later: look again until none are.
  const refresh = async (again = 5) => {
    try {
      const now = await api.balance();
      showBalance(balance, now);
      if (now.reserved > 0 && again > 0) setTimeout(() => void refresh(again - 1), 1000);
      await history.refresh(api);
    } catch (caught) {
      if (caught instanceof ApiError && caught.kind === "unauthenticated") showSignIn();
    }
  };
  main.replaceChildren(chatView(api, () => void refresh(), showSignIn), history.element);
  void refresh();
  document.getElementById("prompt")?.focus();
}

signOut.addEventListener("click", showSignIn);
if (session.token()) showConsole();
else showSignIn();
