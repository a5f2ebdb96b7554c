// The gallery's images as pages arrive: newest first, each image once, with the cursor of
// the next page. An image made here is put first; one deleted here is taken out.

import type { Image, ImagePage } from "./images";

export class Gallery {
  private items: Image[] = [];
  private cursor: string | null = null;
  private loaded = false;

  get images(): readonly Image[] {
    return this.items;
  }

  /** The cursor to ask for the next page with; null when there is none. */
  get next(): string | null {
    return this.cursor;
  }

  get hasMore(): boolean {
    return !this.loaded || this.cursor !== null;
  }

  /** A fresh first page replaces everything. */
  reset(page: ImagePage): void {
    this.items = [];
    this.cursor = null;
    this.loaded = false;
    this.append(page);
  }

  /** The next page: images already shown (one made here since) are not repeated. */
  append(page: ImagePage): void {
    const seen = new Set(this.items.map((i) => i.id));
    this.items = [...this.items, ...page.images.filter((i) => !seen.has(i.id))];
    this.cursor = page.nextCursor ?? null;
    this.loaded = true;
  }

  prepend(image: Image): void {
    this.items = [image, ...this.items.filter((i) => i.id !== image.id)];
  }

  remove(imageId: string): void {
    this.items = this.items.filter((i) => i.id !== imageId);
  }
}
