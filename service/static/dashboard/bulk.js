// Bulk decisions over the selection or the whole filter: dry-run count, confirm, undo.

import { api } from "./api.js";
import { confirmModal, toast } from "./dom.js";
import { pickReason } from "./panels.js";
import { VERBS, filterParams, state, tab } from "./state.js";

// Set by the queue view: redraw the bulk bar; reload the list and counts after a change.
export const hooks = { redraw: () => {}, reload: async () => {}, focus: () => {} };

export function rememberBulk(ids, summary) {
  state.lastBulk = { ids, summary };
  sessionStorage.setItem("civility.lastBulk", JSON.stringify(state.lastBulk));
  hooks.redraw();
}

function selections() {
  if (state.allMatching) return tab().sources.map((source) => ({ filter: { ...source, ...filterParams() } }));
  return state.selected.size ? [{ ids: [...state.selected] }] : [];
}

export async function bulk(decision) {
  const chosen = selections();
  if (!chosen.length) return toast("Select comments first (x), or select all matching this filter.");
  const [verb, done] = VERBS[decision];
  let reason = { reason_code: null, note: null };
  if (decision === "reject") {
    reason = await pickReason("Reject the selected comments", []);
    if (!reason) return;
  }
  let matched = 0;
  let changed = 0;
  try {
    for (const selection of chosen) {
      const plan = await api("POST", "/v1/decisions/bulk", { ...selection, decision, ...reason, dry_run: true });
      matched += plan.matched;
      changed += plan.changed;
    }
  } catch (error) {
    return toast(`${verb}: ${error.message}`, { kind: "error" });
  }
  const scope = state.allMatching ? "match this filter" : "are selected";
  const lines = [`${matched} comment${matched === 1 ? "" : "s"} ${scope}; ${changed} will be ${done}.`];
  if (matched > changed) lines.push(`${matched - changed} cannot change (already ${done}, or deleted).`);
  lines.push("You can undo this afterwards (u).");
  const ok = await confirmModal(`${verb} ${changed} comment${changed === 1 ? "" : "s"}?`, lines, `${verb} ${changed}`, decision === "reject" ? "danger" : "primary");
  if (!ok) return;
  const ids = [];
  let moved = 0;
  try {
    for (const selection of chosen) {
      const out = await api("POST", "/v1/decisions/bulk", { ...selection, decision, ...reason });
      ids.push(out.bulk_id);
      moved += out.changed;
    }
  } catch (error) {
    toast(`${verb}: ${error.message}`, { kind: "error" });
  }
  if (ids.length) {
    rememberBulk(ids, `${done} ${moved} comment${moved === 1 ? "" : "s"}`);
    toast(`${moved} comment${moved === 1 ? "" : "s"} ${done}.`, { action: { label: "Undo", run: undoLast } });
  }
  state.selected.clear();
  state.allMatching = false;
  await hooks.reload();
  hooks.focus();
}

export async function undoLast() {
  const last = state.lastBulk;
  if (!last) return toast("No bulk action to undo.");
  let restored = 0;
  let skipped = 0;
  try {
    for (const id of last.ids) {
      const out = await api("POST", `/v1/decisions/bulk/${encodeURIComponent(id)}/undo`);
      restored += out.changed;
      skipped += out.skipped || 0;
    }
    toast(`Undone (${last.summary}): ${restored} restored${skipped ? `, ${skipped} left as they are (changed since)` : ""}.`);
  } catch (error) {
    toast(`Undo: ${error.message}`, { kind: "error" });
  }
  state.lastBulk = null;
  sessionStorage.removeItem("civility.lastBulk");
  await hooks.reload();
  hooks.focus();
}
