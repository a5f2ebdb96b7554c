import { describe, expect, it } from "vitest";
import { bars, columns, niceMax } from "../src/charts/scale";

describe("niceMax", () => {
  it("rounds up to 1, 2 or 5 times a power of ten", () => {
    expect([0.7, 1, 1.2, 3, 7, 10, 11, 180, 0.013].map(niceMax)).toEqual([1, 1, 2, 5, 10, 10, 20, 200, 0.02]);
  });

  it("gives 1 for nothing, a negative or a non-number", () => {
    expect([0, -3, Number.NaN, Number.POSITIVE_INFINITY].map(niceMax)).toEqual([1, 1, 1, 1]);
  });
});

describe("columns", () => {
  it("fills the frame side by side, each as tall as its share of the top", () => {
    const rects = columns([{ label: "a", value: 5 }, { label: "b", value: 10 }], { width: 200, height: 100 });
    expect(rects.map((r) => [r.label, r.height, r.y])).toEqual([["a", 50, 50], ["b", 100, 0]]);
    expect(rects[0].x).toBeCloseTo(10);
    expect(rects[1].x).toBeCloseTo(110);
    expect(rects[0].width).toBeCloseTo(80);
  });

  it("draws a negative as nothing and an empty series as no columns", () => {
    expect(columns([{ label: "a", value: -1 }], { width: 10, height: 10 })[0].height).toBe(0);
    expect(columns([], { width: 10, height: 10 })).toEqual([]);
  });
});

describe("bars", () => {
  it("stacks rows and scales lengths to the top", () => {
    const rects = bars([{ label: "x", value: 1 }, { label: "y", value: 4 }], { width: 100, height: 0 }, 20);
    expect(rects.map((r) => r.width)).toEqual([20, 80]);
    expect(rects[1].y - rects[0].y).toBe(20);
  });
});
