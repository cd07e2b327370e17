// peercollab's page. It loads what the daemon knows once, then follows the
// event stream to keep it current (no polling), and renders it (views.js).
// Every action is one or two calls of the local API.

import { api, p, APIError, Events, textToB64 } from './api.js';
import { say, download } from './dom.js';
import { S, me, nameOf, nearMe, CHAT_APP } from './state.js';
import { A, renderAll } from './views.js';

const $ = (id) => document.getElementById(id);

// changed renders the page once the current burst of changes is applied.
let queued = false;
function changed() {
  if (queued) return;
  queued = true;
  queueMicrotask(() => {
    queued = false;
    if (S.ready) renderAll();
  });
}

// act runs an action: its sentence, or its error's, goes to the status line.
async function act(fn) {
  try {
    const msg = await fn();
    if (msg) say(msg);
  } catch (e) {
    say(e.message, true);
  }
  changed();
}

// Applying what the daemon says.

const time = (t) => Date.parse(t) || 0;
const STATE_ORDER = { forming: 0, running: 1, ended: 2 };

function putInvitation(i) {
  const old = S.invitations.get(i.id);
  if (old && time(old.updated) > time(i.updated)) return; // an older copy
  if (i.peer_name && S.names.get(i.peer) !== i.peer_name) {
    S.names.set(i.peer, i.peer_name);
    S.rev++;
  }
  S.invitations.set(i.id, i);
}

function putSession(s) {
  const old = S.sessions.get(s.id);
  if (old) {
    const a = STATE_ORDER[old.state] ?? 0, b = STATE_ORDER[s.state] ?? 0;
    if (a > b || (a === b && old.version > s.version)) return; // an older copy
  }
  S.sessions.set(s.id, s);
  if (S.view === 'session' && S.session === s.id && !S.messages.has(s.id)) loadMessages(s.id);
}

function putMessage(m) {
  const box = S.messages.get(m.session);
  if (box && !box.seen.has(m.index)) {
    box.seen.add(m.index);
    box.list.push(m);
    const n = box.list.length;
    if (n > 1 && box.list[n - 2].index > m.index) box.list.sort((a, b) => a.index - b.index);
  }
  const looking = S.view === 'session' && S.session === m.session && document.visibilityState === 'visible';
  if (!looking && m.sender !== me()) S.unread.set(m.session, (S.unread.get(m.session) || 0) + 1);
}

function loadMessages(sid) {
  if (!sid) return Promise.resolve();
  if (!S.messages.has(sid)) {
    const box = { list: [], seen: new Set(), loaded: false };
    S.messages.set(sid, box);
    box.promise = fetchMessages(sid, box);
  }
  return S.messages.get(sid).promise;
}

async function fetchMessages(sid, box) {
  try {
    for (const m of (await api('GET', `/v1/sessions/${p(sid)}/messages`)) || []) {
      if (!box.seen.has(m.index)) {
        box.seen.add(m.index);
        box.list.push(m);
      }
    }
    box.list.sort((a, b) => a.index - b.index);
    box.loaded = true;
  } catch (e) {
    // Not known here yet (an invitation just accepted): the session's
    // event loads them.
    S.messages.delete(sid);
    if (e.code !== 'session_not_found') say(e.message, true);
  }
  changed();
}

function apply(type, d) {
  switch (type) {
    case 'events.lost': // the daemon restarted, or the page fell too far behind
      reload();
      return;
    case 'near.changed':
      if (d.change === 'deleted') S.near.delete(d.person.peer_id);
      else S.near.set(d.person.peer_id, d.person);
      S.rev++;
      break;
    case 'contact.changed': {
      const pid = d.contact.peer_id;
      S.details.delete(pid);
      if (d.change === 'deleted') {
        S.contacts.delete(pid);
        S.open.delete(pid);
      } else {
        S.contacts.set(pid, d.contact);
        if (S.open.has(pid)) loadDetails(pid);
      }
      S.rev++;
      break;
    }
    case 'me.changed':
      if (S.id) Object.assign(S.id, { display_name: d.contact.display_name, email: d.contact.email });
      break;
    case 'me.presence.changed':
      if (S.endpoint) S.endpoint.presence = d.presence;
      break;
    case 'me.name.changed':
      if (S.endpoint) S.endpoint.endpoint_name = d.endpoint_name;
      break;
    case 'me.scope.changed':
      if (S.endpoint) S.endpoint.scope = d.scope;
      if (!nearMe()) S.near.clear();
      else api('GET', '/v1/near').then((l) => { for (const x of l || []) S.near.set(x.peer_id, x); S.rev++; changed(); }, () => {});
      break;
    case 'me.application.changed':
      if (S.endpoint) {
        const apps = (S.endpoint.applications || []).filter((a) => a.id !== d.application.id);
        if (d.change !== 'deleted') apps.push(d.application);
        S.endpoint.applications = apps;
      }
      break;
    case 'endpoint.presence.changed':
    case 'endpoint.name.changed': {
      const w = S.watching.get(d.peer) || { peer: d.peer, data: {} };
      w.data = { ...w.data, ...(d.presence ? { presence: d.presence } : { endpoint_name: d.endpoint_name }) };
      w.state = 'following';
      S.watching.set(d.peer, w);
      break;
    }
    case 'invitation.changed':
      putInvitation(d);
      break;
    case 'session.changed':
      putSession(d);
      break;
    case 'session.message':
      putMessage(d);
      break;
  }
  changed();
}

// Events that come while the page (re)loads wait for it.
let loading = null;
const waiting = [];

function onEvent(type, data) {
  if (loading) waiting.push([type, data]);
  else apply(type, data);
}

// reload fetches everything the page shows, then applies the events that
// came meanwhile.
function reload() {
  if (loading) return loading;
  loading = (async () => {
    const soft = (path, dflt) => api('GET', path).catch((e) => {
      if (e.code === 'web_unauthorized') throw e;
      return dflt;
    });
    const [id, endpoint, near, contacts, watching, invs, sessions, policy] = await Promise.all([
      api('GET', '/v1/id'), api('GET', '/v1/me/endpoint'), soft('/v1/near', []), soft('/v1/contacts', []),
      soft('/v1/watching', []), soft('/v1/invitations', { invitations: [] }), soft('/v1/sessions', []),
      soft('/v1/invitations/policy', { policy: '' })]);
    S.id = id;
    S.endpoint = endpoint;
    S.near = new Map((near || []).map((x) => [x.peer_id, x]));
    S.contacts = new Map((contacts || []).map((x) => [x.peer_id, x]));
    S.watching = new Map((watching || []).map((x) => [x.peer, x]));
    S.invitations = new Map();
    for (const i of invs.invitations || []) putInvitation(i);
    S.details.clear();
    S.messages.clear();
    S.sessions = new Map();
    for (const s of sessions || []) putSession(s);
    S.policy = policy.policy;
    S.rev++;
  })().finally(() => {
    loading = null;
    for (const [t, d] of waiting.splice(0)) apply(t, d);
    if (S.view === 'session') loadMessages(S.session);
    changed();
  });
  return loading;
}

function onConn(state) {
  const el = $('conn');
  el.dataset.state = state;
  el.textContent = { live: 'live', reconnecting: 'reconnecting…', offline: 'the daemon does not answer', unauthorized: 'closed' }[state] || state;
  if (state === 'unauthorized') {
    $('gone').hidden = false;
    for (const s of document.querySelectorAll('main > section')) s.hidden = true;
  }
}

// Routes: #near, #contacts, #invitations, #sessions, #session/ID, #me.

const VIEWS = ['near', 'contacts', 'invitations', 'sessions', 'session', 'me'];

function route(focus) {
  const [view, arg] = location.hash.slice(1).split('/');
  S.view = VIEWS.includes(view) ? view : 'near';
  S.session = S.view === 'session' ? decodeURIComponent(arg || '') : '';
  if (!$('gone').hidden) return;
  for (const sec of document.querySelectorAll('main > section')) sec.hidden = sec.dataset.view !== S.view;
  if (S.view === 'session') {
    S.unread.delete(S.session);
    $('message-log')._first = undefined;
    if (S.ready) loadMessages(S.session);
  }
  say('');
  changed();
  if (focus) $('h-' + S.view).focus();
}

// Actions.

function loadDetails(pid) {
  api('GET', `/v1/contacts/${p(pid)}`).then((d) => {
    S.details.set(pid, d);
    changed();
  }, (e) => say(e.message, true));
}

async function setPresence(status, text) {
  S.endpoint = await api('PUT', '/v1/me/presence', { status, text });
  return 'Your presence is ' + $('me-quick').selectedOptions[0]?.textContent.toLowerCase() + ' now.';
}

Object.assign(A, {
  addNear: (person) => act(async () => {
    const r = await api('POST', `/v1/near/${p(person.peer_id)}/contact`, {});
    S.contacts.set(r.contact.peer_id, r.contact);
    S.rev++;
    return `${r.contact.nickname} is one of your contacts now.`;
  }),

  chatWith: (pid) => act(async () => {
    const s = await api('POST', '/v1/sessions', { application_id: CHAT_APP });
    putSession(s);
    const r = await api('POST', `/v1/sessions/${p(s.id)}/invite`, { peers: [pid] });
    putSession(r.session);
    for (const i of r.invitations || []) putInvitation(i);
    location.hash = '#session/' + encodeURIComponent(s.id);
    return `You invited ${nameOf(pid)} to a chat: start it once they accept.`;
  }),

  patchContact: (c, body) => act(async () => {
    const v = await api('PATCH', `/v1/contacts/${p(c.peer_id)}`, body);
    S.contacts.set(v.peer_id, v);
    if (body.watch) {
      api('GET', `/v1/peers/${p(v.peer_id)}/endpoint`).then((e) => { S.watching.set(v.peer_id, e); changed(); }, () => {});
    }
    if (body.watch !== undefined) return body.watch ? `You watch ${v.nickname}’s presence now.` : `You no longer watch ${v.nickname}.`;
    return v.watcher_permission === 'blocked'
      ? `${v.nickname} sees nothing of your presence, applications or objects now.`
      : `${v.nickname} may follow your presence again.`;
  }),

  toggleContact: (c) => {
    if (S.open.has(c.peer_id)) S.open.delete(c.peer_id);
    else {
      S.open.add(c.peer_id);
      if (!S.details.has(c.peer_id)) loadDetails(c.peer_id);
    }
    changed();
  },

  exportContact: (c) => act(async () => {
    const r = await api('GET', `/v1/contacts/${p(c.peer_id)}/card`);
    download(`${c.nickname}.contact`, r.card);
    return `${c.nickname}’s card is in your downloads.`;
  }),

  endorse: (c) => act(async () => {
    const card = await api('GET', `/v1/contacts/${p(c.peer_id)}/card`);
    const r = await api('POST', '/v1/cards/endorse', { card: card.card });
    download(`${c.nickname}-endorsed.contact`, r.card);
    return `You endorsed ${c.nickname}: give the file in your downloads to people who trust you, and they trust ${c.nickname} too.`;
  }),

  removeContact: (c) => act(async () => {
    if (!confirm(`Remove ${c.nickname} from your contacts? Their invitations will no longer be trusted.`)) return '';
    await api('DELETE', `/v1/contacts/${p(c.peer_id)}`);
    S.contacts.delete(c.peer_id);
    S.open.delete(c.peer_id);
    S.rev++;
    return `${c.nickname} is no longer a contact.`;
  }),

  importFile: (file) => act(async () => {
    if (file.size > 65536) throw new Error(`${file.name} is too large for a card (a card is a few kilobytes).`);
    const card = await file.text();
    const view = await api('POST', '/v1/cards/check', { card });
    S.importing = { card, view };
    return '';
  }),

  // importAdd adds the card. A contact's card is replaced only when the
  // button said so, and never drops an endorsement without asking.
  importAdd: () => act(async () => {
    const body = { card: S.importing.card };
    let r;
    try {
      r = await api('POST', '/v1/contacts', body);
    } catch (e) {
      if (!(e instanceof APIError) || !S.contacts.has(S.importing.view.peer_id)) throw e;
      if (e.code === 'endorsement_dropped' && !confirm(`${e.message}\n\nReplace the card all the same?`)) return '';
      if (e.code !== 'contact_exists' && e.code !== 'endorsement_dropped') throw e;
      r = await api('POST', '/v1/contacts', { ...body, replace: true });
    }
    S.importing = null;
    S.contacts.set(r.contact.peer_id, r.contact);
    S.rev++;
    if (r.device_added) return `This card is another device of ${r.contact.nickname}: it is one of their devices now.`;
    return r.created ? `${r.contact.nickname} is one of your contacts now.` : `${r.contact.nickname}’s card is replaced.`;
  }),

  importCancel: () => {
    S.importing = null;
    changed();
    $('import-card').focus();
  },

  answer: (inv, verb) => act(async () => {
    const r = await api('POST', `/v1/invitations/${p(inv.id)}/${verb}`);
    putInvitation(r);
    if (verb === 'accept' && r.session_id) location.hash = '#session/' + encodeURIComponent(r.session_id);
    return verb === 'accept' ? `You accepted ${nameOf(inv.peer)}’s invitation.` : `You declined ${nameOf(inv.peer)}’s invitation.`;
  }),

  cancelInvitation: (inv) => act(async () => {
    putInvitation(await api('POST', `/v1/invitations/${p(inv.id)}/cancel`));
    return `The invitation to ${nameOf(inv.peer)} is cancelled.`;
  }),

  cancelBatch: (batch) => act(async () => {
    const r = await api('POST', '/v1/invitations/cancel-unanswered', { batch });
    for (const i of r.invitations || []) putInvitation(i);
    return 'The unanswered invitations are cancelled.';
  }),

  sessionOp: (s, op) => act(async () => {
    if (op === 'end' && !confirm('End the session for everyone in it?')) return '';
    if (op === 'leave' && !confirm('Leave the session? You will read nothing sent after you leave.')) return '';
    putSession(await api('POST', `/v1/sessions/${p(s.id)}/${op}`));
    return { start: 'The session has started.', end: 'The session has ended.', leave: 'You left the session.',
      'cancel-unanswered': 'The unanswered invitations are cancelled.' }[op];
  }),

  removeMember: (s, pid) => act(async () => {
    if (!confirm(`Remove ${nameOf(pid)} from the session?`)) return '';
    putSession(await api('POST', `/v1/sessions/${p(s.id)}/remove`, { peer: pid }));
    return `${nameOf(pid)} is out of the session, and reads nothing sent from now on.`;
  }),
});

// ensureChatApp registers the page's chat application, so that this node
// takes invitations to it.
async function ensureChatApp() {
  if ((S.endpoint.applications || []).some((a) => a.id === CHAT_APP)) return;
  try {
    await api('POST', '/v1/me/apps', { id: CHAT_APP, description: 'Chat (peercollab’s page)' });
  } catch (e) {
    if (e.code !== 'app_exists') say('The page could not register its chat: ' + e.message, true);
  }
}

function wire() {
  window.addEventListener('hashchange', () => route(true));
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && S.view === 'session') {
      S.unread.delete(S.session);
      changed();
    }
  });
  $('me-quick').addEventListener('change', (e) => act(() => setPresence(e.target.value, S.endpoint.presence.text || '')));
  $('presence-form').addEventListener('submit', (e) => {
    e.preventDefault();
    act(() => setPresence($('presence-status').value, $('presence-text').value));
  });
  $('name-form').addEventListener('submit', (e) => {
    e.preventDefault();
    act(async () => {
      S.endpoint = await api('PUT', '/v1/me/name', { endpoint_name: $('endpoint-name').value.trim() });
      return `This computer is “${S.endpoint.endpoint_name}” to people near you now.`;
    });
  });
  $('visibility-toggle').addEventListener('click', () => act(async () => {
    const out = nearMe();
    const r = await api('POST', out ? '/v1/signout' : '/v1/signin', { scope: 'nearme' });
    S.endpoint.scope = r.scope;
    if (out) S.near.clear();
    return out ? 'People near you no longer see you.' : 'People near you see you now.';
  }));
  $('policy').addEventListener('change', (e) => act(async () => {
    S.policy = (await api('PUT', '/v1/invitations/policy', { policy: e.target.value })).policy;
    return 'Saved: you take invitations from ' + e.target.selectedOptions[0].textContent + '.';
  }));
  $('show-ids').addEventListener('change', (e) => {
    document.body.classList.toggle('ids', e.target.checked);
    try { localStorage.setItem('peercollab.ids', e.target.checked ? '1' : ''); } catch { /* private mode */ }
  });
  try { document.body.classList.toggle('ids', !!localStorage.getItem('peercollab.ids')); } catch { /* private mode */ }
  $('import-card').addEventListener('click', () => $('card-file').click());
  $('card-file').addEventListener('change', (e) => {
    const f = e.target.files[0];
    e.target.value = '';
    if (f) A.importFile(f);
  });
  $('export-mine').addEventListener('click', () => act(async () => {
    const r = await api('GET', '/v1/card');
    download(`${S.id.display_name}.contact`, r.card);
    return 'Your card is in your downloads: give it to the people who should trust you.';
  }));
  $('new-session').addEventListener('submit', (e) => {
    e.preventDefault();
    act(async () => {
      const s = await api('POST', '/v1/sessions', { application_id: $('new-app').value });
      putSession(s);
      location.hash = '#session/' + encodeURIComponent(s.id);
      return 'A new session: invite people to it, then start it.';
    });
  });
  $('invite-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const peers = [...$('invite-choices').querySelectorAll('input:checked')].map((i) => i.value);
    if (!peers.length) {
      say('Choose whom to invite first.', true);
      return;
    }
    act(async () => {
      const r = await api('POST', `/v1/sessions/${p(S.session)}/invite`, { peers, message: $('invite-message').value });
      putSession(r.session);
      for (const i of r.invitations || []) putInvitation(i);
      $('invite-message').value = '';
      return 'Invited: ' + peers.map(nameOf).join(', ') + '.';
    });
  });
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('composer-text');
    const text = input.value;
    if (!text.trim()) return;
    act(async () => {
      putMessage(await api('POST', `/v1/sessions/${p(S.session)}/send`, { data: textToB64(text) }));
      if (input.value === text) input.value = '';
      return '';
    });
  });
}

async function start() {
  wire();
  route(false);
  new Events(onEvent, onConn);
  try {
    await reload();
  } catch (e) {
    if (e.code === 'web_unauthorized') onConn('unauthorized');
    else say(e.message, true);
    return;
  }
  S.ready = true;
  renderAll();
  ensureChatApp();
  if (S.view === 'session') await loadMessages(S.session);
  renderAll();
  performance.mark('peercollab-rendered');
  document.body.dataset.ready = 'true';
}

start();
