// Charts as inline SVG: no library, nothing to load, nothing the page's CSP forbids. The
// picture is for the eye (aria-hidden); the same numbers are in a table for everyone else.

import { h } from "../dom";
import { bars, columns, niceMax, type Datum } from "./scale";
import { dataTable } from "./table";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 400;
const PLOT = 140; // the column chart's plot height
const AXIS = 72; // room for the value labels left of a column chart
const ROW = 26;
const LABEL = 130; // room for the category labels left of a bar chart

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, ...children: (Node | string)[]): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

export interface ChartSpec {
  id: string;
  title: string;
  data: Datum[];
  format: (value: number) => string;
  /** columns: a series over time; bars: categories. */
  kind: "columns" | "bars";
}

function columnChart(spec: ChartSpec): SVGSVGElement {
  const top = niceMax(Math.max(0, ...spec.data.map((d) => d.value)));
  const plot = { width: WIDTH - AXIS, height: PLOT };
  const rects = columns(spec.data, plot, top).map((r) =>
    svg("rect", { x: AXIS + r.x, y: 10 + r.y, width: r.width, height: Math.max(r.height, r.value > 0 ? 1 : 0), class: "bar" },
      svg("title", {}, `${r.label}: ${spec.format(r.value)}`)),
  );
  const first = spec.data[0]?.label ?? "";
  const last = spec.data[spec.data.length - 1]?.label ?? "";
  return svg(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${PLOT + 36}`, class: "chart", "aria-hidden": "true", focusable: "false" },
    svg("text", { x: AXIS - 4, y: 14, "text-anchor": "end", class: "tick" }, spec.format(top)),
    svg("text", { x: AXIS - 4, y: PLOT + 10, "text-anchor": "end", class: "tick" }, "0"),
    svg("line", { x1: AXIS, y1: PLOT + 10, x2: WIDTH, y2: PLOT + 10, class: "axis" }),
    ...rects,
    svg("text", { x: AXIS, y: PLOT + 28, class: "tick" }, first),
    svg("text", { x: WIDTH, y: PLOT + 28, "text-anchor": "end", class: "tick" }, first === last ? "" : last),
  );
}

function barChart(spec: ChartSpec): SVGSVGElement {
  const plot = { width: WIDTH - LABEL - 70, height: ROW * spec.data.length };
  const rows = bars(spec.data, plot, ROW).flatMap((r) => [
    svg("text", { x: LABEL - 6, y: r.y + r.height / 2 + 5, "text-anchor": "end", class: "tick" },
      r.label.length > 18 ? r.label.slice(0, 17) + "…" : r.label),
    svg("rect", { x: LABEL, y: r.y, width: Math.max(r.width, r.value > 0 ? 1 : 0), height: r.height, class: "bar" },
      svg("title", {}, `${r.label}: ${spec.format(r.value)}`)),
    svg("text", { x: LABEL + r.width + 6, y: r.y + r.height / 2 + 5, class: "tick" }, spec.format(r.value)),
  ]);
  return svg("svg", { viewBox: `0 0 ${WIDTH} ${Math.max(ROW, plot.height)}`, class: "chart", "aria-hidden": "true", focusable: "false" }, ...rows);
}

/** A figure: its title, the picture, and the numbers as a table (for assistive technology: a
 * wrapper clips it, since a table is never narrower than its content). */
export function chart(spec: ChartSpec): HTMLElement {
  const picture = spec.data.length === 0 ? h("p", { class: "hint" }, "Nothing in this period.")
    : spec.kind === "columns" ? columnChart(spec) : barChart(spec);
  const table = dataTable(spec.id, spec.title, [
    { key: "label", title: spec.kind === "columns" ? "Day" : "Name", value: (d: Datum) => d.label },
    { key: "value", title: spec.title, value: (d: Datum) => d.value, format: spec.format },
  ], spec.data);
  return h("figure", { class: "figure", "data-chart": spec.id }, h("figcaption", {}, spec.title), picture, h("div", { class: "sr-only" }, table));
}
