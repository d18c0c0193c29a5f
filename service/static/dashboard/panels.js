// Dialogs: reject reason, comment history, author panel, keyboard help.

import { api, getConfig } from "./api.js";
import { h, append, modal, timeEl, toast, when } from "./dom.js";
import { reasonText } from "./cards.js";
import { SHORTCUT_MODES, setShortcutMode, shortcutMode } from "./state.js";

const config = getConfig();

function defaultReason(reasons) {
  const codes = new Set((reasons || []).map((r) => r.code));
  if (codes.has("banned_word")) return "banned_word";
  if (codes.has("link")) return "spam";
  if (codes.has("identity_attack")) return "hate_speech";
  if (codes.has("insult") || codes.has("threat")) return "abusive";
  return "offensive";
}

// Resolves {reason_code, note} or null. Digits pick a reason; Enter takes the focused one.
export function pickReason(title, reasons) {
  const preferred = defaultReason(reasons);
  return modal(title, (body, done) => {
    const note = h("textarea", { id: "reject-note", rows: 2, maxlength: 2000, placeholder: "Optional, for the audit trail" });
    const choose = (code) => done({ reason_code: code, note: note.value.trim() || null });
    const list = h(
      "div",
      { class: "reason-list", role: "group", "aria-label": "Reason" },
      config.reason_codes.map((code, index) =>
        h(
          "button",
          { type: "button", class: "btn reason", autofocus: code === preferred, dataset: { code }, onclick: () => choose(code) },
          h("kbd", { text: index < 9 ? String(index + 1) : index === 9 ? "0" : "" }),
          code.replace(/_/g, " "),
        ),
      ),
    );
    list.addEventListener("keydown", (event) => {
      const buttons = [...list.querySelectorAll("button")];
      const at = buttons.indexOf(document.activeElement);
      if (/^[0-9]$/.test(event.key)) {
        const index = event.key === "0" ? 9 : Number(event.key) - 1;
        if (buttons[index]) choose(buttons[index].dataset.code);
      } else if (["ArrowDown", "ArrowRight", "j"].includes(event.key)) {
        buttons[(at + 1) % buttons.length].focus();
      } else if (["ArrowUp", "ArrowLeft", "k"].includes(event.key)) {
        buttons[(at - 1 + buttons.length) % buttons.length].focus();
      } else return;
      event.preventDefault();
    });
    append(body, [
      h("p", { class: "hint", text: "Pick a reason: its number, or arrows and Enter. Esc cancels." }),
      list,
      h("label", { for: "reject-note", text: "Note" }),
      note,
    ]);
  });
}

export async function openHistory(comment) {
  let events;
  try {
    events = (await api("GET", `/v1/comments/${comment.id}/history`)).items;
  } catch (error) {
    toast(`History of #${comment.id}: ${error.message}`, { kind: "error" });
    return;
  }
  await modal(`History of comment #${comment.id}`, (body) => {
    const rows = events.map((event) =>
      h(
        "li",
        { class: "event" },
        h(
          "div",
          { class: "event-head" },
          timeEl(event.created_at),
          h("span", { class: "move" }, event.from_status ? h("span", { class: `badge st-${event.from_status}`, text: event.from_status }) : "new", " → ", h("span", { class: `badge st-${event.to_status}`, text: event.to_status })),
          h("span", { class: "actor", text: event.actor }),
          event.reason_code ? h("span", { class: "chip", text: event.reason_code.replace(/_/g, " ") }) : null,
          event.bulk_id ? h("span", { class: "muted", title: event.bulk_id, text: `bulk ${event.bulk_id.slice(0, 8)}` }) : null,
        ),
        event.note ? h("p", { class: "note", text: event.note }) : null,
        event.reasons && event.reasons.length ? h("p", { class: "muted", text: event.reasons.map(reasonText).join(" · ") }) : null,
        event.model ? h("p", { class: "muted", text: `model ${event.model}` }) : null,
      ),
    );
    append(body, [h("p", { class: "muted", text: `${comment.author.name || comment.author.id} on ${comment.article.title || comment.article.ref}` }), h("ol", { class: "events" }, rows)]);
    body.querySelector("ol").tabIndex = -1;
    body.querySelector("ol").setAttribute("autofocus", "");
  }, { wide: true });
}

function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

// The author panel: status (trusted, premod, banned; optionally until), notes, history.
// Resolves with the PATCH answer when something changed, else null.
export async function openAuthor(ref) {
  let author;
  try {
    author = await api("GET", `/v1/authors/${encodeURIComponent(ref)}`);
  } catch (error) {
    toast(`Author ${ref}: ${error.message}`, { kind: "error" });
    return null;
  }
  return modal(`Author: ${author.name || author.id}`, (body, done) => {
    const statuses = ["active", "trusted", "premod", "banned"];
    const help = { active: "the policy decides", trusted: "approved unless a reject rule fires", premod: "always held for review", banned: "always rejected" };
    const until = h("input", { type: "datetime-local", id: "author-until", value: localInput(author.until) });
    const rejectExisting = h("input", { type: "checkbox", id: "author-reject" });
    const note = h("textarea", { id: "author-note", rows: 2, maxlength: 2000, placeholder: "Appended with the time and your key's name" });
    const error = h("p", { class: "form-error", role: "alert", hidden: true });
    const radios = statuses.map((status) =>
      h("label", { class: "radio" }, h("input", { type: "radio", name: "author-status", value: status, checked: author.status === status, autofocus: author.status === status }), h("strong", { text: status }), h("span", { class: "muted", text: ` ${help[status]}` })),
    );
    const form = h(
      "form",
      {
        class: "author-form",
        onsubmit: async (event) => {
          event.preventDefault();
          const status = form.querySelector("input[name=author-status]:checked").value;
          const patch = { reject_existing: rejectExisting.checked && status === "banned" };
          if (status !== author.status) patch.status = status;
          if (until.value && (status === "premod" || status === "banned")) patch.until = new Date(until.value).toISOString();
          if (note.value.trim()) patch.note = note.value.trim();
          if (!patch.status && !patch.until && !patch.note) return done(null);
          try {
            const out = await api("PATCH", `/v1/authors/${encodeURIComponent(ref)}`, patch);
            toast(`Author ${out.name || out.id}: ${out.status}${out.bulk ? `, ${out.bulk.changed} comments rejected` : ""}.`);
            done(out);
          } catch (err) {
            error.textContent = err.message;
            error.hidden = false;
          }
        },
      },
      h("fieldset", {}, h("legend", { text: "Status" }), radios),
      h("div", { class: "row" }, h("label", { for: "author-until", text: "Until (premod or banned; empty = permanent)" }), until),
      h("label", { class: "check" }, rejectExisting, " With a ban: also reject their pending, held and approved comments (undoable)"),
      h("label", { for: "author-note", text: "Add a note" }),
      note,
      error,
      h("div", { class: "dialog-actions" }, h("button", { type: "button", class: "btn", text: "Cancel", onclick: () => done(null) }), h("button", { type: "submit", class: "btn primary", text: "Save" })),
    );
    const counts = author.counts || {};
    append(body, [
      h(
        "div",
        { class: "author-summary" },
        h("p", {}, h("span", { class: "muted", text: "id " }), author.id, " · ", h("span", { class: `badge author-${author.status}`, text: author.status }), author.until ? ` until ${when(author.until)}` : "", " · first seen ", timeEl(author.created_at)),
        h("p", { class: "counts" }, ["approved", "held", "rejected", "pending", "deleted"].map((s) => h("span", { class: `count st-${s}` }, h("strong", { text: String(counts[s] ?? 0) }), ` ${s}`))),
      ),
      form,
      author.notes ? h("section", {}, h("h3", { text: "Notes" }), h("pre", { class: "notes", text: author.notes })) : null,
      h(
        "section",
        {},
        h("h3", { text: "Recent comments" }),
        h(
          "ul",
          { class: "recent" },
          (author.recent_comments || []).map((c) => h("li", {}, h("span", { class: `badge st-${c.status}`, text: c.status }), " ", timeEl(c.created_at), " ", h("span", { class: "excerpt", text: c.body.length > 160 ? `${c.body.slice(0, 160)}…` : c.body }))),
        ),
      ),
    ]);
  }, { wide: true });
}

export const SHORTCUTS = [
  ["j / ↓", "next comment"],
  ["k / ↑", "previous comment"],
  ["a", "approve"],
  ["r", "reject (pick a reason)"],
  ["h", "hold"],
  ["x", "select / unselect"],
  ["Shift+X", "select all on the page"],
  ["i", "history (audit trail)"],
  ["o", "author panel"],
  ["n", "show new comments"],
  ["u", "undo the last bulk action"],
  ["1–5", "switch tab"],
  ["/", "filters"],
  ["?", "this help"],
];

export function showHelp() {
  if (document.querySelector("dialog[open]")) return;
  modal("Keyboard shortcuts", (body, done) => {
    append(body, [
      h("dl", { class: "shortcuts" }, SHORTCUTS.map(([key, what]) => [h("dt", {}, h("kbd", { text: key })), h("dd", { text: what })])),
      h(
        "fieldset",
        { class: "shortcut-mode" },
        h("legend", { text: "Single-key shortcuts" }),
        SHORTCUT_MODES.map(([value, text]) =>
          h("label", { class: "radio" }, h("input", { type: "radio", name: "shortcut-mode", value, checked: shortcutMode() === value, onchange: () => setShortcutMode(value) }), ` ${text}`),
        ),
      ),
      h("div", { class: "dialog-actions" }, h("button", { type: "button", class: "btn primary", text: "Close", autofocus: true, onclick: () => done(null) })),
    ]);
  });
}
