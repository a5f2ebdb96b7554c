import { describe, expect, it } from "vitest";
import { Gallery } from "../src/api/gallery";
import type { Image } from "../src/api/images";

function image(id: string): Image {
  return {
    id,
    url: `/files/images/u/${id}.png`,
    name: id,
    prompt: id,
    model: "local",
    size: "256x256",
    cost: 5,
    width: 256,
    height: 256,
    jobId: id,
    createdAt: "2026-12-04T00:00:00Z",
  };
}

const ids = (g: Gallery) => g.images.map((i) => i.id);

describe("Gallery", () => {
  it("has more to load until a page comes without a cursor", () => {
    const gallery = new Gallery();
    expect(gallery.hasMore).toBe(true);
    gallery.reset({ images: [image("c"), image("b")], nextCursor: "2.b" });
    expect(gallery.next).toBe("2.b");
    expect(gallery.hasMore).toBe(true);
    gallery.append({ images: [image("a")], nextCursor: null });
    expect(ids(gallery)).toEqual(["c", "b", "a"]);
    expect(gallery.hasMore).toBe(false);
  });

  it("puts a new image first and does not repeat it when a later page holds it too", () => {
    const gallery = new Gallery();
    gallery.reset({ images: [image("b")], nextCursor: "1.b" });
    gallery.prepend(image("c"));
    gallery.prepend(image("c"));
    gallery.append({ images: [image("b"), image("a")], nextCursor: null });
    expect(ids(gallery)).toEqual(["c", "b", "a"]);
  });

  it("takes a deleted image out and starts over on reset", () => {
    const gallery = new Gallery();
    gallery.reset({ images: [image("b"), image("a")] });
    gallery.remove("b");
    expect(ids(gallery)).toEqual(["a"]);
    gallery.reset({ images: [image("z")], nextCursor: "9.z" });
    expect(ids(gallery)).toEqual(["z"]);
    expect(gallery.next).toBe("9.z");
  });
});
