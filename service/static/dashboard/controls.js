// The queue's controls: tabs with counts, filters and sort, the bulk bar, the "N new" pill.

import { getConfig } from "./api.js";
import { age, h } from "./dom.js";
import { FILTERS, REASONS, SORTS, TABS, state, tab, ui } from "./state.js";

const config = getConfig();

export function syncFilterInputs() {
  for (const name of [...FILTERS, "sort"]) {
    const input = ui.filterBox.querySelector(`[name=${name}]`);
    input.value = name === "sort" ? state.sort : state.filters[name] || "";
  }
}

export function filterBox(setFilters) {
  let timer = null;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const form = new FormData(ui.filterBox.querySelector("form"));
      state.sort = form.get("sort");
      setFilters(Object.fromEntries(FILTERS.map((f) => [f, String(form.get(f) || "").trim()]).map(([f, v]) => [f, f === "language" ? v.toLowerCase() : v])));
    }, 250);
  };
  const field = (name, label, control) => h("div", { class: "field" }, h("label", { for: `f-${name}`, text: label }), control);
  const select = (name, options, any) => h("select", { id: `f-${name}`, name, onchange: changed }, any ? h("option", { value: "", text: any }) : null, options.map(([value, text]) => h("option", { value, text })));
  const score = (name, placeholder) => h("input", { id: `f-${name}`, name, type: "number", min: 0, max: 1, step: 0.05, placeholder, inputmode: "decimal", oninput: changed });
  ui.articles = h("datalist", { id: "article-refs" });
  return h(
    "details",
    { class: "filters", open: window.matchMedia("(min-width: 760px)").matches },
    h("summary", { text: "Filters and sort" }),
    h(
      "form",
      { class: "filter-form", role: "search", onsubmit: (e) => e.preventDefault() },
      field("article", "Article", h("input", { id: "f-article", name: "article", list: "article-refs", placeholder: "any", autocomplete: "off", oninput: changed })),
      ui.articles,
      field("author", "Author id", h("input", { id: "f-author", name: "author", placeholder: "any", autocomplete: "off", oninput: changed })),
      field("language", "Language", h("input", { id: "f-language", name: "language", placeholder: "any", autocomplete: "off", maxlength: 3, size: 4, title: "A language code such as fr", oninput: changed })),
      field("reason", "Reason", select("reason", REASONS.map((r) => [r, r.replace(/_/g, " ")]), "any")),
      field("label", "Score of", select("label", config.labels.map((l) => [l, l.replace(/_/g, " ")]), "highest label")),
      h("div", { class: "field range" }, h("span", { class: "label", id: "score-range", text: "Score range" }), h("div", { class: "pair", role: "group", "aria-labelledby": "score-range" }, score("min_score", "0"), h("span", { text: "–" }), score("max_score", "1"))),
      field("sort", "Sort", select("sort", SORTS)),
      h("button", { type: "button", class: "btn small ghost", text: "Clear", onclick: () => { state.sort = "created"; setFilters({}); } }),
    ),
  );
}

export function drawTabs() {
  const counts = state.counts || {};
  for (const t of TABS) {
    const button = ui.tabs.querySelector(`[data-tab="${t.id}"]`);
    button.setAttribute("aria-selected", String(t.id === state.tab));
    button.tabIndex = t.id === state.tab ? 0 : -1;
    const badge = button.querySelector(".count");
    const n = counts[t.id];
    badge.textContent = typeof n === "number" ? String(n) : "";
    badge.hidden = typeof n !== "number";
    const extra = button.querySelector(".extra");
    const oldest = t.id === "pending" ? counts.oldest_pending_s : t.id === "held" ? counts.oldest_held_s : null;
    extra.textContent = typeof oldest === "number" && counts[t.id] ? `oldest ${age(oldest)}` : "";
  }
  const held = counts.held;
  document.title = `${typeof held === "number" && held ? `(${held}) ` : ""}Queue · ${config.site_name} · Civility`;
}

export function drawBulkBar() {
  const n = state.allMatching ? null : state.selected.size;
  ui.selectPage.checked = state.allMatching || (state.entries.length > 0 && state.entries.every((e) => state.selected.has(e.item.id)));
  ui.selectPage.indeterminate = !state.allMatching && n > 0 && !ui.selectPage.checked;
  ui.selection.textContent = state.allMatching ? `All comments matching this filter (${tab().label.toLowerCase()}) are selected` : n ? `${n} selected` : "None selected";
  ui.allMatching.textContent = state.allMatching ? "Clear selection" : "Select all matching this filter";
  for (const button of ui.bulkActions) button.disabled = !state.allMatching && !n;
  ui.undo.disabled = !state.lastBulk;
  ui.undo.title = state.lastBulk ? `Undo: ${state.lastBulk.summary}` : "No bulk action to undo";
  ui.bulkbar.classList.toggle("active", Boolean(state.allMatching || n));
}

export function drawPill() {
  const n = state.waiting.size;
  ui.pill.hidden = !n;
  ui.pill.textContent = `${n} new comment${n === 1 ? "" : "s"} — show (n)`;
}
