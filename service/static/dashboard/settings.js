// Settings (admins): mode, thresholds with score histograms, word lists, webhooks.

import { api, fieldErrors, getConfig, query } from "./api.js";
import { append, clear, confirmModal, h, modal, timeEl, toast } from "./dom.js";
import { calibrationPanel } from "./calibration.js";

const config = getConfig();
const BINS = 20;
const SAMPLE = 200;

async function recentScores() {
  const lists = await Promise.all(
    ["approved", "held", "rejected"].map((status) => api("GET", `/v1/queue${query({ status, sort: "-created", limit: SAMPLE })}`)),
  );
  return lists.flatMap((list) => list.items).filter((item) => item.scores).map((item) => item.scores);
}

function thresholdValue(input, off) {
  if (off.checked || input.value === "") return null;
  return Number(input.value);
}

// One label: hold/reject inputs and a histogram of recent scores that recolours as they move.
function thresholdRow(label, site, samples) {
  const values = samples.map((s) => s[label]).filter((v) => typeof v === "number");
  const bins = new Array(BINS).fill(0);
  for (const v of values) bins[Math.min(BINS - 1, Math.floor(v * BINS))]++;
  const peak = Math.max(1, ...bins);
  const number = (kind) => h("input", { type: "number", min: 0, max: 1, step: 0.01, id: `${kind}-${label}`, name: `${kind}_at.${label}`, value: site[`${kind}_at`][label] ?? "", inputmode: "decimal" });
  const hold = number("hold");
  const reject = number("reject");
  const holdOff = h("input", { type: "checkbox", checked: site.hold_at[label] === null || site.hold_at[label] === undefined, "aria-label": `Never hold for ${label}` });
  const rejectOff = h("input", { type: "checkbox", checked: site.reject_at[label] === null || site.reject_at[label] === undefined, "aria-label": `Never reject for ${label}` });
  const bars = bins.map((count, i) => {
    const bar = h("span", { class: "bin", title: `${(i / BINS).toFixed(2)}–${((i + 1) / BINS).toFixed(2)}: ${count}` });
    bar.style.height = `${(count / peak) * 100}%`;
    return bar;
  });
  const holdMark = h("span", { class: "threshold hold" });
  const rejectMark = h("span", { class: "threshold reject" });
  const summary = h("p", { class: "hist-summary" });
  const update = () => {
    const holdAt = thresholdValue(hold, holdOff);
    const rejectAt = thresholdValue(reject, rejectOff);
    hold.disabled = holdOff.checked;
    reject.disabled = rejectOff.checked;
    bars.forEach((bar, i) => {
      const low = i / BINS;
      bar.className = `bin ${rejectAt !== null && low >= rejectAt ? "bad" : holdAt !== null && low >= holdAt ? "warn" : "ok"}`;
    });
    for (const [mark, at] of [[holdMark, holdAt], [rejectMark, rejectAt]]) {
      mark.hidden = at === null;
      if (at !== null) mark.style.left = `${at * 100}%`;
    }
    const rejected = values.filter((v) => rejectAt !== null && v >= rejectAt).length;
    const held = values.filter((v) => holdAt !== null && v >= holdAt && !(rejectAt !== null && v >= rejectAt)).length;
    summary.textContent = values.length ? `Of ${values.length} recent scores: ${held} would hold, ${rejected} would reject.` : "No recent scores for this label.";
  };
  for (const el of [hold, reject, holdOff, rejectOff]) el.addEventListener("input", update);
  update();
  const row = h(
    "div",
    { class: "threshold-row" },
    h("h3", { text: label.replace(/_/g, " ") }),
    h("div", { class: "threshold-inputs" }, h("label", { for: hold.id, text: "hold at" }), hold, h("label", { class: "check" }, holdOff, " off"), h("label", { for: reject.id, text: "reject at" }), reject, h("label", { class: "check" }, rejectOff, " off")),
    h("div", { class: "histogram", role: "img", "aria-label": `Histogram of recent ${label} scores` }, bars, holdMark, rejectMark),
    summary,
  );
  row.read = () => ({ hold: thresholdValue(hold, holdOff), reject: thresholdValue(reject, rejectOff) });
  return row;
}

function words(text) {
  return [...new Set(text.split("\n").map((w) => w.trim()).filter(Boolean))];
}

function settingsForm(site, samples) {
  const rows = config.labels.map((label) => thresholdRow(label, site, samples));
  const wordArea = (name, label, help) => [h("label", { for: name, text: `${label} (${site[name].length})` }), h("p", { class: "hint", text: help }), h("textarea", { id: name, name, rows: 6, spellcheck: "false", value: site[name].join("\n") })];
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "settings-form", novalidate: true },
    h(
      "section",
      { class: "panel" },
      h("h2", { text: "Policy" }),
      h("fieldset", {}, h("legend", { text: "Mode" }), ["post", "pre"].map((mode) => h("label", { class: "radio" }, h("input", { type: "radio", name: "mode", value: mode, checked: site.mode === mode }), h("strong", { text: mode === "post" ? " Post-moderation" : " Pre-moderation" }), h("span", { class: "muted", text: mode === "post" ? " publish unless a rule holds or rejects" : " hold everything the policy would approve" })))),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "hold_links", checked: site.hold_links }), " Hold comments with links"),
      h("div", { class: "row" }, h("label", { for: "new_author_premod", text: "Hold new authors until this many approved (0 = off)" }), h("input", { type: "number", id: "new_author_premod", name: "new_author_premod", min: 0, max: 1000, value: site.new_author_premod })),
      h("div", { class: "row" }, h("label", { for: "requeue_reports", text: "Open reports that send an approved comment back to held (0 = never)" }), h("input", { type: "number", id: "requeue_reports", name: "requeue_reports", min: 0, max: 1000, value: site.requeue_reports })),
    ),
    h("section", { class: "panel" }, h("h2", { text: "Thresholds" }), h("p", { class: "hint", text: `Histograms: the newest ${SAMPLE} approved, held and rejected comments. Bars turn amber where a score would hold and red where it would reject.` }), rows),
    h(
      "section",
      { class: "panel" },
      h("h2", { text: "Word lists" }),
      h("p", { class: "hint", text: "One word or phrase per line; matched case- and accent-insensitively on word boundaries." }),
      h("div", { class: "two" }, h("div", {}, wordArea("banned_words", "Banned: reject", "A match rejects the comment.")), h("div", {}, wordArea("suspect_words", "Suspect: hold", "A match holds the comment for review."))),
    ),
    error,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn primary", text: "Save settings" })),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const data = new FormData(form);
    const patch = {};
    if (data.get("mode") !== site.mode) patch.mode = data.get("mode");
    if (data.has("hold_links") !== site.hold_links) patch.hold_links = data.has("hold_links");
    for (const name of ["new_author_premod", "requeue_reports"]) if (Number(data.get(name)) !== site[name]) patch[name] = Number(data.get(name));
    for (const name of ["banned_words", "suspect_words"]) {
      const list = words(String(data.get(name)));
      if (JSON.stringify(list) !== JSON.stringify(site[name])) patch[name] = list;
    }
    config.labels.forEach((label, i) => {
      const { hold, reject } = rows[i].read();
      if (hold !== (site.hold_at[label] ?? null)) (patch.hold_at ||= {})[label] = hold;
      if (reject !== (site.reject_at[label] ?? null)) (patch.reject_at ||= {})[label] = reject;
    });
    if (!Object.keys(patch).length) return toast("Nothing changed.");
    try {
      const out = await api("PATCH", "/v1/site", patch);
      Object.assign(site, out);
      config.hold_at = out.hold_at;
      config.reject_at = out.reject_at;
      toast(`Settings saved: ${Object.keys(patch).join(", ").replace(/_/g, " ")}.`);
    } catch (err) {
      const fields = Object.keys(fieldErrors(err));
      error.textContent = `${err.message}${fields.length ? ` (${fields.join(", ")})` : ""}`;
      error.hidden = false;
      error.scrollIntoView({ block: "nearest" });
    }
  });
  return form;
}

function deliveriesTable(endpoint, holder) {
  const load = async () => {
    clear(holder).append(h("p", { class: "muted", text: "Loading deliveries…" }));
    let page;
    try {
      page = await api("GET", `/v1/webhooks/${endpoint.id}/deliveries?limit=20`);
    } catch (error) {
      clear(holder).append(h("p", { class: "form-error", text: error.message }));
      return;
    }
    const rows = page.items.map((d) =>
      h(
        "tr",
        {},
        h("td", {}, timeEl(d.created_at)),
        h("td", { text: d.event_type }),
        h("td", {}, h("span", { class: `badge dl-${d.status}`, text: d.status })),
        h("td", { text: String(d.attempts) }),
        h("td", { text: d.last_status_code ? String(d.last_status_code) : "–" }),
        h("td", { class: "error-cell", text: d.last_error || "" }),
        h("td", {}, d.status !== "pending" ? h("button", { type: "button", class: "btn small ghost", text: "Redeliver", onclick: async () => { try { await api("POST", `/v1/webhooks/deliveries/${d.id}/redeliver`); toast(`Delivery ${d.id} queued again.`); load(); } catch (error) { toast(error.message, { kind: "error" }); } } }) : null),
      ),
    );
    clear(holder).append(
      rows.length
        ? h("table", { class: "deliveries" }, h("caption", { class: "muted", text: "Recent deliveries, newest first" }), h("thead", {}, h("tr", {}, ["When", "Event", "Status", "Tries", "HTTP", "Error", ""].map((t) => h("th", { scope: "col", text: t })))), h("tbody", {}, rows))
        : h("p", { class: "muted", text: "No deliveries yet." }),
    );
  };
  load();
}

function endpointCard(endpoint, reload) {
  const deliveries = h("div", { class: "delivery-holder" });
  const call = async (method, path, body, message) => {
    try {
      const out = await api(method, path, body);
      if (message) toast(message(out), { kind: out && out.ok === false ? "error" : "info" });
      reload();
    } catch (error) {
      toast(error.message, { kind: "error" });
    }
  };
  return h(
    "article",
    { class: "endpoint panel" },
    h("h3", {}, h("span", { class: "url", text: endpoint.url }), " ", h("span", { class: `badge ${endpoint.enabled ? "ok" : "bad"}`, text: endpoint.enabled ? "enabled" : "disabled" })),
    endpoint.description ? h("p", { text: endpoint.description }) : null,
    h("p", { class: "muted", text: `Events: ${endpoint.event_types ? endpoint.event_types.join(", ") : "all"}` }),
    endpoint.disabled_reason ? h("p", { class: "notice warn", text: `Disabled: ${endpoint.disabled_reason}` }) : null,
    endpoint.failing_since ? h("p", { class: "notice warn" }, "Failing since ", timeEl(endpoint.failing_since)) : null,
    h(
      "div",
      { class: "card-actions" },
      h("button", { type: "button", class: "btn small", text: "Send test ping", onclick: () => call("POST", `/v1/webhooks/${endpoint.id}/test`, undefined, (r) => (r.ok ? `Ping answered ${r.status_code} in ${r.latency_ms} ms.` : `Ping failed: ${r.error || `HTTP ${r.status_code}`}.`)) }),
      h("button", { type: "button", class: "btn small", text: endpoint.enabled ? "Disable" : "Enable", onclick: () => call("PATCH", `/v1/webhooks/${endpoint.id}`, { enabled: !endpoint.enabled }, (r) => `Endpoint ${r.enabled ? "enabled" : "disabled"}.`) }),
      h("button", { type: "button", class: "btn small ghost", text: "Deliveries", "aria-expanded": "false", onclick: (event) => { const open = event.target.getAttribute("aria-expanded") === "true"; event.target.setAttribute("aria-expanded", String(!open)); if (open) clear(deliveries); else deliveriesTable(endpoint, deliveries); } }),
      h("button", { type: "button", class: "btn small danger", text: "Delete", onclick: async () => { if (await confirmModal("Delete this endpoint?", [endpoint.url, "Its deliveries and their log go too."], "Delete", "danger")) call("DELETE", `/v1/webhooks/${endpoint.id}`, undefined, () => "Endpoint deleted."); } }),
    ),
    deliveries,
  );
}

function newEndpointForm(reload) {
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "panel new-endpoint" },
    h("h3", { text: "Add an endpoint" }),
    h("div", { class: "row" }, h("label", { for: "wh-url", text: "URL" }), h("input", { id: "wh-url", name: "url", type: "url", required: true, placeholder: "https://news.example/hooks/civility" })),
    h("div", { class: "row" }, h("label", { for: "wh-description", text: "Description" }), h("input", { id: "wh-description", name: "description", maxlength: 500 })),
    h("fieldset", { class: "event-types" }, h("legend", { text: "Events (none ticked: all)" }), config.event_types.map((type) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "event_types", value: type }), ` ${type}`))),
    error,
    h("button", { type: "submit", class: "btn primary", text: "Add endpoint" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const data = new FormData(form);
    const types = data.getAll("event_types");
    try {
      const out = await api("POST", "/v1/webhooks", { url: data.get("url"), description: data.get("description") || null, event_types: types.length ? types : null });
      form.reset();
      await modal("Endpoint added: copy its secret now", (body, done) => {
        append(body, [
          h("p", { text: "Receivers verify signatures with this secret. It is shown only this once." }),
          h("input", { class: "secret", readonly: true, value: out.secret, autofocus: true, "aria-label": "Signing secret", onfocus: (e) => e.target.select() }),
          h("div", { class: "dialog-actions" }, h("button", { type: "button", class: "btn primary", text: "Done", onclick: () => done(null) })),
        ]);
      });
      reload();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });
  return form;
}

async function webhooksSection(section) {
  const reload = () => webhooksSection(section);
  let endpoints;
  try {
    endpoints = (await api("GET", "/v1/webhooks")).items;
  } catch (error) {
    clear(section).append(h("h2", { text: "Webhooks" }), h("p", { class: "form-error", text: error.message }));
    return;
  }
  append(clear(section), [
    h("h2", { text: "Webhooks" }),
    endpoints.length ? endpoints.map((e) => endpointCard(e, reload)) : h("p", { class: "muted", text: "No endpoints yet." }),
    newEndpointForm(reload),
  ]);
}

export async function mountSettings(main) {
  clear(main).append(h("h1", { class: "page-title", text: "Settings" }), h("p", { class: "muted", text: "Loading…" }));
  let site;
  let samples;
  try {
    [site, samples] = await Promise.all([api("GET", "/v1/site"), recentScores()]);
  } catch (error) {
    clear(main).append(h("h1", { class: "page-title", text: "Settings" }), h("p", { class: "form-error", text: error.message }));
    return;
  }
  const hooks = h("section", { class: "webhooks" });
  const form = settingsForm(site, samples);
  clear(main).append(h("h1", { class: "page-title", text: `Settings · ${site.name}` }), form, hooks);
  calibrationPanel(form, site);
  main.focus();
  webhooksSection(hooks);
}
