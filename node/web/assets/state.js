// What the page knows: a copy of what the daemon told it, kept current by
// the event stream (app.js), and the words it shows for it.

// CHAT_APP is the application the page registers and hosts sessions for:
// a chat whose messages are UTF-8 text.
export const CHAT_APP = 'org.peercollab.chat';

// STATUSES are the presences a person can choose (offline is signing out).
export const STATUSES = [
  ['online', 'Online'], ['busy', 'Busy'], ['on-the-phone', 'On the phone'], ['away', 'Away'],
  ['be-right-back', 'Be right back'], ['out-to-lunch', 'Out to lunch'], ['idle', 'Idle'],
];
const STATUS_WORDS = Object.fromEntries([...STATUSES, ['offline', 'Offline']]);

export const S = {
  id: null, // GET /v1/id
  endpoint: null, // GET /v1/me/endpoint
  policy: '',
  near: new Map(), // peer -> Person
  contacts: new Map(), // peer -> Contact
  watching: new Map(), // peer -> PeerEndpoint
  details: new Map(), // peer -> ContactDetail, fetched when a contact is opened
  open: new Set(), // contacts whose details are open
  invitations: new Map(), // id -> Invitation
  sessions: new Map(), // id -> Session
  messages: new Map(), // session -> {list, seen: Set of indexes, loaded}
  unread: new Map(), // session -> messages not seen yet
  names: new Map(), // peer -> the name an invitation gave it
  importing: null, // {card, view}: a card file being imported
  view: 'near',
  session: '', // the session shown in the session view
  rev: 0, // grows whenever a name may have changed
  ready: false,
};

export const me = () => (S.id ? S.id.peer_id : '');

// nameOf names a peer for a person: you, a contact's nickname, the name of
// someone near, the name an invitation carried, else the end of its ID.
export function nameOf(pid) {
  if (!pid) return '';
  if (pid === me()) return 'You';
  const c = S.contacts.get(pid);
  if (c) return c.nickname || c.display_name;
  const n = S.near.get(pid);
  if (n) return n.display_name;
  return S.names.get(pid) || 'someone (…' + pid.slice(-6) + ')';
}

// presenceOf is a peer's presence as far as the page knows it: from People
// Near Me, else from watching it; null when unknown.
export function presenceOf(pid) {
  const n = S.near.get(pid);
  if (n) return n.presence;
  const w = S.watching.get(pid);
  if (w && w.data && w.data.presence && w.state !== 'failing') return w.data.presence;
  return null;
}

export const statusWord = (s) => STATUS_WORDS[s] || s || 'Unknown';

export function presenceText(pr) {
  if (!pr) return 'presence unknown';
  return statusWord(pr.status) + (pr.text ? ` — “${pr.text}”` : '');
}

export const scope = () => (S.endpoint ? S.endpoint.scope : 'none');
export const nearMe = () => scope() === 'nearme' || scope() === 'all';

export const isOpen = (inv) => inv.state === 'pending' || inv.state === 'delivered';

export const appName = (id) => (id === CHAT_APP ? 'Chat' : id);

const STATE_WORDS = {
  pending: 'not delivered yet', delivered: 'no answer yet', accepted: 'accepted', declined: 'declined',
  expired: 'expired', cancelled: 'cancelled', error: 'failed',
};
export const invitationWord = (inv) => (STATE_WORDS[inv.state] || inv.state) + (inv.reason ? ` (${inv.reason})` : '');

const STANDING_WORDS = {
  invited: 'invited, no answer yet', member: 'in the session', declined: 'declined', expired: 'did not answer in time',
  cancelled: 'invitation cancelled', failed: 'invitation not delivered', removed: 'removed', left: 'left',
};
export const standingWord = (s) => STANDING_WORDS[s] || s;

const SESSION_WORDS = { forming: 'not started', running: 'running', ended: 'ended' };
export const sessionWord = (s) => SESSION_WORDS[s] || s;

// others are the people of a session besides this node: its members, and
// for a session this node hosts, those invited who may still join.
export function others(s) {
  const set = new Set((s.members || []).filter((m) => m !== me()));
  if (s.host && s.host !== me()) set.add(s.host);
  for (const [pid, st] of Object.entries(s.standing || {})) if (st === 'invited' && pid !== me()) set.add(pid);
  return [...set];
}

export function sessionTitle(s) {
  const names = others(s).map(nameOf).sort();
  return appName(s.application_id) + (names.length ? ' with ' + names.join(', ') : '');
}

// trustWords says in a sentence how far a card is trusted.
export function trustWords(card, displayName) {
  const t = card && card.trust;
  if (!t) return '';
  if (!t.trusted) return 'Not trusted: ' + (t.reason || 'no contact of yours vouches for this card') + '.';
  if (!t.depth) return `Trusted: you hold ${displayName}’s own certificate.`;
  return `Trusted: endorsed by your contact ${t.via_name || nameOf(t.via)}` + (t.depth > 1 ? `, through ${t.depth} endorsements.` : '.');
}
