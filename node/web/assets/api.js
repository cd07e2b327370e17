// The local API, as the page reaches it through its own server: JSON calls
// and the event stream. The browser's cookie is the page's only credential;
// nothing here holds a secret.

// APIError is an error answer: its code is the API's (or the page
// server's: web_unauthorized, ...), its message one sentence for a person.
export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// api calls the local API and returns its JSON answer.
export async function api(method, path, body) {
  const init = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new APIError(0, 'no_daemon', 'The daemon does not answer; is it running?');
  }
  const text = await res.text();
  let v = null;
  try { v = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const e = (v && v.error) || {};
    throw new APIError(res.status, e.code || 'http_' + res.status, e.message || `The daemon answered ${res.status}.`);
  }
  return v;
}

// p escapes a path segment.
export const p = encodeURIComponent;

// The event types the page follows (the API's ?types= takes prefixes).
const TYPES = ['events.lost', 'near.changed', 'contact.changed', 'me.changed', 'me.scope.changed',
  'me.presence.changed', 'me.name.changed', 'me.application.changed', 'endpoint.presence.changed',
  'endpoint.name.changed', 'invitation.changed', 'session.changed', 'session.message', 'session.lost'];

// Events follows the event stream: onEvent(type, data) for each event,
// onState('live' | 'reconnecting' | 'offline' | 'unauthorized') as the
// connection goes. The browser reconnects by itself with Last-Event-ID,
// and the daemon resends what the page missed (or says events.lost); when
// the browser gives up (the daemon stopped, or refused the cookie), the
// stream is opened again after a pause that grows, resuming after the last
// event seen.
export class Events {
  constructor(onEvent, onState) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.last = '';
    this.pause = 1000;
    this.open();
  }

  open() {
    const q = new URLSearchParams({ types: TYPES.join(',') });
    if (this.last) q.set('last_event_id', this.last);
    const es = new EventSource('/v1/events?' + q);
    this.es = es;
    es.onopen = () => { this.pause = 1000; this.onState('live'); };
    for (const t of TYPES) {
      es.addEventListener(t, (e) => {
        if (e.lastEventId) this.last = e.lastEventId;
        let ev;
        try { ev = JSON.parse(e.data); } catch { return; }
        this.onEvent(t, ev.data, ev.seq);
      });
    }
    es.onerror = () => {
      // The browser reconnects by itself unless it gave up (CLOSED); either
      // way, ask why the stream broke: a replaced token ends it for good.
      const gaveUp = es.readyState === EventSource.CLOSED;
      this.onState('reconnecting');
      api('GET', '/v1/version').then(
        () => { if (gaveUp) this.again('reconnecting'); },
        (err) => {
          if (err.code === 'web_unauthorized') {
            es.close();
            this.again('unauthorized');
          } else if (gaveUp) {
            this.again('offline');
          } else {
            this.onState('offline');
          }
        });
    };
  }

  again(state) {
    this.onState(state);
    if (state === 'unauthorized') return; // only a new token helps
    setTimeout(() => this.open(), this.pause);
    this.pause = Math.min(this.pause * 2, 15000);
  }
}

// Message data travels as base64; the page's messages are UTF-8 text.
export function textToB64(s) {
  let bin = '';
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function b64ToText(b64) {
  try {
    const bin = atob(b64 || '');
    return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch {
    return '';
  }
}
