// Chat: a model picker, answers streamed piece by piece, a stop button and each answer's cost.

import type { Api, ChatMessage } from "../api/client";
import { ApiError } from "../api/problems";
import { h } from "../dom";

export function chatView(api: Api, onAnswered: () => void, onUnauthenticated: () => void): HTMLElement {
  const history: ChatMessage[] = [];
  const model = h("select", { id: "model", name: "model" });
  // The log role goes on a wrapper: on the list itself it would hide that the items are a list.
  const log = h("ol", { id: "conversation", class: "conversation" });
  const prompt = h("textarea", { id: "prompt", name: "prompt", rows: "3", required: true });
  const send = h("button", { type: "submit", id: "send" }, "Send");
  const stop = h("button", { type: "button", id: "stop", disabled: true }, "Stop");
  const error = h("p", { id: "chat-error", class: "error", role: "alert" });
  let running: AbortController | null = null;

  api.chatModels().then(
    (models) => {
      model.replaceChildren(...models.map((m) => h("option", { value: m.id }, `${m.id} (${m.owned_by})`)));
    },
    (caught: unknown) => {
      error.textContent = caught instanceof Error ? caught.message : String(caught);
    },
  );

  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  stop.addEventListener("click", () => running?.abort());

  const form = h(
    "form",
    { class: "composer", "aria-label": "Send a message" },
    h("label", { for: "model" }, "Model"),
    model,
    h("label", { for: "prompt" }, "Message"),
    prompt,
    h("div", { class: "actions" }, send, stop),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (!text || running) return;
    error.textContent = "";
    const question: ChatMessage = { role: "user", content: text };
    log.append(h("li", { class: "message user" }, h("span", { class: "who" }, "You"), h("p", {}, text)));
    const answer = h("p", { class: "answer" });
    const meta = h("p", { class: "meta" }, "Answering…");
    const item = h("li", { class: "message assistant", "aria-busy": "true" }, h("span", { class: "who" }, "Assistant"), answer, meta);
    log.append(item);
    item.scrollIntoView({ block: "end" });
    prompt.value = "";
    running = new AbortController();
    send.disabled = true;
    stop.disabled = false;
    try {
      for await (const event of api.chat([...history, question], model.value || undefined, running.signal)) {
        if (event.type === "chunk") {
          answer.textContent += event.delta;
        } else {
          const done = event.completion;
          answer.textContent = done.message.content;
          meta.textContent = `${done.model} · ${done.credits} credit${done.credits === 1 ? "" : "s"}${done.cached ? " · cached" : ""}`;
          meta.dataset.credits = String(done.credits);
          history.push(question, done.message);
        }
      }
    } catch (caught) {
      if (caught instanceof DOMException && caught.name === "AbortError") {
        meta.textContent = "Stopped. Only the part you received is charged.";
      } else {
        if (answer.textContent) {
          meta.textContent = "The answer was interrupted.";
        } else {
          item.previousElementSibling?.remove(); // the question: it is back in the box to send again
          item.remove();
          prompt.value = text;
        }
        error.textContent = caught instanceof Error ? caught.message : String(caught);
        if (caught instanceof ApiError && caught.kind === "unauthenticated") onUnauthenticated();
      }
    } finally {
      item.removeAttribute("aria-busy");
      running = null;
      send.disabled = false;
      stop.disabled = true;
      onAnswered();
    }
  });

  return h("section", { class: "card chat", "aria-labelledby": "chat-title" }, h("h2", { id: "chat-title", tabindex: "-1" }, "Chat"),
    h("div", { role: "log", "aria-live": "polite", "aria-label": "Conversation" }, log), error, form);
}
