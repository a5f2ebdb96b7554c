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
  const refresh = async () => {
    try {
      showBalance(balance, await api.balance());
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
