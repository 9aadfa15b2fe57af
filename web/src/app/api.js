/** The server's patient API (docs/spec/protocol.md): JSON in and out, one error shape. */

export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store", redirect: "error" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch {
    throw new ApiError(0, "network", "We could not reach the server. Please check your internet connection and try again.");
  }
  if (response.status === 204) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const error = payload && payload.error;
    if (error && typeof error.code === "string")
      throw new ApiError(response.status, error.code, String(error.message ?? "The request failed."), error.details ?? []);
    throw new ApiError(response.status, "http_error", `The server answered with an error (${response.status}). Please try again later.`);
  }
  return payload;
}
