// DOM helpers. Every string from the server goes in as text (textContent / text nodes),
// never as HTML: comment bodies, names and titles are hostile input.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false || name === "value") continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  // After the children, so a <select> has its options when its value is set.
  if (attrs && attrs.value !== undefined && attrs.value !== null) el.value = attrs.value;
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

const UNITS = [
  ["d", 86400],
  ["h", 3600],
  ["min", 60],
];

export function age(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s`;
  for (const [unit, size] of UNITS) {
    if (seconds >= size) return `${Math.floor(seconds / size)} ${unit}`;
  }
  return "";
}

export function ago(iso) {
  if (!iso) return "";
  return `${age((Date.now() - Date.parse(iso)) / 1000)} ago`;
}

export function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function timeEl(iso) {
  return h("time", { datetime: iso, title: when(iso), text: ago(iso) });
}

// An http(s) URL to link to, or null: a site's article URL could be javascript:.
export function safeUrl(url) {
  if (typeof url !== "string") return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

let toastSeq = 0;

// A short message in the live region; errors go to the assertive one and stay longer.
export function toast(message, { kind = "info", action = null, ms = 6000 } = {}) {
  const region = document.getElementById(kind === "error" ? "alerts" : "toasts");
  const id = `toast-${++toastSeq}`;
  const close = () => node.remove();
  const node = h(
    "div",
    { class: `toast ${kind}`, id },
    h("span", { class: "toast-text", text: message }),
    action &&
      h("button", {
        type: "button",
        class: "btn small",
        text: action.label,
        onclick: () => {
          close();
          action.run();
        },
      }),
    h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss", text: "×", onclick: close }),
  );
  region.append(node);
  setTimeout(close, kind === "error" ? Math.max(ms, 10000) : ms);
  return node;
}

// A modal <dialog> built from `content`; resolves with the value passed to `done`.
export function modal(title, build, { wide = false } = {}) {
  return new Promise((resolve) => {
    const heading = h("h2", { text: title, id: `dlg-${++toastSeq}` });
    const body = h("div", { class: "dialog-body" });
    const dialog = h(
      "dialog",
      { class: wide ? "wide" : "", "aria-labelledby": heading.id },
      h(
        "header",
        { class: "dialog-head" },
        heading,
        h("button", { type: "button", class: "toast-close", "aria-label": "Close", text: "×", onclick: () => done(null) }),
      ),
      body,
    );
    let settled = false;
    function done(value) {
      if (settled) return;
      settled = true;
      dialog.close();
      dialog.remove();
      resolve(value);
    }
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      done(null);
    });
    document.body.append(dialog);
    build(body, done);
    dialog.showModal();
    const first = body.querySelector("[autofocus]");
    if (first) first.focus();
  });
}

export function confirmModal(title, lines, confirmLabel, kind = "primary") {
  return modal(title, (body, done) => {
    append(body, lines.map((line) => h("p", { text: line })));
    body.append(
      h(
        "div",
        { class: "dialog-actions" },
        h("button", { type: "button", class: "btn", text: "Cancel", onclick: () => done(false) }),
        h("button", { type: "button", class: `btn ${kind}`, text: confirmLabel, autofocus: true, onclick: () => done(true) }),
      ),
    );
  });
}
