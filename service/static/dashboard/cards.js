// One queue item as a card: escaped body with matches marked, reasons, reports, score bars.

import { getConfig } from "./api.js";
import { h, safeUrl, timeEl } from "./dom.js";

const config = getConfig();
const WORD_REASONS = { banned_word: "banned", suspect_word: "suspect" };
const REASON_TEXT = {
  author_banned: "author is banned",
  author_premod: "author on premoderation",
  author_trusted: "trusted author",
  new_author: "new author",
  premoderation: "pre-moderation mode",
  link: "contains a link",
  reported: "reported by readers",
  scoring_failed: "scoring failed",
};
const REJECTING = new Set(["banned_word", "author_banned"]);
const SHORT = { severe_toxicity: "severe tox.", identity_attack: "identity", sexual_explicit: "sexual" };
const WORD = /[\p{L}\p{N}\p{M}_]+/gu;
const LINK = /\bhttps?:\/\/\S+|\bwww\.\S+/giu;

// The policy's folding: NFKC, case-folded, accents dropped.
function fold(text) {
  return text.normalize("NFKC").toLowerCase().normalize("NFD").replace(/\p{M}/gu, "");
}

function tokens(text) {
  return Array.from(text.matchAll(WORD), (m) => ({ start: m.index, end: m.index + m[0].length, norm: fold(m[0]) }));
}

// Ranges of the body that the reasons point at: banned/suspect words and phrases, links.
function marks(body, reasons) {
  const found = [];
  const bodyTokens = tokens(body);
  for (const reason of reasons) {
    const kind = WORD_REASONS[reason.code];
    if (!kind || typeof reason.word !== "string") continue;
    const word = tokens(reason.word).map((t) => t.norm);
    if (!word.length) continue;
    for (let i = 0; i + word.length <= bodyTokens.length; i++) {
      if (word.every((part, j) => bodyTokens[i + j].norm === part)) {
        found.push({ start: bodyTokens[i].start, end: bodyTokens[i + word.length - 1].end, kind, label: `${kind} word` });
      }
    }
  }
  if (reasons.some((reason) => reason.code === "link")) {
    for (const m of body.matchAll(LINK)) found.push({ start: m.index, end: m.index + m[0].length, kind: "link", label: "link" });
  }
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged = [];
  for (const mark of found) {
    if (!merged.length || mark.start >= merged[merged.length - 1].end) merged.push(mark);
  }
  return merged;
}

export function bodyEl(body, reasons) {
  const el = h("div", { class: "comment-body" });
  let at = 0;
  for (const mark of marks(body, reasons)) {
    el.append(body.slice(at, mark.start));
    el.append(h("mark", { class: mark.kind, title: mark.label, text: body.slice(mark.start, mark.end) }));
    at = mark.end;
  }
  el.append(body.slice(at));
  return el;
}

function percent(value) {
  return `${Math.round((value || 0) * 100)}%`;
}

function fixed(value) {
  return typeof value === "number" ? value.toFixed(2) : "–";
}

export function reasonText(reason) {
  if (reason.label && typeof reason.score === "number") {
    return `${reason.label.replace(/_/g, " ")} ${fixed(reason.score)} ≥ ${fixed(reason.threshold)}`;
  }
  if (WORD_REASONS[reason.code]) return `${WORD_REASONS[reason.code]} word “${reason.word}”`;
  if (reason.code === "unsupported_language") return `no model reads ${reason.language || "its language"}`;
  if (reason.code === "language_uncertain") return `language unsure (${reason.detected || "?"} ${percent(reason.confidence)}), read as ${reason.language}`;
  if (reason.code === "language_scorer_missing") return `${reason.scorer} (chosen for ${reason.language}) not loaded`;
  return REASON_TEXT[reason.code] || String(reason.code).replace(/_/g, " ");
}

function reasonsEl(reasons) {
  if (!reasons.length) return null;
  return h(
    "ul",
    { class: "reasons", "aria-label": "Why the policy decided" },
    reasons.map((reason) => {
      const rejects =
        REJECTING.has(reason.code) || (reason.label && reason.score >= (config.reject_at[reason.label] ?? 2));
      return h("li", { class: `chip ${rejects ? "bad" : "warn"}`, text: reasonText(reason) });
    }),
  );
}

function reportsEl(reports) {
  if (!reports || !reports.length) return null;
  return h(
    "div",
    { class: "reports" },
    h("strong", { text: `${reports.length} open report${reports.length > 1 ? "s" : ""}` }),
    h(
      "ul",
      {},
      reports.map((report) =>
        h(
          "li",
          {},
          h("span", { class: "chip", text: report.reason }),
          " ",
          report.reporter_id ? `by ${report.reporter_id} ` : "",
          timeEl(report.created_at),
          report.note ? h("q", { text: report.note }) : null,
        ),
      ),
    ),
  );
}

export function zone(label, score) {
  if (score >= (config.reject_at[label] ?? 2)) return "bad";
  if (score >= (config.hold_at[label] ?? 2)) return "warn";
  return "ok";
}

function markAt(kind, value) {
  if (typeof value !== "number") return null;
  const el = h("span", { class: `threshold ${kind}`, title: `${kind} at ${fixed(value)}` });
  el.style.left = `${value * 100}%`;
  return el;
}

export function scoresEl(item) {
  if (!item.scores) {
    const text = item.status === "pending" ? "Waiting for the scorer." : "No scores.";
    return h("div", { class: "scores empty", text });
  }
  const labels = [...config.labels.filter((l) => l in item.scores), ...Object.keys(item.scores).filter((l) => !config.labels.includes(l))];
  return h(
    "div",
    { class: "scores" },
    h(
      "dl",
      { class: "score-list" },
      labels.map((label) => {
        const score = item.scores[label];
        const hold = config.hold_at[label];
        const reject = config.reject_at[label];
        const fill = h("span", { class: `fill ${zone(label, score)}` });
        fill.style.width = `${Math.min(1, Math.max(0, score)) * 100}%`;
        const name = label.replace(/_/g, " ");
        const described = `${name} ${fixed(score)}; holds at ${fixed(hold)}, rejects at ${fixed(reject)}`;
        return h(
          "div",
          { class: "score-row", title: described },
          h("dt", { text: SHORT[label] || name }),
          h(
            "dd",
            {},
            h("span", { class: "track", role: "img", "aria-label": described }, fill, markAt("hold", hold), markAt("reject", reject)),
            h("span", { class: "value", text: fixed(score) }),
          ),
        );
      }),
    ),
    item.model ? h("p", { class: "model", text: item.model }) : null,
  );
}

const ACTIONS = [
  ["approve", "Approve", "a", "approved"],
  ["reject", "Reject…", "r", "rejected"],
  ["hold", "Hold", "h", "held"],
];

// handlers: {decide(decision), history(), author(), select(checked), focus(), filterAuthor(), filterArticle(), filterLanguage()}
export function renderCard(item, handlers, { selected, current, tab, notice, busy }) {
  const author = item.author || {};
  const article = item.article || {};
  const href = safeUrl(article.url);
  const titleId = `c${item.id}-title`;
  const gone = Boolean(notice && notice.gone);
  // The card's name: who wrote it and how it starts (not its buttons' text).
  const opening = (item.body || "").replace(/\s+/g, " ").trim();
  const name = `Comment #${item.id} by ${author.name || author.id}: ${opening.length > 80 ? `${opening.slice(0, 80)}…` : opening}`;
  const card = h(
    "article",
    {
      class: `card status-${item.status}${selected ? " selected" : ""}${current ? " current" : ""}${gone ? " gone" : ""}${busy ? " busy" : ""}`,
      tabindex: "-1",
      "aria-label": name,
      "aria-current": current ? "true" : null,
      "aria-busy": busy ? "true" : null,
      dataset: { id: String(item.id) },
      onclick: (event) => {
        if (!event.target.closest("button, a, input, label, summary")) handlers.focus();
      },
    },
    h(
      "div",
      { class: "card-select" },
      h("input", {
        type: "checkbox",
        checked: Boolean(selected),
        "aria-label": `Select comment ${item.id}`,
        onchange: (event) => handlers.select(event.target.checked),
      }),
    ),
    h(
      "div",
      { class: "card-main" },
      h(
        "header",
        { class: "card-head" },
        h(
          "span",
          { class: "author", id: titleId },
          h("button", { type: "button", class: "link author-name", title: `Author ${author.id}: details, status, notes`, text: author.name || author.id, onclick: handlers.author }),
          author.status && author.status !== "active" ? h("span", { class: `badge author-${author.status}`, text: author.status }) : null,
          h("span", { class: "history", title: "Comments approved / rejected before" }, h("span", { class: "ok-text", text: `✓${author.approved_count ?? 0}` }), " ", h("span", { class: "bad-text", text: `✗${author.rejected_count ?? 0}` })),
          h("button", { type: "button", class: "link subtle", title: "Only this author", "aria-label": `Filter by author ${author.id}`, text: `@${author.id}`, onclick: handlers.filterAuthor }),
        ),
        h(
          "span",
          { class: "meta" },
          item.parent_id ? h("span", { class: "badge", text: `reply to #${item.parent_id}` }) : null,
          item.language ? h("button", { type: "button", class: "link subtle language", title: `Read as ${item.language} (detector ${percent(item.language_confidence)} sure): only this language`, "aria-label": `Language ${item.language}, ${percent(item.language_confidence)} sure: filter by it`, text: item.language, onclick: handlers.filterLanguage }) : null,
          tab === "reported" || notice ? h("span", { class: `badge st-${item.status}`, text: item.status }) : null,
          h("button", { type: "button", class: "link subtle", title: "History (i)", text: `#${item.id}`, onclick: handlers.history }),
          timeEl(item.created_at),
        ),
        h(
          "span",
          { class: "article" },
          "on ",
          href
            ? h("a", { href, target: "_blank", rel: "noopener noreferrer", text: article.title || article.ref })
            : h("span", { text: article.title || article.ref }),
          h("button", { type: "button", class: "link subtle filter-link", title: "Only this article", "aria-label": `Filter by article ${article.ref}`, text: "filter", onclick: handlers.filterArticle }),
        ),
      ),
      notice ? h("p", { class: `notice ${notice.kind}`, role: "note", text: notice.text }) : null,
      bodyEl(item.body, item.reasons || []),
      reasonsEl(item.reasons || []),
      reportsEl(item.reports),
      h(
        "footer",
        { class: "card-actions" },
        ACTIONS.map(([decision, label, key, status]) =>
          h(
            "button",
            {
              type: "button",
              class: `btn ${decision}`,
              // Approving an approved comment still resolves its reports.
              disabled: gone || busy || item.status === "deleted" || (item.status === status && !(decision === "approve" && (item.reports || []).length)),
              "aria-keyshortcuts": key,
              onclick: () => handlers.decide(decision),
            },
            label,
            h("kbd", { text: key }),
          ),
        ),
        h("button", { type: "button", class: "btn ghost", "aria-keyshortcuts": "i", onclick: handlers.history }, "History", h("kbd", { text: "i" })),
        h("button", { type: "button", class: "btn ghost", "aria-keyshortcuts": "o", onclick: handlers.author }, "Author", h("kbd", { text: "o" })),
      ),
    ),
    h("aside", { class: "card-scores", "aria-label": `Scores of comment #${item.id}` }, scoresEl(item)),
  );
  return card;
}
