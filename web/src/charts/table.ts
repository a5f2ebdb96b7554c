// A data table: a caption, a header row, one row per item; each cell keeps its exact value
// in data-value beside the text people read, so a test can compare numbers, not formatting.

import { h } from "../dom";

export interface Column<T> {
  key: string;
  title: string;
  value: (item: T) => string | number;
  format?: (value: number) => string;
  /** What the cell shows instead of the text (controls, say); data-value keeps the value. */
  cell?: (item: T) => Node;
}

export function dataTable<T>(id: string, caption: string, columns: Column<T>[], rows: T[]): HTMLTableElement {
  const head = h("tr", {}, ...columns.map((c) => h("th", { scope: "col", class: c.format ? "num" : undefined }, c.title)));
  const body = rows.map((item) =>
    h(
      "tr",
      {},
      ...columns.map((c, i) => {
        const value = c.value(item);
        const text = typeof value === "number" && c.format ? c.format(value) : String(value);
        const attrs = { "data-key": c.key, "data-value": String(value) };
        const shown = c.cell ? c.cell(item) : text;
        return i ? h("td", { ...attrs, class: c.format ? "num" : undefined }, shown) : h("th", { ...attrs, scope: "row" }, shown);
      }),
    ),
  );
  const empty = h("tr", {}, h("td", { colspan: String(columns.length) }, "Nothing in this period."));
  return h(
    "table",
    { id, "data-table": id },
    h("caption", {}, caption),
    h("thead", {}, head),
    h("tbody", {}, ...(rows.length ? body : [empty])),
  );
}

/** A wide table's frame: it scrolls sideways on a narrow screen, and the keyboard can focus it
 * to scroll it too. */
export function scroller(label: string, ...children: Node[]): HTMLDivElement {
  return h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": label }, ...children);
}
