/*! Civility comment widget: <div data-civility-site="…" data-civility-article="…"></div>
 * <script src="https://civility.example/embed.js" async></script>. No framework, no cookies,
 * nothing fetched but from the server that served this file. Text is always set as text. */
(function () {
  "use strict";
  if (window.Civility && window.Civility.version) return; // loaded twice: the first one serves
  var VERSION = "1";
  var here = document.currentScript;
  var BASE = here && here.src ? new URL(here.src, location.href).origin : location.origin;
  var REASONS = {
    offensive: "Offensive",
    abusive: "Abusive or harassing",
    spam: "Spam or advertising",
    other: "Something else",
  };
  var LINK = /\bhttps?:\/\/[^\s<>"'`]+/g;
  var TRAILING = /[.,;:!?)\]}'"]+$/;
  var CSS = [
    ".civility{--civility-font:inherit;--civility-text:inherit;--civility-background:transparent;",
    "--civility-accent:#0b57d0;--civility-on-accent:#fff;--civility-border:rgba(128,128,128,.45);",
    "--civility-pending-text:#5c4300;--civility-pending-background:#fff4ce;",
    "--civility-error:#a50e0e;--civility-radius:6px;--civility-gap:.75rem;",
    "font-family:var(--civility-font);color:var(--civility-text);",
    "background:var(--civility-background);line-height:1.5;overflow-wrap:anywhere}",
    "@media (prefers-color-scheme:dark){.civility:not([data-civility-theme=light]){",
    "--civility-accent:#8ab4f8;--civility-on-accent:#0b1a33;--civility-pending-text:#ffe8a3;",
    "--civility-pending-background:#3d3418;--civility-error:#f6aea9}}",
    ".civility[data-civility-theme=dark]{--civility-accent:#8ab4f8;--civility-on-accent:#0b1a33;",
    "--civility-pending-text:#ffe8a3;--civility-pending-background:#3d3418;--civility-error:#f6aea9}",
    ".civility *{box-sizing:border-box}",
    ".civility-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);",
    "white-space:nowrap}",
    ".civility-bar{display:flex;flex-wrap:wrap;gap:var(--civility-gap);align-items:center;",
    "justify-content:space-between;margin:var(--civility-gap) 0}",
    ".civility-count{margin:0;font-weight:bold}",
    ".civility-thread,.civility-replies{list-style:none;margin:0;padding:0}",
    ".civility-replies{margin-left:1rem;padding-left:.75rem;border-left:2px solid var(--civility-border)}",
    ".civility-replies .civility-replies .civility-replies{margin-left:0;padding-left:.5rem}",
    ".civility-comment{margin:var(--civility-gap) 0}",
    ".civility-head{display:flex;flex-wrap:wrap;gap:.25rem .5rem;align-items:baseline}",
    ".civility-author{font-weight:bold}",
    ".civility-time{font-size:.875em}",
    ".civility-body p{margin:.25rem 0}",
    ".civility-body a{color:var(--civility-accent)}",
    ".civility-badge{font-size:.875em;padding:0 .4rem;border-radius:var(--civility-radius);",
    "color:var(--civility-pending-text);background:var(--civility-pending-background)}",
    ".civility-actions{display:flex;flex-wrap:wrap;gap:.5rem}",
    ".civility:not(.civility-writable) .civility-actions{display:none}",
    ".civility button,.civility select,.civility input,.civility textarea{font:inherit;",
    "color:inherit;background:transparent;border:1px solid var(--civility-border);",
    "border-radius:var(--civility-radius);padding:.3rem .7rem;min-height:2.25rem}",
    ".civility textarea,.civility input[type=text]{width:100%;display:block}",
    ".civility button{cursor:pointer;border-color:currentColor}",
    ".civility button.civility-primary{background:var(--civility-accent);",
    "color:var(--civility-on-accent);border-color:var(--civility-accent)}",
    ".civility :focus-visible{outline:3px solid var(--civility-accent);outline-offset:2px}",
    ".civility-form,.civility-report{display:grid;gap:.4rem;margin:var(--civility-gap) 0}",
    ".civility-form label,.civility-report legend{font-weight:bold}",
    ".civility-report fieldset{border:0;margin:0;padding:0;display:grid;gap:.2rem}",
    ".civility-report input{min-height:auto}",
    ".civility-row{display:flex;flex-wrap:wrap;gap:.5rem}",
    ".civility-error{color:var(--civility-error);margin:0}",
    ".civility-note{margin:.25rem 0;font-style:italic}",
  ].join("");

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function addStyles() {
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
    } catch (e) {
      document.head.appendChild(el("style", { text: CSS })); // older browsers
    }
  }

  function request(path, options) {
    options = options || {};
    var headers = { Accept: "application/json" };
    Object.keys(options.headers || {}).forEach(function (k) { headers[k] = options.headers[k]; });
    if (options.json) headers["Content-Type"] = "application/json";
    return fetch(BASE + path, {
      method: options.method || "GET",
      headers: headers,
      body: options.json ? JSON.stringify(options.json) : undefined,
      mode: "cors",
      credentials: "omit",
    }).then(function (answer) {
      return answer.json().catch(function () { return {}; }).then(function (body) {
        if (answer.ok) return body;
        var error = new Error(body.message || "The comment service answered " + answer.status + ".");
        error.status = answer.status;
        throw error;
      });
    });
  }

  // Text as text: paragraphs, line breaks and http(s) links, never markup.
  function bodyNodes(text) {
    return text.split(/\n{2,}/).map(function (paragraph) {
      var p = el("p");
      paragraph.split("\n").forEach(function (line, n) {
        if (n) p.appendChild(el("br"));
        var last = 0;
        line.replace(LINK, function (match, offset) {
          var url = match.replace(TRAILING, "");
          p.appendChild(document.createTextNode(line.slice(last, offset)));
          p.appendChild(el("a", { href: url, rel: "nofollow ugc noopener", text: url }));
          last = offset + url.length;
          return match;
        });
        p.appendChild(document.createTextNode(line.slice(last)));
      });
      return p;
    });
  }

  var UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
    ["hour", 3600], ["minute", 60]];
  function relative(iso) {
    var seconds = (new Date(iso).getTime() - Date.now()) / 1000;
    var format = new Intl.RelativeTimeFormat(document.documentElement.lang || undefined,
      { numeric: "auto" });
    for (var i = 0; i < UNITS.length; i++) {
      if (Math.abs(seconds) >= UNITS[i][1]) {
        return format.format(Math.round(seconds / UNITS[i][1]), UNITS[i][0]);
      }
    }
    return format.format(0, "second");
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  var uid = 0;
  function Widget(root) {
    this.root = root;
    this.site = root.getAttribute("data-civility-site");
    this.article = root.getAttribute("data-civility-article");
    this.order = root.getAttribute("data-civility-order") === "newest" ? "newest" : "oldest";
    this.token = root.getAttribute("data-civility-token") || token;
    this.pollMs = Number(root.getAttribute("data-civility-poll-ms")) || 0;
    this.pageSize = Number(root.getAttribute("data-civility-page-size")) || 50;
    this.id = "civility-" + ++uid;
    this.items = {};
    this.orphans = {};
    this.storeKey = "civility:v1:" + this.site + ":" + this.article;
    this.build();
    this.start();
  }

  Widget.prototype.query = function (extra) {
    return "?site=" + encodeURIComponent(this.site) + (extra || "");
  };

  Widget.prototype.build = function () {
    var self = this;
    this.live = el("div", { class: "civility-sr", role: "status", "aria-live": "polite" });
    this.count = el("p", { class: "civility-count", text: "Loading comments…" });
    this.sort = el("select", { id: this.id + "-order", onchange: function () {
      self.order = self.sort.value;
      self.reload();
    } }, [
      el("option", { value: "oldest", text: "Oldest first", selected: this.order === "oldest" }),
      el("option", { value: "newest", text: "Newest first", selected: this.order === "newest" }),
    ]);
    this.composer = el("div");
    this.thread = el("ol", { class: "civility-thread", "aria-label": "Comments" });
    this.more = el("button", { type: "button", hidden: true, text: "Load more comments",
      onclick: function () { self.loadPage(); } });
    this.box = el("section", { class: "civility", "aria-label": "Comments" }, [
      this.live,
      this.composer,
      el("div", { class: "civility-bar" }, [
        this.count,
        el("span", {}, [el("label", { for: this.id + "-order", text: "Sort " }), this.sort]),
      ]),
      this.thread,
      this.more,
    ]);
    var theme = this.root.getAttribute("data-civility-theme");
    if (theme) this.box.setAttribute("data-civility-theme", theme);
    this.root.textContent = "";
    this.root.appendChild(this.box);
  };

  Widget.prototype.announce = function (text) {
    var live = this.live;
    live.textContent = "";
    setTimeout(function () { live.textContent = text; }, 50);
  };

  Widget.prototype.start = function () {
    var self = this;
    request("/v1/embed/articles/" + encodeURIComponent(this.article) + this.query())
      .then(function (meta) {
        self.meta = meta;
        // Named by its article (set as an attribute: text, never markup), so two widgets
        // on one page are two distinct regions.
        if (meta.title) self.box.setAttribute("aria-label", "Comments on " + meta.title);
        self.pollMs = self.pollMs || meta.poll_ms || 5000;
        self.total = meta.count;
        self.showCount();
        self.renderComposer();
        return self.loadPage();
      })
      .then(function () { self.restoreOwn(); })
      .catch(function (error) { self.count.textContent = "Comments are unavailable: " + error.message; });
  };

  Widget.prototype.reload = function () {
    this.thread.textContent = "";
    this.items = {};
    this.orphans = {};
    this.cursor = null;
    var self = this;
    this.loadPage().then(function () { self.restoreOwn(); });
  };

  Widget.prototype.showCount = function () {
    this.count.textContent = plural(this.total, "comment", "comments");
  };

  Widget.prototype.writable = function () {
    var mode = this.meta && this.meta.browser_submissions;
    return this.meta && this.meta.comments_open &&
      (mode === "anonymous" || (mode === "sso" && !!this.token));
  };

  Widget.prototype.renderComposer = function () {
    this.box.classList.toggle("civility-writable", !!this.writable());
    this.composer.textContent = "";
    var mode = this.meta.browser_submissions;
    if (!this.meta.comments_open) {
      this.composer.appendChild(el("p", { class: "civility-note", text: "Comments are closed." }));
    } else if (mode === "sso" && !this.token) {
      this.composer.appendChild(el("p", { class: "civility-note",
        text: "Sign in on this site to leave a comment." }));
    } else if (this.writable()) {
      this.composer.appendChild(this.form(null));
    }
  };

  Widget.prototype.setToken = function (value) {
    this.token = value || null;
    if (this.meta) this.renderComposer();
  };

  // The comment form; with ``parent`` a reply form under that comment.
  Widget.prototype.form = function (parent) {
    var self = this;
    var n = ++uid;
    var anonymous = this.meta.browser_submissions === "anonymous" && !this.token;
    var label = parent ? "Reply to " + parent.author.name : "Leave a comment";
    var body = el("textarea", { id: this.id + "-body-" + n, rows: 4, required: true,
      maxlength: this.meta.max_body_chars });
    var name = anonymous ? el("input", { type: "text", id: this.id + "-name-" + n,
      autocomplete: "nickname", maxlength: 200, required: true }) : null;
    if (name) {
      try { name.value = localStorage.getItem("civility:name") || ""; } catch (e) { /* private */ }
    }
    var error = el("p", { class: "civility-error", role: "alert" });
    var send = el("button", { type: "submit", class: "civility-primary",
      text: parent ? "Post reply" : "Post comment" });
    var form = el("form", { class: "civility-form", "aria-label": parent ? label : null,
      novalidate: true }, [
      el("label", { for: body.id, text: parent ? "Your reply" : label }),
      body,
      name && el("label", { for: name.id, text: "Your name" }),
      name,
      error,
      el("div", { class: "civility-row" }, [
        send,
        parent && el("button", { type: "button", text: "Cancel", onclick: function () {
          self.closeReply(parent);
        } }),
      ]),
    ]);
    form.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && parent) self.closeReply(parent);
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.textContent = "";
      var fields = { body: body.value };
      if (parent) fields.parent_id = parent.id;
      if (name) fields.name = name.value.trim();
      if (!fields.body.trim()) { error.textContent = "Write something first."; body.focus(); return; }
      if (name && !fields.name) { error.textContent = "Give a name to show."; name.focus(); return; }
      send.disabled = true;
      self.submit(fields).then(function (comment) {
        if (name) { try { localStorage.setItem("civility:name", fields.name); } catch (e) { /* ok */ } }
        body.value = "";
        if (parent) self.closeReply(parent, true);
        self.announce("Your comment is awaiting moderation.");
        var item = self.items[comment.id];
        if (item) item.node.querySelector(".civility-entry").focus();
      }).catch(function (failure) {
        error.textContent = failure.message;
      }).then(function () { send.disabled = false; });
    });
    return form;
  };

  Widget.prototype.headers = function () {
    return this.token ? { Authorization: "Bearer " + this.token } : {};
  };

  Widget.prototype.submit = function (fields) {
    var self = this;
    var path = "/v1/embed/articles/" + encodeURIComponent(this.article) + "/comments";
    return request(path + this.query(), { method: "POST", json: fields, headers: this.headers() })
      .then(function (comment) {
        self.meta.registered = true;
        self.remember(comment);
        self.place(comment, true);
        self.watch(comment.id);
        return comment;
      });
  };

  // -- the reader's own comments, known by their reader tokens (this browser only) --
  Widget.prototype.stored = function () {
    try { return JSON.parse(localStorage.getItem(this.storeKey) || "[]"); } catch (e) { return []; }
  };

  Widget.prototype.store = function (entries) {
    try { localStorage.setItem(this.storeKey, JSON.stringify(entries.slice(-50))); } catch (e) { /* ok */ }
  };

  Widget.prototype.remember = function (comment) {
    var entries = this.stored().filter(function (e) { return e.id !== comment.id; });
    entries.push({ id: comment.id, token: comment.reader_token });
    this.store(entries);
  };

  Widget.prototype.forget = function (id) {
    this.store(this.stored().filter(function (e) { return e.id !== id; }));
  };

  Widget.prototype.ownStatus = function (entry) {
    return request("/v1/embed/comments/" + entry.id + this.query(),
      { headers: { "X-Civility-Reader-Token": entry.token } });
  };

  Widget.prototype.restoreOwn = function () {
    var self = this;
    this.stored().forEach(function (entry) {
      self.ownStatus(entry).then(function (comment) {
        if (comment.status === "pending") {
          self.place(comment, true);
          self.watch(comment.id);
        } else {
          self.forget(comment.id);
        }
      }).catch(function (error) { if (error.status === 404) self.forget(entry.id); });
    });
  };

  Widget.prototype.watch = function (id) {
    var self = this;
    var entry = this.stored().filter(function (e) { return e.id === id; })[0];
    if (!entry) return;
    setTimeout(function () {
      self.ownStatus(entry).then(function (comment) {
        var item = self.items[id];
        if (comment.status === "pending") return self.watch(id);
        self.forget(id);
        if (!item) return;
        item.badge.remove();
        if (comment.status === "approved") {
          item.node.classList.remove("civility-own-pending");
          item.comment.status = "approved";
          item.node.querySelector(".civility-body").after(self.actions(item.comment));
          self.total += 1;
          self.showCount();
          self.announce("Your comment was published.");
        } else {
          item.node.querySelector(".civility-body").after(el("p", { class: "civility-note",
            text: "This comment was not published. Only you can see it, until you leave the page." }));
          self.announce("Your comment was not published.");
        }
      }).catch(function () { self.watch(id); });
    }, this.pollMs);
  };

  // -- the thread --
  Widget.prototype.loadPage = function () {
    var self = this;
    if (!this.meta.registered) { // no comment yet, not even an article: nothing to ask for
      this.thread.setAttribute("aria-busy", "false");
      return Promise.resolve(null);
    }
    var path = "/v1/articles/" + encodeURIComponent(this.article) + "/comments";
    var extra = "&order=" + this.order + "&limit=" + this.pageSize +
      (this.cursor ? "&cursor=" + encodeURIComponent(this.cursor) : "");
    this.thread.setAttribute("aria-busy", "true");
    this.more.disabled = true;
    return request(path + this.query(extra)).then(function (page) {
      var first = null;
      page.items.forEach(function (comment) {
        comment.status = "approved";
        var node = self.place(comment, false);
        first = first || node;
      });
      self.cursor = page.next_cursor;
      self.more.hidden = !self.cursor;
      self.more.disabled = false;
      self.thread.setAttribute("aria-busy", "false");
      if (!self.cursor) {
        // Replies whose parent is not published: shown at the end, not lost.
        Object.keys(self.orphans).forEach(function (parentId) {
          self.orphans[parentId].forEach(function (node) { self.thread.appendChild(node); });
        });
        self.orphans = {};
      }
      return first;
    });
  };

  Widget.prototype.place = function (comment, own) {
    if (this.items[comment.id]) return this.items[comment.id].node;
    var node = this.entry(comment, own);
    var parent = comment.parent_id && this.items[comment.parent_id];
    if (parent) {
      parent.replies.appendChild(node);
    } else if (comment.parent_id && !own) {
      (this.orphans[comment.parent_id] = this.orphans[comment.parent_id] || []).push(node);
    } else if (own && this.order === "newest") {
      this.thread.insertBefore(node, this.thread.firstChild);
    } else {
      this.thread.appendChild(node);
    }
    var waiting = this.orphans[comment.id];
    if (waiting) {
      waiting.forEach(function (child) { this.items[comment.id].replies.appendChild(child); }, this);
      delete this.orphans[comment.id];
    }
    return node;
  };

  Widget.prototype.entry = function (comment, own) {
    var author = (comment.author && comment.author.name) || "Anonymous";
    comment.author = { name: author };
    var headingId = this.id + "-by-" + comment.id;
    var time = el("time", { class: "civility-time", datetime: comment.created_at,
      title: new Date(comment.created_at).toLocaleString(), text: relative(comment.created_at) });
    var badge = own && comment.status !== "approved"
      ? el("span", { class: "civility-badge", text: "Awaiting moderation" }) : null;
    var replies = el("ol", { class: "civility-replies" });
    var body = el("div", { class: "civility-body" }, bodyNodes(comment.body));
    var article = el("article", { class: "civility-entry", tabindex: -1,
      "aria-labelledby": headingId }, [
      el("header", { class: "civility-head" }, [
        el("span", { class: "civility-author", id: headingId, text: author }),
        time,
        badge,
      ]),
      body,
      comment.status === "approved" ? this.actions(comment) : null,
    ]);
    var node = el("li", { class: "civility-comment", "data-id": comment.id }, [article, replies]);
    if (badge) node.classList.add("civility-own-pending");
    this.items[comment.id] = { node: node, replies: replies, badge: badge, comment: comment,
      time: time };
    return node;
  };

  Widget.prototype.actions = function (comment) {
    var self = this;
    var name = comment.author.name;
    return el("div", { class: "civility-actions" }, [
      el("button", { type: "button", text: "Reply", "aria-label": "Reply to " + name,
        "aria-expanded": "false", onclick: function () { self.openReply(comment); } }),
      el("button", { type: "button", text: "Report", "aria-label": "Report comment by " + name,
        "aria-expanded": "false", onclick: function () { self.openReport(comment, this); } }),
    ]);
  };

  Widget.prototype.openReply = function (comment) {
    var item = this.items[comment.id];
    if (!this.writable()) return;
    if (!item.replyForm) {
      item.replyForm = this.form(comment);
      item.node.querySelector(".civility-entry").appendChild(item.replyForm);
      item.node.querySelector("[aria-label^='Reply to']").setAttribute("aria-expanded", "true");
    }
    item.replyForm.querySelector("textarea").focus();
  };

  Widget.prototype.closeReply = function (comment, sent) {
    var item = this.items[comment.id];
    if (!item.replyForm) return;
    item.replyForm.remove();
    item.replyForm = null;
    var button = item.node.querySelector("[aria-label^='Reply to']");
    button.setAttribute("aria-expanded", "false");
    if (!sent) button.focus();
  };

  Widget.prototype.openReport = function (comment, button) {
    var self = this;
    var item = this.items[comment.id];
    if (item.reportForm) { item.reportForm.querySelector("input").focus(); return; }
    var n = ++uid;
    var error = el("p", { class: "civility-error", role: "alert" });
    var note = el("textarea", { id: this.id + "-note-" + n, rows: 2, maxlength: 2000 });
    var choices = this.meta.report_reasons.map(function (reason, i) {
      var id = self.id + "-reason-" + n + "-" + reason;
      return el("div", {}, [
        el("input", { type: "radio", name: self.id + "-reason-" + n, id: id, value: reason,
          checked: i === 0 }),
        el("label", { for: id, text: " " + (REASONS[reason] || reason) }),
      ]);
    });
    function close(focusButton) {
      form.remove();
      item.reportForm = null;
      button.setAttribute("aria-expanded", "false");
      if (focusButton) button.focus();
    }
    var form = el("form", { class: "civility-report",
      "aria-label": "Report comment by " + comment.author.name }, [
      el("fieldset", {}, [el("legend", { text: "Why should moderators look at this?" })]
        .concat(choices)),
      el("label", { for: note.id, text: "Anything to add? (optional)" }),
      note,
      error,
      el("div", { class: "civility-row" }, [
        el("button", { type: "submit", class: "civility-primary", text: "Send report" }),
        el("button", { type: "button", text: "Cancel", onclick: function () { close(true); } }),
      ]),
    ]);
    form.addEventListener("keydown", function (event) {
      if (event.key === "Escape") close(true);
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var reason = form.querySelector("input:checked").value;
      var fields = { reason: reason };
      if (note.value.trim()) fields.note = note.value.trim();
      request("/v1/embed/comments/" + comment.id + "/reports" + self.query(),
        { method: "POST", json: fields, headers: self.headers() })
        .then(function () {
          close(true);
          button.disabled = true;
          button.textContent = "Reported";
          self.announce("Thank you: your report was sent to the moderators.");
        })
        .catch(function (failure) { error.textContent = failure.message; });
    });
    item.reportForm = form;
    button.setAttribute("aria-expanded", "true");
    button.parentNode.after(form);
    form.querySelector("input").focus();
  };

  Widget.prototype.tick = function () {
    Object.keys(this.items).forEach(function (id) {
      var item = this.items[id];
      item.time.textContent = relative(item.comment.created_at);
    }, this);
  };

  var widgets = [];
  var token = null;
  function mount() {
    addStyles();
    var roots = document.querySelectorAll("[data-civility-site][data-civility-article]");
    Array.prototype.forEach.call(roots, function (root) {
      if (!root.civility) { root.civility = new Widget(root); widgets.push(root.civility); }
    });
    setInterval(function () { widgets.forEach(function (w) { w.tick(); }); }, 60000);
  }

  window.Civility = {
    version: VERSION,
    // Sign the reader in (or out, with null): a token the site's backend signed for them.
    setToken: function (value) {
      token = value || null;
      widgets.forEach(function (widget) { widget.setToken(token); });
    },
    widgets: widgets,
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", go);
  else go();
  function go() {
    mount();
    document.dispatchEvent(new Event("civility:ready"));
  }
})();
