// Images: a prompt and a size become a job whose progress shows live, then the picture joins
// the gallery (newest first, a page at a time), where it can be opened larger or deleted.

import { Gallery } from "../api/gallery";
import { SIZES, createImage, deleteImage, followJob, listImages, type Image, type ImageJob } from "../api/images";
import type { Api } from "../api/client";
import { ApiError } from "../api/problems";
import { h } from "../dom";

const PAGE = 12;
const STAGES: Record<string, string> = {
  queued: "Waiting for a free artist…",
  generating: "Drawing…",
  storing: "Storing the picture…",
  saving: "Saving to your gallery…",
  charging: "Charging credits…",
  done: "Done.",
  failed: "Failed.",
};

function errorText(caught: unknown): string {
  return caught instanceof Error ? caught.message : String(caught);
}

/** Asks before a picture is deleted: a modal dialog whose Cancel (or Escape) keeps it. Focus
 * starts on Cancel, and goes back to the Delete button that asked once it closes. */
function deleteConfirmation(): { element: HTMLDialogElement; ask: (title: string) => Promise<boolean> } {
  const text = h("p", { id: "confirm-delete-text" });
  const cancel = h("button", { type: "button", id: "confirm-delete-cancel", autofocus: true }, "Cancel");
  const confirm = h("button", { type: "button", id: "confirm-delete-ok", class: "danger" }, "Delete");
  const element = h("dialog", { id: "confirm-delete", class: "viewer confirm", "aria-labelledby": "confirm-delete-title", "aria-describedby": "confirm-delete-text" },
    h("h3", { id: "confirm-delete-title" }, "Delete this image?"), text, h("div", { class: "actions" }, cancel, confirm));
  cancel.addEventListener("click", () => element.close("cancel"));
  confirm.addEventListener("click", () => element.close("delete"));
  const ask = (title: string) =>
    new Promise<boolean>((resolve) => {
      text.textContent = `“${title}” will be removed from your gallery for good. Its credits are not refunded.`;
      element.returnValue = "";
      element.addEventListener("close", () => resolve(element.returnValue === "delete"), { once: true });
      element.showModal();
    });
  return { element, ask };
}

export function imagesView(
  api: Api,
  onChanged: () => void,
  onUnauthenticated: () => void,
): { element: HTMLElement; refresh: () => Promise<void> } {
  const gallery = new Gallery();
  const prompt = h("textarea", { id: "image-prompt", name: "image-prompt", rows: "2", required: true, maxlength: "4000" });
  const size = h("select", { id: "image-size", name: "image-size" }, ...SIZES.map((s) => h("option", { value: s }, s.replace("x", " × "))));
  size.value = "512x512";
  const generate = h("button", { type: "submit", id: "generate" }, "Generate");
  const error = h("p", { id: "image-error", class: "error", role: "alert" });
  const stage = h("p", { id: "image-stage", class: "meta" });
  const bar = h("progress", { id: "image-progress", max: "100", value: "0", "aria-labelledby": "image-stage" });
  const job = h("div", { id: "image-job", class: "job", role: "status", hidden: true }, stage, bar);
  const grid = h("ul", { id: "gallery", class: "gallery", "aria-label": "Your images, newest first" });
  const empty = h("p", { id: "gallery-empty", class: "hint", hidden: true }, "No images yet.");
  const more = h("button", { type: "button", id: "gallery-more", hidden: true }, "Show older images");
  const big = h("img", { id: "viewer-image", alt: "" });
  const caption = h("p", { id: "viewer-caption" });
  const close = h("button", { type: "button", id: "viewer-close" }, "Close");
  const viewer = h("dialog", { id: "viewer", class: "viewer", "aria-labelledby": "viewer-caption" }, caption, big, close);
  close.addEventListener("click", () => viewer.close());
  const confirmer = deleteConfirmation();

  const fail = (caught: unknown) => {
    error.textContent = errorText(caught);
    if (caught instanceof ApiError && caught.kind === "unauthenticated") onUnauthenticated();
  };

  const show = (focus?: string) => {
    grid.replaceChildren(...gallery.images.map(tile));
    empty.hidden = gallery.images.length > 0;
    more.hidden = !gallery.next;
    if (focus) (grid.querySelector<HTMLElement>(`[data-focus="${focus}"]`) ?? prompt).focus();
  };

  function tile(image: Image, index: number): HTMLElement {
    const title = image.name || image.prompt;
    const open = h("button", { type: "button", class: "open", "aria-label": `Open ${title}`, "data-focus": `open-${index}` },
      h("img", { src: image.url, alt: image.prompt, loading: "lazy", width: "160", height: "160" }));
    const remove = h("button", { type: "button", class: "delete", "aria-label": `Delete ${title}` }, "Delete");
    open.addEventListener("click", () => {
      big.src = image.url;
      big.alt = image.prompt;
      caption.textContent = `${title} · ${image.size} · ${image.cost} credits`;
      viewer.showModal();
    });
    remove.addEventListener("click", async () => {
      if (!(await confirmer.ask(title))) return;
      remove.disabled = true;
      error.textContent = "";
      try {
        await deleteImage(api, image.id);
        gallery.remove(image.id);
        // Keep the keyboard where it was: on the next picture, or the one before.
        show(`open-${Math.min(index, gallery.images.length - 1)}`);
        onChanged();
      } catch (caught) {
        remove.disabled = false;
        fail(caught);
      }
    });
    return h("li", { class: "tile", "data-image-id": image.id },
      h("figure", {}, open, h("figcaption", {}, title)), remove);
  }

  const load = async (first: boolean) => {
    try {
      const page = await listImages(api, PAGE, first ? null : gallery.next);
      if (first) gallery.reset(page);
      else gallery.append(page);
      show();
    } catch (caught) {
      fail(caught);
    }
  };
  more.addEventListener("click", () => void load(false));

  const progress = (state: ImageJob) => {
    job.hidden = false;
    job.dataset.status = state.status;
    stage.dataset.stage = state.stage;
    bar.value = state.progress;
    stage.textContent = `${STAGES[state.stage] ?? state.stage} ${state.progress}%`;
  };

  const form = h(
    "form",
    { class: "composer", "aria-label": "Generate an image" },
    h("label", { for: "image-prompt" }, "Image prompt"),
    prompt,
    h("label", { for: "image-size" }, "Size"),
    size,
    h("div", { class: "actions" }, generate),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (!text || generate.disabled) return;
    generate.disabled = true;
    error.textContent = "";
    try {
      // One key per press: a retried request finds the same job and is not charged twice.
      let state = await createImage(api, { prompt: text, size: size.value as (typeof SIZES)[number] }, crypto.randomUUID());
      progress(state);
      onChanged(); // the cost is held now
      for await (const update of followJob(api, state.id)) {
        state = update;
        progress(state);
      }
      if (state.status === "failed") {
        error.textContent = `The image could not be made: ${state.error?.detail ?? "unknown error"}. Nothing was charged.`;
      } else {
        prompt.value = "";
        await load(true);
      }
    } catch (caught) {
      fail(caught);
    } finally {
      generate.disabled = false;
      onChanged();
    }
  });

  const element = h(
    "section",
    { class: "card images", "aria-labelledby": "images-title" },
    h("h2", { id: "images-title", tabindex: "-1" }, "Images"),
    form,
    job,
    error,
    h("h3", {}, "Gallery"),
    grid,
    empty,
    more,
    viewer,
    confirmer.element,
  );
  return { element, refresh: () => load(true) };
}
