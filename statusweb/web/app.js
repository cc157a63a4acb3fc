// mailtap status page. Everything that came from a server (mailbox names,
// errors, senders, subjects) is put into the page with textContent, never
// as HTML.
'use strict';

const TOKEN_KEY = 'mailtap-token';
const RECENT_MAX = 50;
const POLL_MS = 3000;

let mailboxes = [];
let recent = [];
let tokenRequired = false;
let skew = 0; // server clock minus browser clock, ms
// lostAt is when mailtap stopped answering (null while it answers). The
// cards then show the last known data greyed, states as unknown and the
// controls off: nothing on the page may look live while it is not.
let lostAt = null;
const cards = new Map(); // mailbox id -> card elements

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function button(action, id, label) {
  const b = el('button', '', label);
  b.type = 'button';
  b.dataset.action = action;
  b.dataset.mailbox = id;
  return b;
}

// ---- time ----------------------------------------------------------------

const now = () => Date.now() + skew;

function clock(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const t = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (d.toDateString() === new Date(now()).toDateString()) return t;
  return d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + t.slice(0, 5);
}

function span(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd';
}

function ago(iso) {
  return iso ? clock(iso) + ' (' + span(now() - Date.parse(iso)) + ' ago)' : 'none this run';
}

// utc is an API time (RFC 3339 UTC) as "2006-01-02 15:04:05 UTC".
const utc = (iso) => iso ? iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC') : '';

// ---- rendering -----------------------------------------------------------

const STATES = ['connecting', 'syncing', 'idle', 'notify', 'polling', 'paused', 'reconnecting', 'auth_failed', 'error', 'stopped'];
// The badge shows the state's name (the TUI's, the API's and the metrics'
// too); its tooltip says what it means. idle, notify and polling are the
// connected, watching states, and look alike.
const MEANING = {
  connecting: 'connecting to the server',
  syncing: 'connected, capturing new mail',
  idle: 'connected and watching: the server announces new mail (IDLE)',
  notify: "connected and watching: the server announces new mail on the account's shared connection (NOTIFY)",
  polling: 'connected and watching: mailtap asks the server every poll_interval',
  paused: 'paused from the TUI or this page; resume to capture again',
  reconnecting: 'the connection failed; retrying',
  auth_failed: 'the server refused the login; retrying slowly',
  error: 'failed; see the error',
  stopped: 'not running',
};

function card(id) {
  let c = cards.get(id);
  if (c) return c;
  c = { root: el('article', 'card') };
  c.root.dataset.mailbox = id;
  const h = el('h3');
  h.append(el('span', '', id));
  c.badge = el('span', 'badge');
  h.append(c.badge);
  c.err = el('p', 'err');
  c.warn = el('p', 'warn');
  const dl = el('dl');
  const row = (label) => {
    dl.append(el('dt', '', label));
    const dd = el('dd');
    dl.append(dd);
    return dd;
  };
  c.retry = row('Next retry');
  c.counts = row('Captured');
  c.errors = row('Connection errors');
  c.last = row('Last capture');
  c.uid = row('Checkpoint');
  c.contact = row('Server contact');
  const acts = el('div', 'actions');
  c.pause = button('pause', id, 'Pause');
  c.resume = button('resume', id, 'Resume');
  c.reconnect = button('reconnect', id, 'Reconnect');
  acts.append(c.pause, c.resume, c.reconnect);
  c.root.append(h, c.err, c.warn, dl, acts);
  cards.set(id, c);
  return c;
}

// renderWarning shows the latest sign that the server's word was wrong
// (the catch-up cross-check, UIDNEXT going backwards). It stays until a
// newer one replaces it: the mail it concerns may have been captured since,
// but the server's habit has not changed.
function renderWarning(c, m) {
  c.warn.hidden = !m.warning;
  if (!m.warning) return;
  const label = el('strong', '', 'Warning' + (m.warning_at ? ' (' + clock(m.warning_at) + ')' : '') + ': ');
  c.warn.replaceChildren(label, document.createTextNode(m.warning));
  c.warn.title = m.warning_at ? 'seen ' + utc(m.warning_at) : '';
}

function renderMailboxes() {
  const box = $('mailboxes');
  const seen = new Set();
  for (const m of mailboxes) {
    const c = card(m.id);
    seen.add(m.id);
    const state = STATES.includes(m.state) ? m.state : 'stopped';
    c.badge.className = 'badge s-' + (lostAt ? 'unknown' : state);
    c.badge.textContent = lostAt ? 'unknown' : m.state.replace('_', ' ');
    c.badge.title = lostAt ? 'last known: ' + m.state.replace('_', ' ') : (MEANING[m.state] || '');
    c.err.textContent = m.error || '';
    c.err.hidden = !m.error;
    renderWarning(c, m);
    c.contact.dataset.at = m.last_server_contact || '';
    c.retry.dataset.until = m.next_retry || '';
    c.counts.textContent = m.captured + ' this run · ' + (m.malformed || 0) + ' malformed';
    c.errors.textContent = m.errors + (m.errors === 1 ? ' failed connection' : ' failed connections');
    c.last.dataset.at = m.last_capture || '';
    c.uid.textContent = m.uid_validity ? 'UID ' + m.last_uid + ' (validity ' + m.uid_validity + ')' : '—';
    c.pause.disabled = m.paused || !!lostAt;
    c.resume.disabled = !m.paused || !!lostAt;
    c.reconnect.disabled = !!lostAt;
    box.append(c.root); // keeps server order; moves, never recreates
  }
  for (const [id, c] of cards) {
    if (!seen.has(id)) {
      c.root.remove();
      cards.delete(id);
    }
  }
  for (const b of document.querySelectorAll('header button[data-action]')) b.disabled = !!lostAt;
  document.body.classList.toggle('stale', !!lostAt);
  const lost = $('lost');
  lost.hidden = !lostAt;
  if (lostAt) {
    lost.textContent = 'mailtap has not answered since ' + clock(lostAt.toISOString()) +
      '. The cards show the last known data; states are unknown and the controls are off until it answers again.';
  }
  tick();
}

// tick refreshes what depends on the clock: countdowns and "ago". While
// mailtap is unreachable, neither counts on: the data is frozen.
function tick() {
  for (const c of cards.values()) {
    const until = c.retry.dataset.until;
    const contact = c.contact.dataset.at;
    c.contact.title = contact ? utc(contact) : '';
    if (lostAt) {
      c.retry.textContent = '—';
      c.last.textContent = c.last.dataset.at ? clock(c.last.dataset.at) : 'none this run';
      c.contact.textContent = contact ? clock(contact) : 'none this run';
      continue;
    }
    c.contact.textContent = contact ? span(now() - Date.parse(contact)) + ' ago' : 'none this run';
    if (!until) c.retry.textContent = '—';
    else {
      const left = Date.parse(until) - now();
      c.retry.textContent = left > 0 ? 'in ' + span(left) : 'now';
    }
    c.last.textContent = ago(c.last.dataset.at);
  }
}

function renderRecent() {
  const list = $('recent');
  const items = recent.map((r) => {
    const li = el('li');
    li.dataset.id = r.id;
    const time = el('time', 'time', clock(r.captured_at));
    time.dateTime = r.captured_at;
    time.title = 'captured ' + new Date(r.captured_at).toLocaleString() + (r.date ? '\nsent ' + new Date(r.date).toLocaleString() : '');
    const from = el('span', 'from', r.from || '(no sender)');
    from.title = r.from || '';
    const subj = el('span', 'subject', (r.attachments > 0 ? '📎 ' : '') + (r.subject || '(no subject)'));
    subj.title = r.subject || '';
    subj.append(el('span', 'mbox', r.mailbox));
    li.append(time, from, subj);
    return li;
  });
  list.replaceChildren(...items);
  $('no-recent').hidden = recent.length > 0;
  $('recent-head').hidden = recent.length === 0;
}

function renderAuth() {
  $('auth').hidden = !tokenRequired || !!sessionStorage.getItem(TOKEN_KEY);
}

function notice(msg) {
  const n = $('notice');
  n.textContent = msg || '';
  n.hidden = !msg;
}

function setConn(text, cls) {
  const c = $('conn');
  c.textContent = text;
  c.className = 'conn ' + (cls || '');
}

// ---- data ----------------------------------------------------------------

// markLost records that mailtap stopped answering; the page goes grey.
function markLost() {
  if (lostAt) return;
  lostAt = new Date(now());
  setConn('unreachable since ' + clock(lostAt.toISOString()) + ', retrying…', 'down');
  renderMailboxes();
}

function applyStatus(s) {
  lostAt = null;
  if (s.now) skew = Date.parse(s.now) - Date.now();
  $('version').textContent = s.version || '';
  tokenRequired = !!s.token_required;
  mailboxes = s.mailboxes || [];
  recent = (s.recent || []).slice(0, RECENT_MAX);
  renderAuth();
  renderMailboxes();
  renderRecent();
  renderSinks(s.sinks || []);
}

// Sinks change without watcher events: while there are any, their row is
// refreshed from /api/status every few seconds.
let sinkTimer = 0;
function renderSinks(list) {
  $('sinks-section').hidden = list.length === 0;
  const rows = list.map((k) => {
    const tr = el('tr');
    tr.dataset.sink = k.name;
    const name = el('td', '', k.name);
    name.title = k.type + ' ' + k.target;
    const state = k.failing ? 'failing' : k.state;
    const badge = el('span', 'badge s-sink-' + state, state + (k.failing && k.failing_since ? ' since ' + clock(k.failing_since) : ''));
    const st = el('td');
    st.append(badge);
    tr.append(name, st, el('td', 'num', String(k.backlog)), el('td', 'num', String(k.delivered)),
      el('td', 'num', String(k.dead_letters)), el('td', '', k.last_delivery ? ago(k.last_delivery) : 'never'),
      el('td', 'err', k.last_error || ''));
    return tr;
  });
  $('sinks').tBodies[0].replaceChildren(...rows);
  if (list.length && !sinkTimer) {
    sinkTimer = setInterval(async () => {
      try {
        const r = await fetch('/api/status', { cache: 'no-store' });
        if (r.ok) renderSinks((await r.json()).sinks || []);
      } catch (e) { /* the connection indicator says why */ }
    }, 3000);
  }
}

// applyPing takes a ping's interval, clock and what changed without an
// event: each mailbox's server contact and warning.
function applyPing(p) {
  if (p.interval_ms > 0) pingMs = p.interval_ms;
  if (p.now) skew = Date.parse(p.now) - Date.now();
  const byId = new Map((p.mailboxes || []).map((m) => [m.id, m]));
  for (const m of mailboxes) {
    const u = byId.get(m.id);
    if (u) Object.assign(m, { last_server_contact: u.last_server_contact, warning: u.warning, warning_at: u.warning_at });
  }
  lostAt = null;
  renderMailboxes();
}

function applyCaptured(c) {
  const have = new Set(recent.map((r) => r.id));
  const fresh = (c.items || []).filter((r) => !have.has(r.id));
  if (fresh.length) {
    recent = fresh.concat(recent).slice(0, RECENT_MAX);
    renderRecent();
  }
  if (c.mailboxes) {
    lostAt = null;
    mailboxes = c.mailboxes;
    renderMailboxes();
  }
}

// ---- live updates: SSE, falling back to polling -------------------------

let pollTimer = 0;
let live = false; // the event stream is delivering
let es = null; // the event stream
let fallbackTimer = 0;
let retryTimer = 0;
// The server sends an event at least every pingMs (it says how long in
// each ping). After STALL_FACTOR times that with none, the stream is taken
// for dead even though it did not close: a network path can go silent
// without either end noticing for many minutes.
let pingMs = 20000;
const STALL_FACTOR = 2.5;
let watchdog = 0;

function heard() {
  clearTimeout(watchdog);
  watchdog = setTimeout(stalled, pingMs * STALL_FACTOR);
}

// stalled: a stream the page relied on went silent, so the page goes grey;
// a fresh stream replaces the silent one and polling covers the gap (and
// restores the page if only the stream's path died). The watchdog runs
// again for the new stream, so a path that stays dead is retried every
// STALL_FACTOR intervals. A stream that never opened (a buffering proxy)
// is retried too, without greying a page that polling keeps current.
function stalled() {
  if (live) {
    live = false;
    markLost();
  }
  connect();
  startPolling();
}

async function poll() {
  try {
    // A poll on a dead path must not hang: it fails, and the page says so.
    const signal = AbortSignal.timeout ? AbortSignal.timeout(POLL_MS * 2) : undefined;
    const r = await fetch('/api/status', { cache: 'no-store', signal });
    if (!r.ok) throw new Error(r.status);
    const s = await r.json();
    if (live) return; // the stream took over meanwhile and is newer
    applyStatus(s);
    setConn('polling', 'live');
  } catch (e) {
    markLost();
  }
}

function startPolling() {
  if (pollTimer) return;
  poll();
  pollTimer = setInterval(poll, POLL_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = 0;
}

function connect() {
  clearTimeout(fallbackTimer);
  clearTimeout(retryTimer);
  if (es) es.close();
  if (!window.EventSource) {
    startPolling();
    return;
  }
  const src = new EventSource('/api/events');
  es = src;
  // A stream that never opens (a buffering proxy) or that the server
  // refused for good is replaced by polling; the browser keeps retrying a
  // stream that merely broke, and polling covers the gap meanwhile.
  fallbackTimer = setTimeout(startPolling, 5000);
  heard(); // a stream that never delivers counts as stalled too
  src.addEventListener('status', (e) => {
    heard();
    clearTimeout(fallbackTimer);
    stopPolling();
    live = true;
    setConn('live', 'live');
    applyStatus(JSON.parse(e.data));
  });
  src.addEventListener('captured', (e) => {
    heard();
    applyCaptured(JSON.parse(e.data));
  });
  src.addEventListener('ping', (e) => {
    heard();
    applyPing(JSON.parse(e.data));
  });
  src.onerror = () => {
    live = false;
    if (src.readyState === EventSource.CLOSED) {
      clearTimeout(watchdog); // polling watches now
      startPolling();
      retryTimer = setTimeout(connect, 30000); // try the stream again later
    } else {
      // Polling tells a broken stream (the status still answers) from
      // mailtap gone (it does not: markLost).
      if (!lostAt) setConn('reconnecting…', 'down');
      startPolling();
    }
  };
}

// ---- controls ------------------------------------------------------------

async function control(action, id, btn) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  const url = '/api/' + action + (id ? '?mailbox=' + encodeURIComponent(id) : '');
  btn.disabled = true;
  try {
    const r = await fetch(url, { method: 'POST', headers, cache: 'no-store' });
    const body = await r.json().catch(() => ({}));
    if (r.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      tokenRequired = true;
      renderAuth();
      notice(token ? 'The token was not accepted. Enter it again.' : 'Enter the control token first.');
      $('token').focus();
      return;
    }
    if (!r.ok) {
      notice(action + ' failed: ' + (body.error || r.status));
      return;
    }
    notice('');
    // Take only the paused flag from the answer: it is set by the time the
    // server answers, while the state changes a moment later and reaches us
    // through the stream, possibly before this answer does.
    const paused = new Map((body.mailboxes || []).map((m) => [m.id, m.paused]));
    for (const m of mailboxes) if (paused.has(m.id)) m.paused = paused.get(m.id);
    if (!live) poll();
  } catch (e) {
    notice(action + ' failed: the server cannot be reached.');
  } finally {
    btn.disabled = !!lostAt;
    renderMailboxes(); // restores per-mailbox button states
  }
}

document.addEventListener('click', (e) => {
  const b = e.target.closest('button[data-action]');
  if (b) control(b.dataset.action, b.dataset.mailbox, b);
});

$('auth').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('token').value.trim();
  $('token').value = '';
  if (!t) return;
  sessionStorage.setItem(TOKEN_KEY, t);
  notice('');
  renderAuth();
});

$('forget').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  renderAuth();
});

setInterval(tick, 1000);
connect();
