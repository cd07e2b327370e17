// The page's sections, rendered from the state (state.js). The actions
// (A) are app.js's; lists update in place (reconcile), so that an event
// does not move the keyboard's focus.

import { b64ToText } from './api.js';
import { h, reconcile, byName, fmtTime, fmtDate } from './dom.js';
import { keyWords } from './words.js';
import {
  S, me, nameOf, presenceOf, presenceText, statusWord, nearMe, isOpen, appName, invitationWord,
  standingWord, sessionWord, sessionTitle, trustWords, STATUSES, CHAT_APP,
} from './state.js';

// A holds the actions, which app.js sets.
export const A = {};

const $ = (id) => document.getElementById(id);

// sig is the signature of a rendering of parts: it changes when they do,
// or when names may have.
const sig = (...parts) => S.rev + JSON.stringify(parts);

const dot = (pr) => h('span', { class: 'dot', 'data-s': pr ? pr.status : 'unknown', 'aria-hidden': 'true' });

// who names a peer, with its ID for those who asked to see IDs.
const who = (pid, name) => [h('span', { class: 'name' }, name || nameOf(pid)), h('span', { class: 'pid' }, pid)];

const button = (act, label, onclick, attrs) => h('button', { type: 'button', 'data-act': act, onclick, ...attrs }, label);

export function renderAll() {
  renderHeader();
  renderNav();
  switch (S.view) {
    case 'near': renderNear(); break;
    case 'contacts': renderContacts(); break;
    case 'invitations': renderInvitations(); break;
    case 'sessions': renderSessions(); break;
    case 'session': renderSession(); break;
    case 'me': renderMe(); break;
  }
}

export function renderHeader() {
  if (!S.id || !S.endpoint) return;
  $('me-name').textContent = S.id.display_name;
  const pr = S.endpoint.presence;
  $('me-dot').dataset.s = nearMe() || S.endpoint.scope !== 'none' ? pr.status : 'offline';
  const sel = $('me-quick');
  if (!sel.options.length) for (const [v, w] of STATUSES) sel.append(h('option', { value: v }, w));
  if (document.activeElement !== sel) sel.value = pr.status;
}

export function renderNav() {
  for (const a of document.querySelectorAll('nav a')) {
    const cur = a.dataset.view === S.view || (S.view === 'session' && a.dataset.view === 'sessions');
    if (cur) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  $('count-near').textContent = S.near.size || '';
  const pending = [...S.invitations.values()].filter((i) => i.direction === 'received' && isOpen(i)).length;
  $('count-invitations').textContent = pending || '';
  let unread = 0;
  for (const n of S.unread.values()) unread += n;
  $('count-sessions').textContent = unread || '';
  document.title = (pending ? `(${pending}) ` : '') + 'peercollab';
}

// People near.

export function renderNear() {
  const people = [...S.near.values()].sort((a, b) => byName(a.display_name, b.display_name));
  $('near-hint').textContent = !nearMe()
    ? 'You are signed out of People Near Me: you see no one, and no one near sees you. Sign in on the “You” page.'
    : people.length ? '' : 'No one near yet. People on your network who run peercollab appear here as they come.';
  reconcile($('near-list'), people, (p) => p.peer_id, (p) => sig(p, S.contacts.has(p.peer_id), S.contacts.get(p.peer_id)?.nickname), nearItem);
}

function nearItem(p) {
  const contact = S.contacts.get(p.peer_id);
  const sub = [presenceText(p.presence)];
  if (p.endpoint_name && p.endpoint_name !== p.display_name) sub.push('on ' + p.endpoint_name);
  if (contact && contact.nickname !== p.display_name) sub.push('your contact ' + contact.nickname);
  return h('li', { class: 'item' },
    dot(p.presence),
    h('div', { class: 'who' }, who(p.peer_id, p.display_name), h('div', { class: 'sub' }, sub.join(' · '))),
    h('div', { class: 'actions' },
      contact
        ? h('span', { class: 'badge ok' }, 'Contact')
        : button('add', 'Add to contacts', () => A.addNear(p), { 'aria-label': `Add ${p.display_name} to your contacts` }),
      button('invite', 'Invite to chat', () => A.chatWith(p.peer_id), { 'aria-label': `Invite ${p.display_name} to a chat` })));
}

// Contacts.

export function renderContacts() {
  renderImport();
  const list = [...S.contacts.values()].sort((a, b) => byName(a.nickname, b.nickname));
  $('contacts-hint').textContent = list.length ? ''
    : 'No contacts yet. Add someone near from the “Near” page, or import the card file they gave you.';
  reconcile($('contact-list'), list, (c) => c.peer_id,
    (c) => sig(c, presenceOf(c.peer_id), S.open.has(c.peer_id), S.details.get(c.peer_id)), contactItem);
}

function contactItem(c) {
  const pr = presenceOf(c.peer_id);
  const open = S.open.has(c.peer_id);
  const badges = [];
  if (c.watch) badges.push(h('span', { class: 'badge' }, 'Watching'));
  if (c.watcher_permission === 'blocked') badges.push(h('span', { class: 'badge bad' }, 'Blocked'));
  const sub = [pr ? presenceText(pr) : c.watch ? 'presence not known yet' : 'not watched: presence unknown'];
  if (c.display_name !== c.nickname) sub.push(c.display_name);
  if (c.email) sub.push(c.email);
  const detailsID = 'details-' + c.peer_id;
  return h('li', { class: 'item' },
    dot(pr),
    h('div', { class: 'who' }, h('span', { class: 'name' }, c.nickname), badges, h('span', { class: 'pid' }, c.peer_id),
      h('div', { class: 'sub' }, sub.join(' · '))),
    h('div', { class: 'actions' },
      button('invite', 'Invite to chat', () => A.chatWith(c.peer_id), { 'aria-label': `Invite ${c.nickname} to a chat` }),
      button('watch', c.watch ? 'Stop watching' : 'Watch', () => A.patchContact(c, { watch: !c.watch }),
        { 'aria-label': (c.watch ? 'Stop watching ' : 'Watch ') + c.nickname + '’s presence' }),
      button('block', c.watcher_permission === 'blocked' ? 'Allow' : 'Block',
        () => A.patchContact(c, { watcher_permission: c.watcher_permission === 'blocked' ? 'allowed' : 'blocked' }),
        { 'aria-label': c.watcher_permission === 'blocked' ? `Let ${c.nickname} see your presence again` : `Block ${c.nickname} from seeing your presence` }),
      button('details', open ? 'Less' : 'More', () => A.toggleContact(c), { 'aria-expanded': String(open), 'aria-controls': detailsID })),
    open ? contactDetails(c, detailsID) : null);
}

function contactDetails(c, id) {
  const d = S.details.get(c.peer_id);
  const card = d && d.card;
  const rows = [
    ['Trust', card ? trustWords(card, c.nickname) : 'checking…'],
    ['Fingerprint in words', h('span', { class: 'words' }, keyWords(c.peer_id))],
    ['Certificate fingerprint', h('code', {}, c.fingerprint)],
    ['Peer ID', h('code', {}, c.peer_id)],
  ];
  if (c.endorsed_by) rows.push(['Certificate issued by', nameOf(c.endorsed_by)]);
  rows.push(['Added', fmtDate(c.added)]);
  if (c.last_seen) rows.push(['Last seen', fmtTime(c.last_seen)]);
  return h('div', { class: 'details', id },
    h('p', { class: 'sub' }, `Compare the words with ${c.nickname} in person or on the phone: if their own page (“You”) shows the same words, this contact is them. The words come from their key, the same on every card of theirs.`),
    h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    h('div', { class: 'actions' },
      button('export', 'Export card', () => A.exportContact(c)),
      button('endorse', 'Endorse card', () => A.endorse(c), { title: 'Sign their certificate, so that people who trust you trust them' }),
      button('remove', 'Remove', () => A.removeContact(c), { class: 'danger' })));
}

export function renderImport() {
  const box = $('import');
  const imp = S.importing;
  box.hidden = !imp;
  if (!imp || box._imp === imp) return;
  box._imp = imp;
  const v = imp.view;
  const chain = v.chain || [];
  box.replaceChildren(
    h('h2', {}, `Card of ${v.display_name}`),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Trust'), h('dd', {}, trustWords(v, v.display_name)),
      v.email ? [h('dt', {}, 'E-mail'), h('dd', {}, v.email)] : null,
      chain.length > 1 ? [h('dt', {}, 'Endorsed by'), h('dd', {}, chain.slice(1).map((l) => l.display_name).join(', '))] : null,
      h('dt', {}, 'Fingerprint in words'), h('dd', { class: 'words' }, keyWords(v.peer_id)),
      h('dt', {}, 'Peer ID'), h('dd', {}, h('code', {}, v.peer_id))),
    h('p', { class: 'sub' }, `Compare the words with ${v.display_name} before you add the card: the same words on their own page (“You”) mean the card is theirs.`),
    h('div', { class: 'actions' },
      button('import-add', S.contacts.has(v.peer_id) ? 'Replace their card' : 'Add to contacts', () => A.importAdd(), { class: 'primary' }),
      button('import-cancel', 'Cancel', () => A.importCancel())));
  box.querySelector('[data-act=import-add]').focus();
}

// Invitations.

export function renderInvitations() {
  const all = [...S.invitations.values()].sort((a, b) => (b.sent > a.sent ? 1 : b.sent < a.sent ? -1 : 0));
  const received = all.filter((i) => i.direction === 'received');
  received.sort((a, b) => isOpen(b) - isOpen(a));
  $('received-hint').textContent = received.length ? '' : 'No invitations received.';
  reconcile($('received-list'), received, (i) => i.id, (i) => sig(i), receivedItem);

  const groups = new Map();
  for (const i of all.filter((i) => i.direction === 'sent')) {
    const key = i.session_id || i.batch || i.id;
    if (!groups.has(key)) groups.set(key, { key, session: i.session_id, batch: i.batch, app: i.application_id, sent: i.sent, invs: [] });
    groups.get(key).invs.push(i);
  }
  const sent = [...groups.values()];
  $('sent-hint').textContent = sent.length ? '' : 'No invitations sent.';
  reconcile($('sent-list'), sent, (g) => g.key, (g) => sig(g, g.session && S.sessions.get(g.session)?.state), sentGroup);
}

function receivedItem(i) {
  const open = isOpen(i);
  const name = nameOf(i.peer);
  const trust = i.trusted
    ? h('span', { class: 'badge ok', title: 'The inviter is one of your contacts, or endorsed by one' }, 'Trusted contact')
    : h('span', { class: 'badge warn', title: 'peercollab cannot vouch for who this is: accept only if you know them' }, 'Not a contact');
  const sub = [`sent ${fmtTime(i.sent)}`];
  sub.push(open ? `answer by ${fmtTime(i.expires)}` : invitationWord(i));
  const acts = [];
  if (open) {
    acts.push(button('accept', 'Accept', () => A.answer(i, 'accept'), { class: 'primary', 'aria-label': `Accept ${name}’s invitation` }));
    acts.push(button('decline', 'Decline', () => A.answer(i, 'decline'), { 'aria-label': `Decline ${name}’s invitation` }));
  } else if (i.state === 'accepted' && i.session_id) {
    acts.push(h('a', { href: '#session/' + encodeURIComponent(i.session_id), 'data-act': 'open' }, 'Open the session'));
  }
  return h('li', { class: 'item' + (open ? '' : ' done') },
    h('div', { class: 'who' },
      who(i.peer, name), ' invites you to ', h('strong', {}, appName(i.application_id)), trust,
      i.message ? h('blockquote', {}, i.message) : null,
      h('div', { class: 'sub' }, sub.join(' · '))),
    h('div', { class: 'actions' }, acts));
}

function tallyWords(invs) {
  const n = { accepted: 0, declined: 0, open: 0, other: 0 };
  for (const i of invs) {
    if (isOpen(i)) n.open++;
    else if (i.state === 'accepted') n.accepted++;
    else if (i.state === 'declined') n.declined++;
    else n.other++;
  }
  const parts = [`${n.accepted} accepted`, `${n.declined} declined`, `${n.open} no answer yet`];
  if (n.other) parts.push(`${n.other} expired, cancelled or failed`);
  return { text: parts.join(', '), open: n.open };
}

function sentGroup(g) {
  const t = tallyWords(g.invs);
  const s = g.session && S.sessions.get(g.session);
  const title = appName(g.app) + (s ? ' session' : '') + ', sent ' + fmtTime(g.sent);
  const rows = g.invs.slice().sort((a, b) => byName(nameOf(a.peer), nameOf(b.peer))).map((i) =>
    h('li', { class: 'item' },
      h('div', { class: 'who' }, who(i.peer),
        h('div', { class: 'sub' }, invitationWord(i))),
      isOpen(i) ? h('div', { class: 'actions' }, button('cancel-' + i.id, 'Cancel', () => A.cancelInvitation(i),
        { 'aria-label': `Cancel the invitation to ${nameOf(i.peer)}` })) : null));
  return h('li', { class: 'panel' },
    h('div', { class: 'who' }, h('strong', {}, title), ' ',
      s ? h('a', { href: '#session/' + encodeURIComponent(g.session) }, 'open the session') : null),
    h('p', { class: 'sub', 'data-tally': '' }, t.text),
    t.open && !g.session && g.batch ? button('cancel-unanswered', 'Cancel the unanswered', () => A.cancelBatch(g.batch)) : null,
    t.open && g.session && s && s.hosting && s.state !== 'ended' ? button('cancel-unanswered', 'Cancel the unanswered', () => A.sessionOp(s, 'cancel-unanswered')) : null,
    h('ul', { class: 'list compact' }, rows));
}

// Sessions.

export function renderSessions() {
  const sel = $('new-app');
  const apps = (S.endpoint && S.endpoint.applications || []).map((a) => a.id);
  if (!apps.includes(CHAT_APP)) apps.unshift(CHAT_APP);
  const want = apps.join('\n');
  if (sel._apps !== want) {
    sel._apps = want;
    const cur = sel.value || CHAT_APP;
    sel.replaceChildren(...apps.map((id) => h('option', { value: id }, appName(id))));
    sel.value = apps.includes(cur) ? cur : CHAT_APP;
  }
  const list = [...S.sessions.values()].sort((a, b) => (a.state === 'ended') - (b.state === 'ended') || byName(sessionTitle(a), sessionTitle(b)));
  $('sessions-hint').textContent = list.length ? '' : 'No sessions yet. Invite someone near or a contact to a chat, or start a new session here.';
  reconcile($('session-list'), list, (s) => s.id, (s) => sig(s, S.unread.get(s.id)), sessionItem);
}

function sessionItem(s) {
  const unread = S.unread.get(s.id);
  const host = s.hosting ? 'hosted by you' : 'hosted by ' + nameOf(s.host);
  return h('li', {},
    h('a', { class: 'item', href: '#session/' + encodeURIComponent(s.id), 'data-act': 'open' },
      h('div', { class: 'who' },
        h('span', { class: 'name' }, sessionTitle(s)),
        unread ? h('span', { class: 'badge ok' }, `${unread} new`) : null,
        h('span', { class: 'pid' }, s.id),
        h('div', { class: 'sub' }, [sessionWord(s.state), host, `${(s.members || []).length} in it`].join(' · ')))));
}

export function renderSession() {
  const s = S.sessions.get(S.session);
  if (!s) {
    $('h-session').textContent = 'Joining the session…';
    $('session-sub').textContent = 'It appears here as soon as the host tells this node about it.';
    for (const id of ['session-actions', 'member-list', 'message-log']) $(id).replaceChildren();
    $('invite-box').hidden = true;
    composer(false, '');
    return;
  }
  $('h-session').textContent = sessionTitle(s);
  const sub = [sessionWord(s.state), s.hosting ? 'hosted by you' : 'hosted by ' + nameOf(s.host)];
  if (s.me && s.me !== 'member' && !s.hosting) sub.push('you: ' + standingWord(s.me));
  if (s.tally && s.tally.total) sub.push(`${s.tally.accepted} accepted, ${s.tally.declined} declined, ${s.tally.no_answer} no answer yet`);
  $('session-sub').textContent = sub.join(' · ');

  // Actions.
  const acts = [];
  if (s.hosting && s.state === 'forming') acts.push(button('start', 'Start', () => A.sessionOp(s, 'start'), { class: 'primary' }));
  if (s.hosting && s.state !== 'ended' && s.tally && s.tally.no_answer) acts.push(button('cancel-unanswered', 'Cancel the unanswered', () => A.sessionOp(s, 'cancel-unanswered')));
  if (s.hosting && s.state !== 'ended') acts.push(button('end', 'End', () => A.sessionOp(s, 'end'), { class: 'danger' }));
  if (!s.hosting && s.joined && s.me === 'member' && s.state !== 'ended') acts.push(button('leave', 'Leave', () => A.sessionOp(s, 'leave'), { class: 'danger' }));
  const bar = $('session-actions');
  const acSig = sig(s.id, s.state, s.hosting, s.joined, s.me, s.tally);
  if (bar._sig !== acSig) { bar._sig = acSig; bar.replaceChildren(...acts); }

  // People: members first, then those invited who have not joined.
  const people = new Map();
  if (s.host) people.set(s.host, 'member');
  for (const m of s.members || []) people.set(m, 'member');
  for (const [pid, st] of Object.entries(s.standing || {})) if (!people.has(pid)) people.set(pid, st);
  const rows = [...people.entries()].map(([pid, st]) => ({ pid, st }))
    .sort((a, b) => (a.st !== 'member') - (b.st !== 'member') || byName(nameOf(a.pid), nameOf(b.pid)));
  reconcile($('member-list'), rows, (r) => r.pid, (r) => sig(r, s.host, s.hosting, s.state, presenceOf(r.pid)), (r) =>
    h('li', { class: 'item' },
      dot(r.pid === me() ? S.endpoint.presence : presenceOf(r.pid)),
      h('div', { class: 'who' }, who(r.pid), r.pid === s.host ? h('span', { class: 'badge' }, 'host') : null,
        h('div', { class: 'sub' }, standingWord(r.st))),
      s.hosting && r.pid !== me() && r.st === 'member' && s.state !== 'ended'
        ? h('div', { class: 'actions' }, button('remove', 'Remove', () => A.removeMember(s, r.pid), { 'aria-label': `Remove ${nameOf(r.pid)} from the session` }))
        : null));

  // Invite: contacts and people near who are not in the session yet.
  const box = $('invite-box');
  box.hidden = !(s.hosting && s.state !== 'ended');
  if (!box.hidden) {
    const cands = new Map();
    for (const c of S.contacts.values()) cands.set(c.peer_id, c.nickname);
    for (const n of S.near.values()) if (!cands.has(n.peer_id)) cands.set(n.peer_id, n.display_name);
    for (const [pid, st] of people) if (st === 'member' || st === 'invited') cands.delete(pid);
    const list = [...cands.entries()].sort((a, b) => byName(a[1], b[1]));
    const choices = $('invite-choices');
    reconcile(choices, list, ([pid]) => pid, ([pid, name]) => sig(pid, name), ([pid, name]) =>
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'peer', value: pid }), name));
    if (!list.length) choices.replaceChildren(h('p', { class: 'hint' }, 'Everyone you know is invited already.'));
  }

  // Messages.
  renderMessages(s);
  const can = s.state === 'running' && s.me === 'member' && s.joined;
  let hint = '';
  if (s.state === 'forming') hint = s.hosting ? 'Start the session once the people you wait for have accepted: messages go out from then on.' : 'The host has not started the session yet.';
  else if (s.state === 'ended') hint = 'The session has ended.';
  else if (!can) hint = 'You are no longer in this session (' + standingWord(s.me) + ').';
  composer(can, hint);
}

function composer(enabled, hint) {
  const input = $('composer-text');
  input.disabled = !enabled;
  $('composer').querySelector('button').disabled = !enabled;
  $('composer-hint').textContent = hint;
}

function renderMessages(s) {
  const log = $('message-log');
  const m = S.messages.get(s.id);
  const list = m ? m.list : [];
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  reconcile(log, list, (x) => x.session + '/' + x.index, (x) => sig(x.sender), (x) => {
    const mine = x.sender === me();
    return h('li', { class: 'msg' + (mine ? ' mine' : '') },
      h('span', { class: 'from' }, mine ? 'You' : nameOf(x.sender)),
      h('time', { datetime: x.time }, fmtTime(x.time)),
      h('div', { class: 'text' }, b64ToText(x.data)));
  });
  if (atEnd || log._first === undefined) log.scrollTop = log.scrollHeight;
  log._first = false;
  if (m && !m.loaded) log.setAttribute('aria-busy', 'true');
  else log.removeAttribute('aria-busy');
}

// You.

export function renderMe() {
  if (!S.id || !S.endpoint) return;
  const facts = $('me-facts');
  const fsig = sig(S.id.display_name, S.id.email, S.id.fingerprint, S.id.peer_id);
  if (facts._sig !== fsig) {
    facts._sig = fsig;
    facts.replaceChildren(...[
      h('dt', {}, 'Name'), h('dd', {}, S.id.display_name),
      S.id.email ? [h('dt', {}, 'E-mail'), h('dd', {}, S.id.email)] : [],
      h('dt', {}, 'Fingerprint in words'), h('dd', { class: 'words' }, keyWords(S.id.peer_id)),
      h('dt', {}, 'Certificate fingerprint'), h('dd', {}, h('code', {}, S.id.fingerprint)),
      h('dt', {}, 'Peer ID'), h('dd', {}, h('code', {}, S.id.peer_id)),
    ].flat());
  }
  const st = $('presence-status');
  if (!st.options.length) for (const [v, w] of STATUSES) st.append(h('option', { value: v }, w));
  const pr = S.endpoint.presence;
  const form = $('presence-form');
  if (!form.contains(document.activeElement)) {
    st.value = pr.status;
    $('presence-text').value = pr.text || '';
  }
  const nm = $('endpoint-name');
  if (document.activeElement !== nm) nm.value = S.endpoint.endpoint_name || '';
  $('visibility').textContent = nearMe()
    ? `People near you see you as ${S.id.display_name} (${statusWord(pr.status).toLowerCase()}), with your name, e-mail and endpoint name.`
    : 'You are signed out of People Near Me: no one near sees you, and you see no one.';
  $('visibility-toggle').textContent = nearMe() ? 'Hide me from people near' : 'Show me to people near';
  const pol = $('policy');
  if (S.policy && document.activeElement !== pol) pol.value = S.policy;
  $('show-ids').checked = document.body.classList.contains('ids');
}
