// The queue's state: which tab, filters and sort, what is shown and selected; the order.

import { api, getConfig, query } from "./api.js";

const config = getConfig();
export const TABS = [
  { id: "held", label: "Held", sources: [{ status: "held" }] },
  { id: "reported", label: "Reported", sources: [{ status: "held", reported: true }, { status: "approved", reported: true }] },
  { id: "pending", label: "Pending", sources: [{ status: "pending" }] },
  { id: "approved", label: "Approved", sources: [{ status: "approved" }] },
  { id: "rejected", label: "Rejected", sources: [{ status: "rejected" }] },
];
export const FILTERS = ["article", "author", "language", "reason", "label", "min_score", "max_score"];
export const SORTS = [
  ["created", "Oldest first"],
  ["-created", "Newest first"],
  ["-score", "Highest score"],
];
export const REASONS = ["toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack", "sexual_explicit", "banned_word", "suspect_word", "link", "new_author", "author_premod", "premoderation", "reported", "scoring_failed", "unsupported_language", "language_uncertain", "language_scorer_missing"];
export const VERBS = { approve: ["Approve", "approved"], reject: ["Reject", "rejected"], hold: ["Hold", "held"] };
export const PAGE = 50;
export const PAGE_MAX = 200;
export const POLL_MS = Math.max(1000, Number(new URLSearchParams(location.search).get("poll")) || config.poll_ms);

export const state = {
  tab: "held",
  filters: {},
  sort: "created",
  entries: [], // {item, source, notice, busy}
  cursors: [],
  selected: new Set(),
  allMatching: false,
  currentId: null,
  waiting: new Map(), // new comments behind the "N new" pill: id -> entry
  counts: null,
  lastBulk: JSON.parse(sessionStorage.getItem("civility.lastBulk") || "null"),
  generation: 0,
  timer: null,
};
export const ui = {};

export const tab = () => TABS.find((t) => t.id === state.tab);
export const filterParams = () => Object.fromEntries(FILTERS.filter((f) => state.filters[f] !== undefined && state.filters[f] !== "").map((f) => [f, state.filters[f]]));
export const entryOf = (id) => state.entries.find((e) => e.item.id === id);
export const currentIndex = () => state.entries.findIndex((e) => e.item.id === state.currentId);

export function sortKey(item) {
  if (state.sort === "-score") {
    const value = state.filters.label ? (item.scores || {})[state.filters.label] : item.max_score;
    return typeof value === "number" ? value : -1;
  }
  return Date.parse(item.created_at);
}

// The server's order, for merging the reported tab's two lists and placing new comments.
export function compare(a, b) {
  const diff = sortKey(a) - sortKey(b);
  if (state.sort === "created") return diff || a.id - b.id;
  return -diff || b.id - a.id;
}

export function readHash() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  state.tab = TABS.some((t) => t.id === params.get("tab")) ? params.get("tab") : "held";
  state.sort = SORTS.some(([s]) => s === params.get("sort")) ? params.get("sort") : "created";
  state.filters = Object.fromEntries(FILTERS.filter((f) => params.get(f)).map((f) => [f, params.get(f)]));
}

export function writeHash() {
  const text = query({ tab: state.tab, sort: state.sort === "created" ? "" : state.sort, ...filterParams() });
  history.replaceState(null, "", `#queue${text}`);
}

export function fetchPage(source, cursor, limit) {
  return api("GET", `/v1/queue${query({ ...source, ...filterParams(), sort: state.sort, limit, cursor })}`);
}

// Single-character shortcuts (WCAG 2.1.4): on everywhere in the queue, only while a comment
// card (or a control in one) has focus, or off. Kept per browser.
export const SHORTCUT_MODES = [
  ["on", "On, anywhere in the queue"],
  ["cards", "Only while a comment has focus"],
  ["off", "Off"],
];

export function shortcutMode() {
  const mode = localStorage.getItem("civility.shortcuts");
  return SHORTCUT_MODES.some(([value]) => value === mode) ? mode : "on";
}

export function setShortcutMode(mode) {
  localStorage.setItem("civility.shortcuts", mode);
}
