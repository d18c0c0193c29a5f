// The queue view: tabs, cards, keyboard, live updates; bulk.js and filters.js do the rest.

import { api } from "./api.js";
import { append, clear, h, toast } from "./dom.js";
import { renderCard } from "./cards.js";
import { bulk, hooks, rememberBulk, undoLast } from "./bulk.js";
import { drawBulkBar, drawPill, drawTabs, filterBox, syncFilterInputs } from "./controls.js";
import { openAuthor, openHistory, pickReason, showHelp } from "./panels.js";
import {
  PAGE,
  PAGE_MAX,
  POLL_MS,
  TABS,
  VERBS,
  compare,
  currentIndex,
  entryOf,
  fetchPage,
  filterParams,
  readHash,
  shortcutMode,
  state,
  tab,
  ui,
  writeHash,
} from "./state.js";

// --- rendering -------------------------------------------------------------------------

function handlersFor(entry) {
  return {
    decide: (decision) => act(entry, decision),
    history: () => openHistory(entry.item),
    author: () => authorPanel(entry),
    select: (checked) => select(entry.item.id, checked),
    focus: () => setCurrent(entry.item.id, { focus: true }),
    filterAuthor: () => setFilters({ ...state.filters, author: entry.item.author.id }),
    filterArticle: () => setFilters({ ...state.filters, article: entry.item.article.ref }),
    filterLanguage: () => setFilters({ ...state.filters, language: entry.item.language }),
  };
}

function draw(entry) {
  const card = renderCard(entry.item, handlersFor(entry), {
    selected: state.allMatching || state.selected.has(entry.item.id),
    current: entry.item.id === state.currentId,
    tab: state.tab,
    notice: entry.notice,
    busy: entry.busy,
  });
  if (entry.el && entry.el.isConnected) {
    const focused = entry.el.contains(document.activeElement);
    entry.el.replaceWith(card);
    if (focused) card.focus({ preventScroll: true });
  }
  entry.el = card;
  return card;
}

function drawList() {
  clear(ui.list);
  ui.list.setAttribute("aria-busy", "false");
  if (!state.entries.length) {
    const filtered = Object.keys(filterParams()).length;
    ui.list.append(h("div", { class: "empty" }, h("p", { class: "big", text: filtered ? "Nothing matches these filters." : `No ${tab().label.toLowerCase()} comments.` }), h("p", { class: "muted", text: "New comments appear here by themselves." })));
  } else {
    append(ui.list, state.entries.map(draw));
  }
  ui.more.hidden = !state.cursors.some(Boolean);
  drawBulkBar();
  drawPill();
}

// --- loading and live updates ----------------------------------------------------------

async function load({ keepCurrent = false } = {}) {
  const generation = ++state.generation;
  const keep = keepCurrent ? state.currentId : null;
  ui.list.setAttribute("aria-busy", "true");
  let pages;
  try {
    pages = await Promise.all(tab().sources.map((source) => fetchPage(source, null, PAGE)));
  } catch (error) {
    if (generation === state.generation) {
      clear(ui.list).append(h("p", { class: "form-error", role: "alert", text: `Could not load the queue: ${error.message}` }));
    }
    return;
  }
  if (generation !== state.generation) return;
  state.cursors = pages.map((page) => page.next_cursor);
  state.entries = pages.flatMap((page, source) => page.items.map((item) => ({ item, source }))).sort((a, b) => compare(a.item, b.item));
  state.waiting.clear();
  const ids = new Set(state.entries.map((e) => e.item.id));
  for (const id of [...state.selected]) if (!ids.has(id)) state.selected.delete(id);
  state.currentId = keep && ids.has(keep) ? keep : state.entries.length ? state.entries[0].item.id : null;
  drawList();
}

async function loadMore() {
  const generation = state.generation;
  const pages = await Promise.all(tab().sources.map((source, i) => (state.cursors[i] ? fetchPage(source, state.cursors[i], PAGE) : { items: [], next_cursor: null })));
  if (generation !== state.generation) return;
  state.cursors = pages.map((page) => page.next_cursor);
  const added = pages.flatMap((page, source) => page.items.filter((item) => !entryOf(item.id)).map((item) => ({ item, source }))).sort((a, b) => compare(a.item, b.item));
  state.entries.push(...added);
  append(ui.list, added.map(draw));
  ui.more.hidden = !state.cursors.some(Boolean);
  drawBulkBar();
}

async function refreshCounts() {
  try {
    const out = await api("GET", "/v1/queue/counts?by_article=true");
    state.counts = out.site;
    ui.articles.replaceChildren(...out.articles.map((a) => h("option", { value: a.article.ref, text: a.article.title || a.article.ref })));
    drawTabs();
    ui.offline.hidden = true;
  } catch (error) {
    if (error.status === 0) ui.offline.hidden = false;
  }
}

function gone(entry, text) {
  entry.notice = { kind: "warn", gone: true, text };
  draw(entry);
}

// Re-read the first pages: update cards in place, drop what others decided, queue new ones.
async function refresh() {
  const generation = state.generation;
  if (document.hidden || state.entries.some((e) => e.busy)) return;
  let pages;
  try {
    pages = await Promise.all(
      tab().sources.map((source, i) => {
        const shown = state.entries.filter((e) => e.source === i).length;
        return fetchPage(source, null, Math.min(PAGE_MAX, Math.max(PAGE, shown)));
      }),
    );
  } catch {
    return;
  }
  if (generation !== state.generation) return;
  const fresh = new Map();
  pages.forEach((page, source) => page.items.forEach((item) => fresh.set(item.id, { item, source })));
  const bounds = pages.map((page) => (page.next_cursor ? page.items[page.items.length - 1] : null));
  for (const entry of [...state.entries]) {
    const found = fresh.get(entry.item.id);
    if (entry.busy || (entry.notice && entry.notice.gone)) continue;
    if (found) {
      if (JSON.stringify(found.item) !== JSON.stringify(entry.item)) {
        entry.item = found.item;
        if (entry.notice && entry.notice.kind === "conflict") entry.notice = null;
        draw(entry);
      }
      continue;
    }
    const bound = bounds[entry.source];
    if (bound && compare(entry.item, bound) > 0) continue; // beyond what was re-read
    if (entry.item.id === state.currentId) {
      api("GET", `/v1/comments/${entry.item.id}`)
        .then((c) => gone(entry, `Now ${c.status}${c.decided_by ? ` by ${c.decided_by}` : ""}: another moderator acted. Move on with j/k.`))
        .catch(() => gone(entry, "Left this queue: another moderator acted."));
    } else {
      remove(entry);
    }
  }
  const wasEmpty = !state.entries.length;
  const waiting = new Map();
  for (const [id, found] of fresh) {
    if (entryOf(id)) continue;
    const last = state.entries[state.entries.length - 1];
    const exhausted = !state.cursors[found.source];
    // Appending below the last card moves nothing the moderator is looking at.
    if (wasEmpty || (state.sort === "created" && exhausted && (!last || compare(found.item, last.item) > 0))) {
      state.entries.push(found);
      ui.list.querySelector(".empty")?.remove();
      ui.list.append(draw(found));
      if (state.currentId === null) setCurrent(id);
    } else if (!last || compare(found.item, last.item) < 0 || exhausted) {
      waiting.set(id, found);
    }
  }
  state.waiting = waiting;
  drawPill();
  drawBulkBar();
}

function showWaiting() {
  if (!state.waiting.size) return;
  for (const entry of state.waiting.values()) {
    const at = state.entries.findIndex((e) => compare(entry.item, e.item) < 0);
    const card = draw(entry);
    if (at === -1) {
      state.entries.push(entry);
      ui.list.append(card);
    } else {
      state.entries[at].el.before(card);
      state.entries.splice(at, 0, entry);
    }
  }
  ui.list.querySelector(".empty")?.remove();
  state.waiting.clear();
  drawPill();
  if (state.currentId === null && state.entries.length) setCurrent(state.entries[0].item.id);
}

function poll() {
  clearTimeout(state.timer);
  state.timer = setTimeout(async () => {
    if (!document.hidden) await Promise.all([refreshCounts(), refresh()]);
    poll();
  }, POLL_MS);
}

// Back on the tab after a while: catch up at once.
function onVisible() {
  if (!document.hidden && ui.list && ui.list.isConnected) {
    refreshCounts();
    refresh();
  }
}

// --- moving around and selecting -------------------------------------------------------

function setCurrent(id, { focus = false } = {}) {
  const previous = entryOf(state.currentId);
  state.currentId = id;
  if (previous && previous.item.id !== id) {
    if (previous.notice && previous.notice.gone) remove(previous);
    else draw(previous);
  }
  const entry = entryOf(id);
  if (!entry) return;
  draw(entry);
  if (focus) {
    entry.el.focus({ preventScroll: true });
    entry.el.scrollIntoView({ block: "nearest" });
  }
}

function move(step) {
  if (!state.entries.length) return;
  const at = currentIndex();
  const next = Math.min(state.entries.length - 1, Math.max(0, at === -1 ? 0 : at + step));
  setCurrent(state.entries[next].item.id, { focus: true });
  if (step > 0 && next >= state.entries.length - 3 && state.cursors.some(Boolean)) loadMore();
}

function remove(entry, { advance = false } = {}) {
  const at = state.entries.indexOf(entry);
  if (at === -1) return;
  state.entries.splice(at, 1);
  state.selected.delete(entry.item.id);
  const wasCurrent = entry.item.id === state.currentId;
  const hadFocus = entry.el && entry.el.contains(document.activeElement);
  entry.el?.remove();
  if (wasCurrent) {
    const next = state.entries[Math.min(at, state.entries.length - 1)];
    state.currentId = next ? next.item.id : null;
    if (next) setCurrent(next.item.id, { focus: advance || hadFocus });
    else ui.main.focus();
  }
  if (!state.entries.length) drawList();
  drawBulkBar();
}

function select(id, checked) {
  if (state.allMatching) {
    state.allMatching = false;
    state.entries.forEach((e) => state.selected.add(e.item.id));
  }
  if (checked) state.selected.add(id);
  else state.selected.delete(id);
  const entry = entryOf(id);
  if (entry) draw(entry);
  drawBulkBar();
}

function selectPage(checked) {
  state.allMatching = false;
  for (const e of state.entries) {
    if (checked) state.selected.add(e.item.id);
    else state.selected.delete(e.item.id);
  }
  state.entries.forEach(draw);
  drawBulkBar();
}

function toggleAllMatching() {
  state.allMatching = !state.allMatching;
  state.selected.clear();
  state.entries.forEach(draw);
  drawBulkBar();
}

function setTab(id) {
  if (id === state.tab) return;
  state.tab = id;
  resetView();
}

function setFilters(filters) {
  state.filters = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== "" && v !== undefined && v !== null));
  syncFilterInputs();
  resetView();
}

function resetView() {
  state.selected.clear();
  state.allMatching = false;
  state.currentId = null;
  writeHash();
  drawTabs();
  load();
}

// --- decisions -------------------------------------------------------------------------

function stillBelongs(item) {
  const statuses = tab().sources.map((s) => s.status);
  if (!statuses.includes(item.status)) return false;
  return state.tab !== "reported" || (item.reports || []).length > 0;
}

async function act(entry, decision) {
  if (entry.busy || (entry.notice && entry.notice.gone)) return;
  let reason = { reason_code: null, note: null };
  if (decision === "reject") {
    reason = await pickReason(`Reject comment #${entry.item.id}`, entry.item.reasons);
    if (!reason) return entry.el?.focus();
  }
  entry.busy = true;
  draw(entry);
  const id = entry.item.id;
  const [, done] = VERBS[decision];
  try {
    const out = await api("POST", `/v1/comments/${id}/decision`, { decision, ...reason, expected_status: entry.item.status });
    entry.item = out.comment;
    entry.notice = null;
    entry.busy = false;
    const resolved = out.resolved_reports ? `, ${out.resolved_reports} report${out.resolved_reports > 1 ? "s" : ""} resolved` : "";
    toast(`#${id} ${out.changed ? done : `already ${done}`}${reason.reason_code ? ` (${reason.reason_code.replace(/_/g, " ")})` : ""}${resolved}.`);
    if (stillBelongs(out.comment)) draw(entry);
    else remove(entry, { advance: true });
    refreshCounts();
  } catch (error) {
    entry.busy = false;
    if (error.status === 409) {
      const now = error.payload.current_status || "changed";
      entry.item = { ...entry.item, status: now };
      const by = await api("GET", `/v1/comments/${id}`).then((c) => c.decided_by, () => null);
      const text = `Conflict: #${id} is ${now} now${by ? ` (by ${by})` : ""}; another moderator acted first. Nothing changed. Act again to override.`;
      entry.notice = { kind: "conflict", text };
      toast(text, { kind: "error" });
    } else {
      toast(`Could not ${decision} #${id}: ${error.message}`, { kind: "error" });
    }
    draw(entry);
    if (entry.item.id === state.currentId) entry.el.focus({ preventScroll: true });
  }
}

async function authorPanel(entry) {
  const out = await openAuthor(entry.item.author.id);
  if (out && out.bulk) rememberBulk([out.bulk.bulk_id], `rejected ${out.bulk.changed} comments of ${out.name || out.id}`);
  if (out) await load({ keepCurrent: true });
  entryOf(state.currentId)?.el.focus({ preventScroll: true });
}

// --- keyboard --------------------------------------------------------------------------

function onKey(event) {
  if (!ui.main || !ui.main.contains(ui.list)) return;
  if (event.ctrlKey || event.metaKey || event.altKey || document.querySelector("dialog[open]")) return;
  if (event.target.closest("input, textarea, select, [contenteditable]")) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  const mode = shortcutMode();
  if (event.key.length === 1 && (mode === "off" || (mode === "cards" && !event.target.closest?.("#queue-list")))) return;
  const entry = entryOf(state.currentId);
  const keys = {
    j: () => move(1),
    ArrowDown: () => move(1),
    k: () => move(-1),
    ArrowUp: () => move(-1),
    a: () => entry && act(entry, "approve"),
    r: () => entry && act(entry, "reject"),
    h: () => entry && act(entry, "hold"),
    x: () => entry && select(entry.item.id, !state.selected.has(entry.item.id)),
    X: () => selectPage(!state.entries.every((e) => state.selected.has(e.item.id))),
    i: () => entry && openHistory(entry.item),
    o: () => entry && authorPanel(entry),
    n: showWaiting,
    u: undoLast,
    "/": () => ui.filterBox.querySelector("input").focus(),
    "?": showHelp,
  };
  TABS.forEach((t, i) => (keys[String(i + 1)] = () => setTab(t.id)));
  const run = keys[event.key];
  if (!run) return;
  event.preventDefault();
  run();
}

// --- building the view -----------------------------------------------------------------

export function mountQueue(main) {
  readHash();
  ui.main = main;
  ui.tabs = h(
    "div",
    { class: "tabs", role: "tablist", "aria-label": "Queues" },
    TABS.map((t, i) =>
      h(
        "button",
        { type: "button", role: "tab", class: "tab", dataset: { tab: t.id }, "aria-controls": "queue-list", "aria-keyshortcuts": String(i + 1), onclick: () => setTab(t.id) },
        h("span", { text: t.label }),
        h("span", { class: "count", hidden: true }),
        h("span", { class: "extra" }),
      ),
    ),
  );
  // On phones the tabs scroll: the fade at their edge goes once the last one is in view.
  ui.tabs.addEventListener("scroll", () => ui.tabs.classList.toggle("scrolled-end", ui.tabs.scrollLeft + ui.tabs.clientWidth >= ui.tabs.scrollWidth - 2), { passive: true });
  ui.tabs.addEventListener("keydown", (event) => {
    const at = TABS.findIndex((t) => t.id === state.tab);
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const next = TABS[(at + step + TABS.length) % TABS.length];
    setTab(next.id);
    ui.tabs.querySelector(`[data-tab="${next.id}"]`).focus();
  });
  ui.filterBox = filterBox(setFilters);
  ui.selectPage = h("input", { type: "checkbox", id: "select-page", onchange: (e) => selectPage(e.target.checked) });
  ui.selection = h("span", { class: "selection", "aria-live": "polite" });
  ui.allMatching = h("button", { type: "button", class: "btn small ghost", id: "select-all-matching", onclick: toggleAllMatching });
  ui.bulkActions = ["approve", "reject", "hold"].map((d) => h("button", { type: "button", class: `btn small ${d}`, dataset: { bulk: d }, text: d === "reject" ? "Reject…" : VERBS[d][0], onclick: () => bulk(d) }));
  ui.undo = h("button", { type: "button", class: "btn small ghost", id: "undo-bulk", "aria-keyshortcuts": "u", onclick: undoLast }, "Undo last bulk ", h("kbd", { text: "u" }));
  ui.bulkbar = h("div", { class: "bulkbar", role: "region", "aria-label": "Bulk actions" }, h("label", { class: "check", for: "select-page" }, ui.selectPage, " Page"), ui.selection, ui.allMatching, h("span", { class: "spacer" }), ui.bulkActions, ui.undo);
  ui.pill = h("button", { type: "button", class: "pill", hidden: true, onclick: showWaiting });
  ui.offline = h("p", { class: "notice warn", role: "status", hidden: true, text: "Offline: the server does not answer. Retrying…" });
  ui.list = h("div", { id: "queue-list", class: "list", role: "tabpanel", "aria-label": "Comments", "aria-busy": "true", tabindex: "-1" });
  ui.more = h("button", { type: "button", class: "btn more", hidden: true, text: "Load more", onclick: loadMore });
  const hint = h("p", { class: "keyhint" }, ["j/k move", "a approve", "r reject", "h hold", "x select", "i history", "o author", "? all shortcuts"].map((t) => h("span", { text: t })));
  clear(main).append(h("h1", { class: "sr-only", text: "Review queue" }), h("div", { class: "queue-head" }, ui.tabs, ui.filterBox), ui.bulkbar, ui.offline, ui.pill, ui.list, ui.more, hint);
  syncFilterInputs();
  drawTabs();
  drawBulkBar();
  hooks.redraw = drawBulkBar;
  hooks.reload = () => Promise.all([load({ keepCurrent: true }), refreshCounts()]);
  // After a bulk action or its undo the buttons pressed are gone: focus the current card.
  hooks.focus = () => {
    if (document.querySelector("dialog[open]")) return;
    (entryOf(state.currentId)?.el || ui.list).focus({ preventScroll: false });
  };
  document.addEventListener("keydown", onKey);
  document.addEventListener("visibilitychange", onVisible);
  load().then(() => {
    const entry = entryOf(state.currentId);
    if (entry && !document.querySelector("dialog[open]")) entry.el.focus({ preventScroll: true });
  });
  refreshCounts();
  poll();
}

export function unmountQueue() {
  clearTimeout(state.timer);
  state.generation++;
  document.removeEventListener("keydown", onKey);
  document.removeEventListener("visibilitychange", onVisible);
}
