// Settings → Calibration: thresholds moderators' decisions suggest, beside the current ones,
// and a preview of what the unsaved edit would have done (POST /v1/site/simulate).

import { api, fieldErrors, getConfig } from "./api.js";
import { append, clear, h } from "./dom.js";

const config = getConfig();
const PREVIEW_WAIT_MS = 600;

function fixed(value) {
  return value === null || value === undefined ? "off" : value.toFixed(2);
}

function figure(figures, name) {
  const f = figures && figures[name];
  if (!f) return "–";
  const interval = f.low === null ? "" : ` (${f.low.toFixed(2)}–${f.high.toFixed(2)})`;
  return `${f.value.toFixed(2)}${interval}`;
}

// The threshold input of the settings form for a label, and whether it is switched off.
function thresholdInput(form, kind, label) {
  return form.querySelector(`#${kind}-${label}`);
}

function thresholdOf(input) {
  return !input || input.disabled || input.value === "" ? null : Number(input.value);
}

// The unsaved edit: the settings form's fields that differ from what the site has now.
export function pendingEdit(form, site) {
  const data = new FormData(form);
  const edit = {};
  if (data.get("mode") && data.get("mode") !== site.mode) edit.mode = data.get("mode");
  if (data.has("hold_links") !== site.hold_links) edit.hold_links = data.has("hold_links");
  for (const name of ["new_author_premod", "requeue_reports"]) {
    if (data.has(name) && Number(data.get(name)) !== site[name]) edit[name] = Number(data.get(name));
  }
  for (const name of ["banned_words", "suspect_words"]) {
    if (!data.has(name)) continue;
    const list = [...new Set(String(data.get(name)).split("\n").map((w) => w.trim()).filter(Boolean))];
    if (JSON.stringify(list) !== JSON.stringify(site[name])) edit[name] = list;
  }
  for (const label of config.labels) {
    for (const kind of ["hold", "reject"]) {
      const input = thresholdInput(form, kind, label);
      if (!input) continue;
      const value = thresholdOf(input);
      if (value !== (site[`${kind}_at`][label] ?? null)) (edit[`${kind}_at`] ||= {})[label] = value;
    }
  }
  return edit;
}

function useSuggested(form, label, suggested) {
  for (const kind of ["hold", "reject"]) {
    const value = suggested[`${kind}_at`];
    const input = thresholdInput(form, kind, label);
    if (value === null || !input) continue;
    const off = input.parentElement.querySelector(`input[type=checkbox][aria-label^="Never ${kind}"]`);
    if (off && off.checked) {
      off.checked = false;
      off.dispatchEvent(new Event("input", { bubbles: true }));
    }
    input.disabled = false;
    input.value = String(value);
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }
}

function suggestionsTable(report, form) {
  const rows = report.labels.map((entry) => {
    const label = entry.label.replace(/_/g, " ");
    const current = entry.current;
    const suggested = entry.suggested;
    const cells = suggested
      ? [
          h("td", { text: `${fixed(suggested.hold_at)} / ${fixed(suggested.reject_at)}` }),
          h("td", { text: figure(suggested.hold, "f1") }),
          h("td", { text: suggested.reject ? `${figure(suggested.reject, "precision")}` : "–" }),
          h(
            "td",
            {},
            h("button", {
              type: "button",
              class: "btn small",
              text: "Use",
              "aria-label": `Use the suggested ${label} thresholds`,
              onclick: () => useSuggested(form, entry.label, suggested),
            }),
          ),
        ]
      : [h("td", { colspan: 4, class: "muted", text: entry.message || "No suggestion." })];
    return h(
      "tr",
      {},
      h("th", { scope: "row", text: label }),
      h("td", { text: String(entry.decisions) }),
      h("td", { text: `${fixed(current.hold_at)} / ${fixed(current.reject_at)}` }),
      h("td", { text: figure(current.hold, "f1") }),
      cells,
    );
  });
  return h(
    "table",
    { class: "calibration" },
    h("caption", { class: "muted", text: `Moderator decisions on comments scored by ${report.model}` }),
    h(
      "thead",
      {},
      h("tr", {}, ["Label", "Decisions", "Now: hold / reject", "F1 now", "Suggested: hold / reject", "F1 suggested", "Reject precision", ""].map((t) => h("th", { scope: "col", text: t }))),
    ),
    h("tbody", {}, rows),
  );
}

function daysOf(body) {
  return Math.round((Date.parse(body.until) - Date.parse(body.since)) / 86400000);
}

function moveSentence(body) {
  const into = (status) => body.moves.filter((m) => m.to === status);
  const sum = (moves, key) => moves.reduce((n, m) => n + m[key], 0);
  const parts = [];
  for (const [status, verb] of [["held", "held"], ["rejected", "rejected"], ["approved", "approved"]]) {
    const moves = into(status);
    if (!moves.length) continue;
    const count = sum(moves, "count");
    const rejected = sum(moves, "moderator_rejected");
    const approved = sum(moves, "moderator_approved");
    parts.push(`${verb} ${count} more comment${count === 1 ? "" : "s"} (${rejected} of which moderators rejected, ${approved} approved)`);
  }
  const window = `the last ${daysOf(body)} days`;
  if (!parts.length) return `This edit would change no outcome among the ${body.replayed} comments of ${window}.`;
  return `This edit would have ${parts.join("; ")} in ${window}, of ${body.replayed} comments replayed.`;
}

function previewBlock(body) {
  const agreement = (side) => {
    const a = body.agreement[side];
    return a.enough ? `precision ${figure(a, "precision")}, recall ${figure(a, "recall")}, F1 ${figure(a, "f1")}` : `not enough decisions (${a.decisions})`;
  };
  return [
    h("p", { class: "simulation-summary", text: moveSentence(body) }),
    body.moves.length
      ? h(
          "ul",
          { class: "moves" },
          body.moves.map((m) => h("li", { text: `${m.from} → ${m.to}: ${m.count} (for example #${m.sample_ids.slice(0, 5).join(", #")})` })),
        )
      : null,
    h("p", { class: "hint", text: `Against moderators: now ${agreement("current")}; with this edit ${agreement("proposed")}.` }),
  ];
}

// The panel, inserted above the settings form's Save button.
export function calibrationPanel(form, site) {
  const table = h("div", { class: "calibration-table" }, h("p", { class: "muted", text: "Loading suggestions…" }));
  const preview = h("div", { id: "simulation", class: "simulation", role: "status", "aria-live": "polite" });
  const button = h("button", { type: "button", class: "btn", text: "Preview this edit" });
  const panel = h(
    "section",
    { class: "panel calibration-panel", "aria-labelledby": "calibration-title" },
    h("h2", { id: "calibration-title", text: "Calibration" }),
    h("p", { class: "hint", text: "From recent moderator decisions: suggested hold_at has the best F1 of holding; suggested reject_at is the lowest threshold moderators upheld at the target precision. Figures in brackets are 95% intervals; a suggestion's own figures are measured on the decisions that chose it, so they flatter it." }),
    table,
    h("h3", { text: "What this edit would do" }),
    h("p", { class: "hint", text: "Replays recent comments with the settings in this form, before you save. Nothing changes." }),
    button,
    preview,
  );
  form.querySelector(".form-actions").before(panel);

  api("GET", "/v1/site/calibration").then(
    (report) => {
      const intro = h("p", { class: "hint", text: `The last ${daysOf(report)} days: ${report.decisions} decisions, ${report.rejected} rejections; suggestions need ${report.min_decisions} per label.` });
      clear(table).append(...(report.model && report.labels.length ? [intro, suggestionsTable(report, form)] : [h("p", { class: "muted", text: "No moderator decisions on scored comments yet." })]));
    },
    (error) => clear(table).append(h("p", { class: "form-error", text: error.message })),
  );

  let timer = null;
  let asked = 0;
  const run = async () => {
    const edit = pendingEdit(form, site);
    if (!Object.keys(edit).length) {
      clear(preview).append(h("p", { class: "muted", text: "No unsaved change to preview." }));
      return;
    }
    const ticket = ++asked;
    preview.setAttribute("aria-busy", "true");
    try {
      const body = await api("POST", "/v1/site/simulate", edit);
      if (ticket === asked) append(clear(preview), previewBlock(body));
    } catch (error) {
      const fields = Object.keys(fieldErrors(error));
      if (ticket === asked) clear(preview).append(h("p", { class: "form-error", text: `${error.message}${fields.length ? ` (${fields.join(", ")})` : ""}` }));
    } finally {
      if (ticket === asked) preview.setAttribute("aria-busy", "false");
    }
  };
  button.addEventListener("click", run);
  // Keep the preview current as the admin edits (after a pause), and after a save.
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(run, PREVIEW_WAIT_MS);
  });
  form.addEventListener("submit", () => {
    clearTimeout(timer);
    timer = setTimeout(run, PREVIEW_WAIT_MS * 2);
  });
  return panel;
}
