// The dashboard's entry point: routes between the queue and (for admins) the settings.

import { api, getConfig } from "./api.js";
import { toast } from "./dom.js";
import { showHelp } from "./panels.js";
import { mountQueue, unmountQueue } from "./queue.js";
import { mountSettings } from "./settings.js";

const config = getConfig();
const main = document.getElementById("main");
let view = null;

function route() {
  const wanted = location.hash.startsWith("#settings") && config.role === "admin" ? "settings" : "queue";
  for (const link of document.querySelectorAll(".nav a")) {
    if (link.dataset.view === wanted) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (wanted === view) return;
  if (view === "queue") unmountQueue();
  view = wanted;
  if (wanted === "settings") mountSettings(main);
  else mountQueue(main);
}

document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await api("POST", config.sign_out_url);
  } catch (error) {
    toast(`Sign-out failed: ${error.message}`, { kind: "error" });
    return;
  }
  sessionStorage.clear();
  location.assign(location.pathname);
});
document.getElementById("help-button").addEventListener("click", showHelp);
window.addEventListener("hashchange", route);
route();
