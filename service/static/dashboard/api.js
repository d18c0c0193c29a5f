// The review API, called with the session cookie and the session's CSRF token.

const config = JSON.parse(document.getElementById("civility-config").textContent);

export function getConfig() {
  return config;
}

export class ApiError extends Error {
  constructor(status, payload) {
    super((payload && payload.message) || `HTTP ${status}`);
    this.status = status;
    this.payload = payload || {};
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = config.csrf_token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, { message: "The server cannot be reached; retrying." });
  }
  const payload = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.status === 401) {
    // The session ended (expired, signed out elsewhere, key revoked): back to sign-in.
    window.location.assign(window.location.pathname);
  }
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// "Invalid hold_at: …" plus each field's messages, for forms.
export function fieldErrors(error) {
  const errors = (error.payload && error.payload.errors) || {};
  return errors.json || errors.query || {};
}
