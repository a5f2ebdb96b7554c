// Chart geometry, free of the DOM: a rounded top for the value axis, and the rectangles of
// column charts (a series over days) and bar charts (categories, one row each).

export interface Datum {
  label: string;
  value: number;
}

export interface Rect extends Datum {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The smallest 1, 2 or 5 times a power of ten at or above `max` (1 when there is nothing). */
export function niceMax(max: number): number {
  if (!(max > 0) || !Number.isFinite(max)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max * (1 - 1e-12)) return step * power;
  return 10 * power;
}

export interface Frame {
  width: number;
  height: number;
}

/** Vertical columns side by side filling `frame`, each as tall as its share of the top. */
export function columns(data: Datum[], frame: Frame, top = niceMax(Math.max(0, ...data.map((d) => d.value)))): Rect[] {
  if (data.length === 0) return [];
  const slot = frame.width / data.length;
  const width = Math.max(1, slot * 0.8);
  return data.map((d, i) => {
    const height = (Math.max(0, d.value) / top) * frame.height;
    return { ...d, x: i * slot + (slot - width) / 2, y: frame.height - height, width, height };
  });
}

/** Horizontal bars one under another, `row` apart, each as long as its share of the top. */
export function bars(data: Datum[], frame: Frame, row: number, top = niceMax(Math.max(0, ...data.map((d) => d.value)))): Rect[] {
  const height = row * 0.7;
  return data.map((d, i) => ({
    ...d,
    x: 0,
    y: i * row + (row - height) / 2,
    width: (Math.max(0, d.value) / top) * frame.width,
    height,
  }));
}
