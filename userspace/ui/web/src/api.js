// The HTTP API of `orion ui` (docs/ui.md), with the page's access token: from the page's own URL
// (?token=...), sent as `Authorization: Bearer` on requests and as ?token= on EventSource, which
// cannot send headers.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function tokenFromUrl(href = window.location.href) {
  return new URL(href).searchParams.get('token') || '';
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  async request(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: { Authorization: `Bearer ${this.token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, `orion ui cannot be reached (${e.message}): is it still running?`);
    }
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!response.ok) {
      let message = (json && json.error) || text || response.statusText;
      if (response.status === 401) {
        message = `the access token was refused (${message}): open the URL that orion ui printed, with its ?token=`;
      }
      throw new ApiError(response.status, message);
    }
    return json;
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body || {}); }
  delete(path) { return this.request('DELETE', path); }

  eventsUrl(id) {
    return `/api/captures/${encodeURIComponent(id)}/events?token=${encodeURIComponent(this.token)}`;
  }
}
