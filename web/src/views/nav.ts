// The console's sections as tabs of links (#chat, #images, ...): one shown at a time, the
// address says which, so Back and a reload keep the place.

import { h } from "../dom";

export interface Section {
  id: string;
  title: string;
  element: HTMLElement;
  /** The control to put the keyboard on when the section opens. */
  focus?: string;
  /** Called each time the section opens (to show what changed elsewhere meanwhile). */
  onShow?: () => void;
}

export interface Navigation {
  add(section: Section): void;
  close(): void;
}

export function navigation(sections: Section[], main: HTMLElement): Navigation {
  const list = h("ul", {});
  const nav = h("nav", { id: "sections", class: "sections", "aria-label": "Sections" }, list);
  main.before(nav);
  const links = new Map<string, HTMLAnchorElement>();
  let shown: Section | undefined;

  const show = (moved: boolean) => {
    const wanted = location.hash.slice(1);
    const current = sections.find((s) => s.id === wanted) ?? sections[0];
    for (const section of sections) {
      section.element.hidden = section !== current;
      const link = links.get(section.id)!;
      if (section === current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (current !== shown) current.onShow?.();
    shown = current;
    document.title = `${current.title} · AI SaaS console`;
    if (moved) (document.getElementById(current.focus ?? "") ?? current.element.querySelector("h2"))?.focus();
  };

  const add = (section: Section) => {
    if (!sections.includes(section)) {
      sections.push(section);
      main.append(section.element);
    }
    const link = h("a", { href: `#${section.id}`, id: `to-${section.id}` }, section.title);
    links.set(section.id, link);
    list.append(h("li", {}, link));
  };
  for (const section of sections) add(section);
  const moved = () => show(true);
  window.addEventListener("hashchange", moved);
  show(true);
  return {
    add(section: Section) {
      add(section);
      show(false);
    },
    close() {
      window.removeEventListener("hashchange", moved);
      nav.remove();
    },
  };
}
