// The sign-in form: posts the key as JSON; the server sets the session cookie.

const form = document.getElementById("sign-in");
const input = document.getElementById("key");
const error = document.getElementById("sign-in-error");
const button = form.querySelector("button");
// Disabled in the page until now, so Enter can never submit the key as a plain form.
button.disabled = false;

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ key: input.value.trim() }),
    });
    const payload = await response.json().catch(() => ({}));
    if (response.ok) {
      window.location.assign(payload.redirect);
      return;
    }
    error.textContent = payload.message || `Sign-in failed (HTTP ${response.status}).`;
  } catch {
    error.textContent = "The server cannot be reached.";
  } finally {
    button.disabled = false;
  }
  error.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.select();
});
