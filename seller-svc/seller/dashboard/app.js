// The Souk seller centre: a page on seller-svc's JSON gateway that uses
// only the public API (the same calls as curl), live through the event feed.
// No framework and no build step: DOM built with h(), routes in the hash.

const main = document.getElementById('main');
const state = {
  token: localStorage.getItem('souk.seller.token') || '',
  seller: '',
  cursor: '',
  tab: 'PENDING_PAYMENT',
  after: '', before: '',
  pages: [''], page: 0,
  watch: null,
  refreshTimer: 0,
  view: null, // {name, id}: what the live feed refreshes
};

// ---- DOM and formatting helpers ----

// A live redraw waits while a pointer is down: replacing what was pressed
// before its release would swallow the click (the press and the release
// on different elements make none).
let pressed = false;
let onRelease = [];
document.addEventListener('pointerdown', () => { pressed = true; }, true);
function release() {
  if (!pressed) return;
  pressed = false;
  const waiting = onRelease;
  onRelease = [];
  // In a task of its own: the click this release makes comes first.
  setTimeout(() => waiting.forEach((go) => go()));
}
document.addEventListener('pointerup', release, true);
document.addEventListener('pointercancel', release, true);
window.addEventListener('blur', release); // a release the page never saw must not hold redraws back
// newest returns a check that a view's fetch begun now is still its
// latest and the view still shown: an answer that comes back after a
// later one (a live redraw's list racing the tab the seller clicked) must
// not draw over it.
function newest(view) {
  const n = view.fetches = (view.fetches || 0) + 1;
  return () => state.view === view && view.fetches === n;
}

function released() {
  return pressed ? new Promise((go) => onRelease.push(go)) : Promise.resolve();
}

function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

const fractionDigits = {};
function digits(currency) {
  if (!(currency in fractionDigits)) {
    fractionDigits[currency] = new Intl.NumberFormat('en-US', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  }
  return fractionDigits[currency];
}

// money shows an amount in its currency with the currency's minor units.
function money(m) {
  if (!m || !m.currency) return '—';
  const d = digits(m.currency);
  return new Intl.NumberFormat('en-US', { style: 'currency', currency: m.currency, minimumFractionDigits: d, maximumFractionDigits: d })
    .format(Number(m.amount_minor || 0) / 10 ** d);
}

// decimal is an amount as a form shows it ("12.50").
function decimal(m) {
  const d = digits(m.currency);
  const minor = BigInt(m.amount_minor || 0);
  if (d === 0) return minor.toString();
  const s = minor.toString().padStart(d + 1, '0');
  return s.slice(0, -d) + '.' + s.slice(-d);
}

// toMoney reads what a form's amount field says, exactly (no floats).
function toMoney(text, currency, field) {
  const d = digits(currency);
  const t = String(text).trim();
  const m = /^(\d{1,15})(?:\.(\d+))?$/.exec(t);
  if (!m) throw new FormError(field, 'Enter an amount such as ' + (d ? '12.' + '5'.padEnd(d, '0') : '1200') + '.');
  const frac = m[2] || '';
  if (frac.length > d) throw new FormError(field, `${currency} has ${d} decimal place${d === 1 ? '' : 's'}.`);
  return { amount_minor: (BigInt(m[1]) * 10n ** BigInt(d) + BigInt(frac.padEnd(d, '0') || '0')).toString(), currency };
}

const when = (ts) => ts ? new Date(ts).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' }) : '—';
// An id's short form: the eight random digits after the day an id begins with.
const shortID = (id) => id.slice(4, 8) + id.slice(9, 13);
const statusName = (s) => (s || '').replace('ORDER_STATUS_', '').replaceAll('_', ' ').toLowerCase();

function span(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400), hr = Math.floor(s % 86400 / 3600), min = Math.floor(s % 3600 / 60), sec = s % 60;
  if (d > 0) return `${d} d ${hr} h`;
  if (hr > 0) return `${hr} h ${min} min`;
  if (min > 0) return `${min} min ${sec} s`;
  return `${sec} s`;
}

const deadlineWords = {
  payment: 'auto-cancels in', verification: 'code due in', processing: 'payment check ends in',
  cancel_answer: 'answer within', ship_by: 'ship within', protection: 'protection ends in',
  dispute_answer: 'answer within', offer: 'offer lapses in', part_due: 'next part due in',
};

function countdown(d) {
  return h('span', { class: 'due', 'data-due': d.due_at, 'data-kind': d.kind }, deadlineText(d.kind, d.due_at));
}
function deadlineText(kind, due) {
  const left = new Date(due) - Date.now();
  const words = deadlineWords[kind] || kind + ' in';
  return left > 0 ? `${words} ${span(left)}` : `${kind.replaceAll('_', ' ')}: due now`;
}
setInterval(() => {
  for (const el of document.querySelectorAll('[data-due]')) el.textContent = deadlineText(el.dataset.kind, el.dataset.due);
}, 1000);

function nextDeadline(o) {
  return (o.deadlines || []).slice().sort((a, b) => new Date(a.due_at) - new Date(b.due_at))[0];
}

// ---- the API ----

class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code;
    this.violations = (body.details || []).flatMap((d) => d.field_violations || d.fieldViolations || []);
  }
}
class FormError extends Error {
  constructor(field, message) { super(message); this.violations = [{ field, description: message }]; }
}

async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + state.token };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : {};
  if (res.status === 401) { signOut('Your session ended: sign in again.'); throw new ApiError(401, data); }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// form builds a form whose submit calls act(values, submitter); errors are
// shown at the top and under each field the API names.
function form(opts, ...fields) {
  const alert = h('div', { class: 'alert', role: 'alert', hidden: true });
  const f = h('form', { class: 'card', 'aria-label': opts.title, novalidate: true }, h('h2', {}, opts.title), alert, ...fields,
    h('div', { class: 'actions' }, ...(opts.buttons || [h('button', { type: 'submit' }, opts.submit || 'Save')])));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    alert.hidden = true;
    for (const v of f.querySelectorAll('.violation')) v.remove();
    const values = Object.fromEntries(new FormData(f).entries());
    const buttons = f.querySelectorAll('button');
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await opts.act(values, ev.submitter && ev.submitter.value);
    } catch (err) {
      showErrors(f, alert, err);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
  return f;
}

function showErrors(f, alert, err) {
  const unplaced = [];
  for (const v of err.violations || []) {
    const input = f.querySelector(`[data-field="${CSS.escape(v.field)}"]`) || f.querySelector(`[data-field="${CSS.escape(v.field.split('.')[0])}"]`);
    if (input) input.closest('.field').append(h('div', { class: 'violation' }, v.description));
    else unplaced.push(`${v.field}: ${v.description}`);
  }
  alert.textContent = err.violations && err.violations.length ? 'Please check the form.' + (unplaced.length ? ' ' + unplaced.join('; ') : '') : err.message;
  alert.hidden = false;
}

let fieldSeq = 0;
function field(label, input) {
  const id = 'f' + (++fieldSeq);
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}
const input = (name, { field: f, ...props } = {}) => h('input', { name, 'data-field': f || name, ...props });

// ---- sign-in ----

function decodeSubject(token) {
  try {
    const payload = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    if (payload.role !== 'seller') return '';
    return payload.sub || '';
  } catch { return ''; }
}

async function signIn(token) {
  const seller = decodeSubject(token);
  if (!seller) throw new FormError('token', 'This is not a seller token.');
  state.token = token;
  state.seller = seller;
  try {
    await api('GET', '/v1/stats');
  } catch (err) {
    state.token = '';
    if (err.status === 401) throw new FormError('token', 'The token was refused (expired, or signed with another key).');
    throw err;
  }
  localStorage.setItem('souk.seller.token', token);
  startSession();
}

function signOut(why) {
  localStorage.removeItem('souk.seller.token');
  state.token = '';
  state.cursor = '';
  if (state.watch) state.watch.abort();
  state.watch = null;
  renderSignIn(why);
}

async function renderSignIn(why) {
  document.getElementById('nav').hidden = true;
  document.getElementById('who').hidden = true;
  const tokenInput = h('textarea', { name: 'token', 'data-field': 'token', autocomplete: 'off', spellcheck: 'false', required: true });
  const f = form({ title: 'Sign in to your store', submit: 'Sign in', act: (v) => signIn(v.token.trim()) },
    why ? h('p', { class: 'notice' }, why) : null,
    field('Seller token', tokenInput));
  main.replaceChildren(h('div', { class: 'signin' }, f));
  const cfg = await fetch('config.json').then((r) => r.json()).catch(() => ({}));
  if (cfg.demo_sign_in) {
    f.append(h('p', { class: 'muted' }, 'Development: ',
      h('button', {
        type: 'button', class: 'secondary', id: 'demo', onclick: async () => {
          const r = await fetch('/dev/token', { method: 'POST' }).then((x) => x.json());
          await signIn(r.token);
        },
      }, 'Use the demo store')));
  }
}

function startSession() {
  document.getElementById('nav').hidden = false;
  document.getElementById('who').hidden = false;
  document.getElementById('store').textContent = state.seller;
  watch();
  route();
}

// ---- the live feed ----

function setLive(on) {
  const el = document.getElementById('live');
  el.textContent = on ? 'live' : 'reconnecting…';
  el.classList.toggle('off', !on);
}

async function watch() {
  if (state.watch) state.watch.abort();
  const ctrl = new AbortController();
  state.watch = ctrl;
  while (!ctrl.signal.aborted && state.token) {
    try {
      const res = await fetch('/v1/events' + (state.cursor ? '?cursor=' + state.cursor : ''),
        { headers: { Authorization: 'Bearer ' + state.token }, signal: ctrl.signal });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        if (body.code === 11) { state.cursor = ''; refresh(); continue; } // OUT_OF_RANGE: read everything again
        if (res.status === 401) { signOut('Your session ended: sign in again.'); return; }
        throw new Error(body.message || res.status);
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (line) onFeed(JSON.parse(line));
        }
      }
    } catch (err) {
      if (ctrl.signal.aborted) return;
    }
    setLive(false);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function onFeed(msg) {
  if (msg.error) {
    if (msg.error.code === 11) { state.cursor = ''; refresh(); }
    return;
  }
  const r = msg.result || {};
  setLive(true);
  if (r.heartbeat) {
    state.cursor = r.heartbeat.cursor;
  } else if (r.event) {
    state.cursor = r.event.cursor;
    const v = state.view;
    if (!v) return;
    if (v.name === 'order' && v.id === r.event.order_id && r.event.kind === 'message_sent' && r.event.message) {
      appendMessage(r.event.message);
      return;
    }
    // The order page already shows this version (or a later one): nothing to redraw.
    if (v.name === 'order' && v.id === r.event.order_id && Number(r.event.version) <= (v.version || 0)) return;
    if (v.name === 'orders' || v.name === 'figures' || (v.name === 'order' && v.id === r.event.order_id)) refresh();
  }
}

// refresh redraws the current view soon, once for a burst of events.
function refresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => { if (state.view) state.view.reload(); }, 150);
}

// ---- routes ----

function route() {
  if (!state.token) { renderSignIn(); return; }
  const hash = location.hash || '#/orders';
  const [, name, id] = hash.split('/');
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (name === 'orders' && id) orderPage(id);
  else if (name === 'catalog') catalogPage();
  else if (name === 'coupons') couponsPage();
  else if (name === 'figures') figuresPage();
  else ordersPage();
}

// ---- orders ----

const tabs = [
  ['PENDING_PAYMENT', 'Awaiting payment'],
  ['PAYMENT_PROCESSING', 'Payment being checked'],
  ['PARTIALLY_PAID', 'Partly paid'],
  ['AWAITING_SHIPMENT', 'Awaiting shipment'],
  ['SHIPPED', 'Shipped'],
  ['DISPUTED', 'Disputes'],
  ['CANCELLATION', 'Cancellation requests'],
  ['COMPLETED', 'Completed'],
  ['CANCELLED', 'Cancelled'],
];

function ordersPage() {
  const counts = h('span');
  const tabBar = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Orders by status' });
  const list = h('div', { class: 'card', role: 'tabpanel' });
  const filters = form({
    title: 'Placed between', submit: 'Apply', act: (v) => {
      state.after = v.after; state.before = v.before; state.pages = ['']; state.page = 0; load();
    },
  }, h('div', { class: 'row' },
    field('From (date)', input('after', { type: 'date', value: state.after })),
    field('To (date, included)', input('before', { type: 'date', value: state.before }))));
  filters.classList.add('filters');
  main.replaceChildren(h('h1', {}, 'Orders'), tabBar, filters, list, counts);

  async function load() {
    const current = newest(view);
    const q = new URLSearchParams({ page_size: '20' });
    if (state.tab === 'CANCELLATION') q.set('cancellation_requested', 'true'); else q.set('status', 'ORDER_STATUS_' + state.tab);
    if (state.after) q.set('created_after', new Date(state.after + 'T00:00:00Z').toISOString());
    if (state.before) q.set('created_before', new Date(new Date(state.before + 'T00:00:00Z').getTime() + 86400000).toISOString());
    if (state.pages[state.page]) q.set('page_token', state.pages[state.page]);
    const [stats, page] = await Promise.all([api('GET', '/v1/stats'), api('GET', '/v1/orders?' + q)]);
    await released();
    if (!current()) return; // the seller went elsewhere, or a later list is on its way
    const by = Object.fromEntries((stats.orders_by_status || []).map((c) => [c.status.replace('ORDER_STATUS_', ''), Number(c.count)]));
    by.CANCELLATION = Number(stats.open_cancellation_request_count || 0);
    tabBar.replaceChildren(...tabs.map(([key, label]) => h('button', {
      type: 'button', role: 'tab', 'data-tab': key, 'aria-selected': String(key === state.tab),
      onclick: () => { state.tab = key; state.pages = ['']; state.page = 0; load(); },
    }, label, h('span', { class: 'count', 'data-count': key }, by[key] || 0))));
    const orders = page.orders || [];
    const rows = orders.map((o) => {
      const next = nextDeadline(o);
      const items = (o.items || []).reduce((n, it) => n + Number(it.quantity), 0);
      return h('tr', { 'data-order': o.id },
        h('td', { 'data-label': 'Order' }, h('a', { href: '#/orders/' + o.id }, shortID(o.id))),
        h('td', { 'data-label': 'Placed' }, when(o.created_at)),
        h('td', { 'data-label': 'Buyer' }, o.buyer_id),
        h('td', { 'data-label': 'Items', class: 'num' }, items),
        h('td', { 'data-label': 'Total', class: 'num' }, money(o.total)),
        h('td', { 'data-label': 'Status' }, h('span', { class: 'status' }, statusName(o.status)),
          o.cancellation_request && o.cancellation_request.status === 'OPEN' ? h('span', { class: 'status' }, 'cancellation asked') : null),
        h('td', { 'data-label': 'Next deadline' }, next ? countdown(next) : h('span', { class: 'muted' }, '—')));
    });
    const pager = h('div', { class: 'pager' },
      h('button', { type: 'button', class: 'secondary', disabled: state.page === 0, onclick: () => { state.page--; load(); } }, 'Previous page'),
      h('button', {
        type: 'button', class: 'secondary', disabled: !page.next_page_token, onclick: () => {
          state.pages[state.page + 1] = page.next_page_token; state.page++; load();
        },
      }, 'Next page'));
    list.replaceChildren(orders.length
      ? h('table', { class: 'orders' }, h('thead', {}, h('tr', {}, ...['Order', 'Placed', 'Buyer', 'Items', 'Total', 'Status', 'Next deadline']
        .map((c, i) => h('th', { class: i === 3 || i === 4 ? 'num' : null, scope: 'col' }, c)))), h('tbody', {}, rows))
      : h('p', { class: 'muted', id: 'empty' }, 'No orders here.'), pager);
  }
  const view = { name: 'orders', reload: () => load().catch(showPageError) };
  state.view = view;
  load().catch(showPageError);
}

function showPageError(err) {
  if (err.status === 401) return;
  main.prepend(h('div', { class: 'alert', role: 'alert' }, err.message));
}

// ---- one order ----

async function orderPage(id) {
  const view = { name: 'order', id, version: 0, reload: () => draw().catch(showPageError) };
  state.view = view;
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  let messages;
  async function draw() {
    const current = newest(view);
    let o;
    try {
      [{ order: o }, { messages }] = await Promise.all([
        api('GET', '/v1/orders/' + encodeURIComponent(id)),
        api('GET', `/v1/orders/${encodeURIComponent(id)}/messages?page_size=200`),
      ]);
    } catch (err) {
      if (err.status === 404 || err.status === 400) {
        if (!current()) return;
        main.replaceChildren(h('h1', {}, 'Order not found'), h('p', {}, 'There is no such order in your store. ', h('a', { href: '#/orders' }, 'Back to the orders')));
        state.view = null;
        return;
      }
      throw err;
    }
    await released();
    if (!current()) return; // the seller went elsewhere, or a later draw is on its way
    view.version = Number(o.version);
    const typed = keepTyped();
    main.replaceChildren(
      h('p', {}, h('a', { href: '#/orders' }, '← Orders')),
      h('h1', {}, `Order ${shortID(o.id)} `, h('span', { class: 'status', id: 'order-status' }, statusName(o.status))),
      h('div', { class: 'grid' }, summary(o), h('div', {}, ...actions(o))),
      h('div', { class: 'grid' }, conversation(o, messages || []), timeline(o)),
      h('div', { class: 'grid' }, attempts(o), refunds(o)));
    typed();
  }
  await draw().catch(showPageError);
}

// keepTyped remembers what the seller typed in the page's forms; the
// function it returns puts it back after a redraw (a live update must not
// wipe out a half-written answer).
function keepTyped() {
  const values = new Map();
  for (const el of main.querySelectorAll('form[aria-label] [name]')) {
    if (el.type === 'radio' || el.type === 'checkbox') continue;
    if (el.value !== el.defaultValue) values.set(el.form.getAttribute('aria-label') + '\u0000' + el.name, el.value);
  }
  return () => {
    for (const el of main.querySelectorAll('form[aria-label] [name]')) {
      const v = values.get(el.form.getAttribute('aria-label') + '\u0000' + el.name);
      if (v !== undefined) el.value = v;
    }
  };
}

function summary(o) {
  const cur = o.total.currency;
  return h('section', { class: 'card', 'aria-label': 'Summary' }, h('h2', {}, 'Summary'),
    h('p', {}, 'Buyer ', h('strong', {}, o.buyer_id), ' · placed ', when(o.created_at)),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Item'), h('th', { class: 'num', scope: 'col' }, 'Qty'),
      h('th', { class: 'num', scope: 'col' }, 'Unit price'), h('th', { class: 'num', scope: 'col' }, 'Subtotal'))),
    h('tbody', {}, (o.items || []).flatMap((it, i) => [h('tr', {}, h('td', {}, it.title), h('td', { class: 'num' }, it.quantity),
      h('td', { class: 'num' }, money(it.unit_price)), h('td', { class: 'num' }, money(it.subtotal),
        o.presentment ? h('div', { class: 'muted line-presentment' }, money(o.presentment.items[i].subtotal)) : null)),
    ...(it.discounts || []).map((d) => h('tr', { class: 'discount', 'data-coupon': d.code },
      h('td', { colspan: 3 }, `Coupon ${d.code} `, h('span', { class: 'muted' }, d.source === 'COUPON_SOURCE_STORE' ? '(funded by your store)' : '(funded by the platform)')),
      h('td', { class: 'num' }, '−' + money(d.amount))))]))),
    h('div', { class: 'totals' },
      h('div', {}, h('span', {}, 'Items'), h('span', {}, money(o.items_total))),
      h('div', {}, h('span', {}, 'Shipping'), h('span', { id: 'shipping-fee' }, money(o.shipping_fee))),
      o.coupon_discount && Number(o.coupon_discount.amount_minor) ? h('div', {}, h('span', {}, 'Coupons'),
        h('span', { id: 'coupon-discount' }, '−' + money(o.coupon_discount))) : null,
      o.store_funded && Number(o.store_funded.amount_minor) ? h('div', { class: 'muted' }, h('span', {}, 'of which your store funds'),
        h('span', { id: 'store-funded' }, money(o.store_funded))) : null,
      o.discount && Number(o.discount.amount_minor) ? h('div', {}, h('span', {}, 'Discount'), h('span', {}, '−' + money(o.discount))) : null,
      h('div', { class: 'total' }, h('span', {}, 'Total'), h('span', { id: 'order-total' }, money(o.total))),
      o.presentment ? h('div', { class: 'muted' }, h('span', {}, `Buyer pays in ${o.presentment.currency}`),
        h('span', { id: 'presentment-total', title: `rate ${o.presentment.quote.rate}, quoted until ${when(o.presentment.quote.expires_at)}` },
          money(o.presentment.total))) : null),
    (o.deadlines || []).length ? h('ul', { class: 'deadlines' }, o.deadlines.map((d) => h('li', {}, countdown(d)))) : null,
    o.schedule ? schedule(o) : null,
    o.shipment ? h('p', {}, 'Shipped with ', o.shipment.carrier, ' · ', o.shipment.tracking_number) : null,
    o.cancel_reason ? h('p', {}, 'Cancelled: ', o.cancel_reason.replaceAll('_', ' ')) : null,
    h('p', { class: 'muted' }, cur, ' · protection ', o.protection_days, ' days'));
}

const partKinds = { PAYMENT_PART_KIND_DEPOSIT: 'Deposit', PAYMENT_PART_KIND_BALANCE: 'Balance', PAYMENT_PART_KIND_INSTALMENT: 'Instalment' };
const partStates = {
  PAYMENT_PART_STATUS_OPEN: 'open', PAYMENT_PART_STATUS_PAID: 'paid', PAYMENT_PART_STATUS_PAST_DUE: 'past due', PAYMENT_PART_STATUS_VOID: 'void',
};

// schedule shows an order paid in parts: each part in the store's currency
// and, for a buyer paying in another, in theirs; a part not paid yet
// counts down to its due date.
function schedule(o) {
  const plan = o.schedule.plan || {};
  const policy = plan.kind === 'PAYMENT_PLAN_KIND_DEPOSIT'
    ? (plan.keep_deposit ? 'An unpaid balance keeps the deposit.' : 'An unpaid balance refunds the deposit.') : '';
  const foreign = !!o.presentment;
  return h('div', { class: 'schedule', 'aria-label': 'Payment schedule' }, h('h3', {}, 'Paid in parts'),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Part'), h('th', { class: 'num', scope: 'col' }, 'Amount'),
      foreign ? h('th', { class: 'num', scope: 'col' }, `Buyer pays (${o.presentment.currency})`) : null,
      h('th', { scope: 'col' }, 'Due'), h('th', { scope: 'col' }, 'Status'))),
    h('tbody', {}, o.schedule.parts.map((p) => {
      const open = p.status === 'PAYMENT_PART_STATUS_OPEN' || p.status === 'PAYMENT_PART_STATUS_PAST_DUE';
      return h('tr', { 'data-part': p.seq, class: 'part-' + partStates[p.status].replace(' ', '-') },
        h('td', {}, `${p.seq}. ${partKinds[p.kind]}`), h('td', { class: 'num part-amount' }, money(p.amount)),
        foreign ? h('td', { class: 'num part-presentment' }, money(p.presentment_amount)) : null,
        h('td', {}, open && o.status !== 'ORDER_STATUS_CANCELLED' ? countdown({ kind: 'part_due', due_at: p.due_at }) : when(p.paid_at || p.due_at)),
        h('td', { class: 'part-status' }, partStates[p.status]));
    }))),
    h('p', { class: 'muted' }, 'Paid so far ', h('span', { id: 'amount-paid' }, money(o.amount_paid)), '. ', policy,
      o.status === 'ORDER_STATUS_PARTIALLY_PAID' ? ' Ship once every part is paid.' : ''));
}

function actions(o) {
  const out = [];
  const status = o.status.replace('ORDER_STATUS_', '');
  const post = async (path, body) => { await api('POST', `/v1/orders/${o.id}${path}`, body); refresh(); };
  const cur = o.total.currency;
  if (o.offer && o.offer.status === 'OPEN') {
    out.push(form({
      title: 'Answer the buyer’s offer',
      act: (v, which) => post('/offer:answer', { accept: which === 'accept', note: v.note }),
      buttons: [h('button', { type: 'submit', value: 'accept' }, 'Accept'), h('button', { type: 'submit', value: 'decline', class: 'secondary' }, 'Decline')],
    }, h('p', {}, `The buyer offers ${o.offer.kind === 'OFFER_KIND_SHIPPING_FEE' ? 'a shipping fee' : 'a total'} of `,
      h('strong', {}, money(o.offer.amount)), o.offer.note ? ` — “${o.offer.note}”` : ''),
    field('Note to the buyer', h('textarea', { name: 'note', 'data-field': 'note' }))));
  }
  if (status === 'PENDING_PAYMENT') {
    out.push(form({
      title: 'Adjust the price',
      submit: 'Change the price',
      act: (v) => {
        const body = { reason: v.reason, item_prices: [] };
        for (const it of o.items) {
          const m = toMoney(v['price_' + it.product_id], cur, 'item_prices');
          if (m.amount_minor !== String(it.unit_price.amount_minor)) body.item_prices.push({ product_id: it.product_id, unit_price: m });
        }
        const fee = toMoney(v.shipping_fee, cur, 'shipping_fee');
        if (fee.amount_minor !== String(o.shipping_fee.amount_minor)) body.shipping_fee = fee;
        return post(':adjust-price', body);
      },
    }, ...o.items.map((it) => field(`Unit price of ${it.title} (${cur})`, input('price_' + it.product_id, { field: 'item_prices', inputmode: 'decimal', value: decimal(it.unit_price) }))),
    field(`Shipping fee (${cur})`, input('shipping_fee', { inputmode: 'decimal', value: decimal(o.shipping_fee) })),
    field('Reason (the buyer sees it)', input('reason', { required: true, maxlength: 200 }))));
  }
  const req = o.cancellation_request;
  if (req && req.status === 'OPEN') {
    out.push(form({
      title: 'Answer the cancellation request',
      act: (v, which) => post(':answer-cancellation', { accept: which === 'accept', note: v.note }),
      buttons: [h('button', { type: 'submit', value: 'accept' }, 'Accept and refund'), h('button', { type: 'submit', value: 'reject', class: 'secondary' }, 'Reject')],
    }, h('p', {}, 'The buyer asks to cancel: ', h('strong', {}, req.reason.replaceAll('_', ' ')), req.note ? ` — “${req.note}”` : ''),
    field('Note (required to reject)', h('textarea', { name: 'note', 'data-field': 'note' }))));
  } else if (status === 'AWAITING_SHIPMENT') {
    out.push(form({ title: 'Ship the order', submit: 'Mark as shipped', act: (v) => post(':ship', v) },
      field('Carrier', input('carrier', { required: true })),
      field('Tracking number', input('tracking_number', { required: true })),
      field('Tracking URL (optional)', input('tracking_url', { type: 'url' }))));
  }
  if ((status === 'AWAITING_SHIPMENT' || status === 'SHIPPED') && !(req && req.status === 'OPEN')) {
    // Units the store cannot send, or took back: each refunded at its share
    // of what the line cost after its coupons, in the currency charged.
    const left = o.items.filter((it) => Number(it.refunded_units || 0) < Number(it.quantity));
    if (left.length) {
      out.push(form({
        title: 'Refund items',
        submit: 'Refund',
        act: (v) => post(':refund-items', {
          reason: v.reason,
          items: left.map((it) => ({ product_id: it.product_id, quantity: Number(v['units_' + it.product_id] || 0) }))
            .filter((it) => it.quantity > 0),
        }),
      }, ...left.map((it) => field(`Units of ${it.title} (of ${Number(it.quantity) - Number(it.refunded_units || 0)})`,
        input('units_' + it.product_id, { field: 'items', type: 'number', min: 0, max: Number(it.quantity) - Number(it.refunded_units || 0), value: 0 }))),
      field('Reason (the buyer sees it)', input('reason', { required: true, maxlength: 200 }))));
    }
  }
  if (status === 'SHIPPED') {
    out.push(form({ title: 'Extend buyer protection', submit: 'Extend', act: (v) => post(':extend-protection', { days: Number(v.days), reason: v.reason }) },
      field('Days (1–90)', input('days', { type: 'number', min: 1, max: 90, value: 7 })),
      field('Reason', input('reason'))));
  }
  const dispute = o.dispute;
  if (status === 'DISPUTED' && dispute && dispute.status === 'OPEN') {
    out.push(form({
      title: 'Answer the dispute',
      submit: 'Send the answer',
      act: (v) => {
        if (v.answer === 'accept') return post('/dispute:answer', { accept: {} });
        if (v.answer === 'counter') return post('/dispute:answer', { counter_offer: { amount: toMoney(v.amount, cur, 'counter_offer.amount'), note: v.note } });
        return post('/dispute:answer', { reject: { evidence: { text: v.evidence } } });
      },
    }, h('p', {}, 'The buyer says ', h('strong', {}, dispute.reason.replaceAll('_', ' ')), ' and asks ', h('strong', {}, money(dispute.requested_amount)), ' back.'),
    h('fieldset', { class: 'field', 'data-field': 'answer' }, h('legend', {}, 'Your answer'),
      ...[['accept', 'Accept: refund what the buyer asks'], ['counter', 'Offer another amount'], ['reject', 'Reject, with evidence']].map(([value, label], i) => {
        const id = 'answer-' + value;
        return h('div', {}, h('input', { type: 'radio', name: 'answer', value, id, checked: i === 0 }), h('label', { for: id, class: 'inline' }, label));
      })),
    field(`Amount to refund (${cur}), for a counter-offer`, input('amount', { field: 'counter_offer.amount', inputmode: 'decimal' })),
    field('Note, for a counter-offer', input('note', { field: 'counter_offer.note' })),
    field('Evidence, to reject', h('textarea', { name: 'evidence', 'data-field': 'reject.evidence' }))));
  }
  if (!out.length) out.push(h('section', { class: 'card' }, h('h2', {}, 'Actions'), h('p', { class: 'muted' }, 'Nothing to do in this status.')));
  return out;
}

function messageItem(m) {
  return h('li', { class: m.author, 'data-message': m.id },
    h('div', { class: 'muted' }, m.author === 'seller' ? 'You' : 'Buyer', ' · ', when(m.sent_at)),
    h('div', {}, m.text), ...(m.links || []).map((l) => h('div', {}, h('a', { href: l, rel: 'noopener noreferrer', target: '_blank' }, l))));
}

function appendMessage(m) {
  const list = document.getElementById('messages');
  if (!list || list.querySelector(`[data-message="${CSS.escape(m.id)}"]`)) return;
  list.append(messageItem(m));
  list.scrollTop = list.scrollHeight;
}

function conversation(o, messages) {
  const list = h('ul', { class: 'messages', id: 'messages', 'aria-live': 'polite' }, messages.map(messageItem));
  const f = form({
    title: 'Conversation with the buyer', submit: 'Send',
    act: async (v) => {
      const r = await api('POST', `/v1/orders/${o.id}/messages`, { text: v.text });
      appendMessage(r.message);
      f.reset();
    },
  }, list, field('Message to the buyer', h('textarea', { name: 'text', 'data-field': 'message.text', maxlength: 2000 })));
  return f;
}

function timeline(o) {
  return h('section', { class: 'card', 'aria-label': 'History' }, h('h2', {}, 'History'),
    h('ol', { class: 'timeline' }, (o.history || []).slice().reverse().map((e) => h('li', {},
      h('strong', {}, e.kind.replaceAll('_', ' ')), ' ', h('span', { class: 'muted' }, when(e.occurred_at), ' · ', e.actor),
      e.note && e.kind !== 'message_sent' ? h('div', {}, e.note) : null,
      e.price_adjustment ? h('div', {}, `${money(e.price_adjustment.old_total)} → ${money(e.price_adjustment.new_total)}`) : null))));
}

function attempts(o) {
  const rows = (o.payment_attempts || []).map((a) => h('tr', {},
    h('td', {}, when(a.created_at)),
    h('td', {}, a.method.replace('PAYMENT_METHOD_', '').replace('_', ' ').toLowerCase(), a.card_brand ? ` ${a.card_brand} •••• ${a.card_last4}` : ''),
    h('td', { class: 'num' }, money(a.amount)),
    h('td', {}, a.status.replace('PAYMENT_ATTEMPT_STATUS_', '').toLowerCase(), a.decline ? ` (${a.decline.code})` : '')));
  return h('section', { class: 'card', 'aria-label': 'Payments' }, h('h2', {}, 'Payment attempts'),
    rows.length ? h('table', {}, h('tbody', {}, rows)) : h('p', { class: 'muted' }, 'None yet.'));
}

function refunds(o) {
  const rows = (o.refunds || []).map((r) => h('tr', {},
    h('td', { class: 'num' }, money(r.amount)),
    h('td', {}, r.status.replace('REFUND_STATUS_', '').toLowerCase()),
    h('td', {}, r.reason.replaceAll('_', ' ')),
    h('td', {}, 'due ', when(r.due_at))));
  return h('section', { class: 'card', 'aria-label': 'Refunds' }, h('h2', {}, 'Refunds'),
    rows.length ? h('table', {}, h('tbody', {}, rows)) : h('p', { class: 'muted' }, 'None.'));
}

// ---- catalog ----

async function catalogPage() {
  const view = state.view = { name: 'catalog', reload: () => {} };
  let editing = null;
  const list = h('div', { class: 'card' });
  const holder = h('div');
  main.replaceChildren(h('h1', {}, 'Catalog'), holder, list);
  let token = '';
  async function load() {
    const current = newest(view);
    const r = await api('GET', '/v1/products?page_size=50' + (token ? '&page_token=' + encodeURIComponent(token) : ''));
    if (!current()) return; // the seller went elsewhere, or a later list is on its way
    const ps = r.products || [];
    list.replaceChildren(ps.length ? h('table', { class: 'orders' },
      h('thead', {}, h('tr', {}, ...['Product', 'Price', 'Shipping', 'Stock', 'Handling days', 'Protection days', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ps.map((p) => h('tr', { 'data-product': p.id },
        h('td', { 'data-label': 'Product' }, p.title), h('td', { 'data-label': 'Price' }, money(p.price)),
        h('td', { 'data-label': 'Shipping' }, money(p.shipping_fee)), h('td', { 'data-label': 'Stock' }, p.stock),
        h('td', { 'data-label': 'Handling days' }, p.handling_days), h('td', { 'data-label': 'Protection days' }, p.protection_days),
        h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => { editing = p; draw(); } }, 'Edit ', h('span', { class: 'visually-hidden' }, p.title)))))))
      : h('p', { class: 'muted' }, 'No products yet.'),
    h('div', { class: 'pager' }, h('button', { type: 'button', class: 'secondary', disabled: !r.next_page_token, onclick: () => { token = r.next_page_token; load(); } }, 'Next page')));
  }
  function draw() {
    const p = editing;
    const cur = p ? p.price.currency : 'USD';
    holder.replaceChildren(form({
      title: p ? `Edit ${p.title}` : 'New product', submit: p ? 'Save' : 'Add the product',
      act: async (v) => {
        const c = v.currency || cur;
        const body = {
          title: v.title, price: toMoney(v.price, c, 'price'), shipping_fee: toMoney(v.shipping_fee, c, 'shipping_fee'),
          stock: v.stock, handling_days: Number(v.handling_days), protection_days: Number(v.protection_days),
        };
        if (p) await api('PATCH', '/v1/products/' + p.id, body); else await api('POST', '/v1/products', body);
        editing = null; draw(); load();
      },
      buttons: [h('button', { type: 'submit' }, p ? 'Save' : 'Add the product'), p ? h('button', { type: 'button', class: 'secondary', onclick: () => { editing = null; draw(); } }, 'Cancel') : null].filter(Boolean),
    }, field('Title', input('title', { required: true, value: p ? p.title : '' })),
    h('div', { class: 'row' },
      p ? null : field('Currency', h('select', { name: 'currency', 'data-field': 'currency' }, ...['USD', 'EUR', 'GBP', 'JPY', 'CNY', 'RUB', 'BRL'].map((c) => h('option', { value: c }, c)))),
      field('Price', input('price', { inputmode: 'decimal', required: true, value: p ? decimal(p.price) : '' })),
      field('Shipping fee', input('shipping_fee', { inputmode: 'decimal', required: true, value: p ? decimal(p.shipping_fee) : '0' }))),
    h('div', { class: 'row' },
      field('Stock', input('stock', { type: 'number', min: 0, value: p ? p.stock : 10 })),
      field('Handling days', input('handling_days', { type: 'number', min: 1, value: p ? p.handling_days : 3 })),
      field('Protection days (15–180)', input('protection_days', { type: 'number', min: 15, max: 180, value: p ? p.protection_days : 60 })))));
  }
  draw();
  await load().catch(showPageError);
}

// ---- coupons ----

const localTime = (ts) => {
  const d = new Date(ts);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};

function couponValue(c) {
  if (c.kind === 'COUPON_KIND_PERCENT_OFF') return `${c.percent} % off` + (c.cap ? ` (at most ${money(c.cap)})` : '');
  return money(c.amount) + ' off';
}

function couponState(c) {
  if (c.paused) return 'paused';
  const now = Date.now();
  if (now < new Date(c.starts_at).getTime()) return 'scheduled';
  if (now >= new Date(c.ends_at).getTime()) return 'ended';
  return 'active';
}

async function couponsPage() {
  const view = state.view = { name: 'coupons', reload: () => {} };
  let editing = null;
  let products = [];
  const list = h('div', { class: 'card' });
  const holder = h('div');
  main.replaceChildren(h('h1', {}, 'Coupons'), holder, list);
  async function load() {
    const current = newest(view);
    const r = await api('GET', '/v1/coupons');
    if (!current()) return; // the seller went elsewhere, or a later list is on its way
    const uses = r.coupons || [];
    list.replaceChildren(uses.length ? h('table', { class: 'orders', 'aria-label': 'Your coupons' },
      h('thead', {}, h('tr', {}, ...['Code', 'Takes', 'Valid', 'Limit', 'Holding', 'Used', 'Given back', 'Cost', 'State', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, uses.map((u) => {
        const c = u.coupon;
        const st = couponState(c);
        return h('tr', { 'data-coupon': c.code },
          h('td', { 'data-label': 'Code' }, h('strong', {}, c.code)), h('td', { 'data-label': 'Takes' }, couponValue(c)),
          h('td', { 'data-label': 'Valid' }, when(c.starts_at), ' – ', when(c.ends_at)),
          h('td', { 'data-label': 'Limit' }, Number(c.redemption_limit || 0) ? c.redemption_limit : 'none',
            Number(c.per_buyer_limit || 0) ? ` (${c.per_buyer_limit} a buyer)` : ''),
          h('td', { 'data-label': 'Holding', class: 'reserved' }, u.reserved || '0'), h('td', { 'data-label': 'Used', class: 'consumed' }, u.consumed || '0'),
          h('td', { 'data-label': 'Given back' }, u.released || '0'), h('td', { 'data-label': 'Cost' }, money(u.cost)),
          h('td', { 'data-label': 'State' }, h('span', { class: 'status coupon-state' }, st)),
          h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => { editing = c; draw(); } }, 'Edit ', h('span', { class: 'visually-hidden' }, c.code)),
            ' ', h('button', { type: 'button', class: 'link', 'data-toggle': c.code, onclick: async () => {
              await api('PATCH', '/v1/coupons/' + c.id, { coupon: { ...c, paused: !c.paused } });
              load();
            } }, c.paused ? 'Resume' : 'Pause', h('span', { class: 'visually-hidden' }, ' ' + c.code))));
      }))) : h('p', { class: 'muted' }, 'No coupons yet.'));
  }
  function draw() {
    const c = editing;
    const cur = c ? c.amount.currency : 'USD';
    const percent = !c || c.kind === 'COUPON_KIND_PERCENT_OFF';
    const now = new Date();
    holder.replaceChildren(form({
      title: c ? `Edit ${c.code}` : 'New coupon',
      act: async (v) => {
        const currency = v.currency || cur;
        const kind = v.kind;
        const coupon = {
          code: c ? c.code : v.code.trim(), kind,
          percent: kind === 'COUPON_KIND_PERCENT_OFF' ? Number(v.percent) : 0,
          amount: kind === 'COUPON_KIND_AMOUNT_OFF' ? toMoney(v.amount, currency, 'coupon.amount') : { amount_minor: '0', currency },
          min_subtotal: toMoney(v.min_subtotal || '0', currency, 'coupon.min_subtotal'),
          starts_at: new Date(v.starts_at).toISOString(), ends_at: new Date(v.ends_at).toISOString(),
          redemption_limit: v.redemption_limit || '0', per_buyer_limit: v.per_buyer_limit || '0',
          first_order_only: v.first_order_only === 'on', paused: c ? c.paused : false,
          product_ids: Object.keys(v).filter((k) => k.startsWith('product:')).map((k) => k.slice(8)),
        };
        if (kind === 'COUPON_KIND_PERCENT_OFF' && v.cap) coupon.cap = toMoney(v.cap, currency, 'coupon.cap');
        if (c) await api('PATCH', '/v1/coupons/' + c.id, { coupon: { ...coupon, id: c.id } });
        else await api('POST', '/v1/coupons', { coupon });
        editing = null; draw(); load();
      },
      buttons: [h('button', { type: 'submit' }, c ? 'Save' : 'Create the coupon'),
        c ? h('button', { type: 'button', class: 'secondary', onclick: () => { editing = null; draw(); } }, 'Cancel') : null].filter(Boolean),
    },
    h('div', { class: 'row' },
      field('Code', input('code', { field: 'coupon.code', required: true, value: c ? c.code : '', disabled: !!c, autocapitalize: 'characters' })),
      field('Takes', h('select', { name: 'kind', 'data-field': 'coupon.kind' },
        h('option', { value: 'COUPON_KIND_PERCENT_OFF', selected: percent }, 'a percentage off'),
        h('option', { value: 'COUPON_KIND_AMOUNT_OFF', selected: !percent }, 'an amount off'))),
      c ? null : field('Currency', h('select', { name: 'currency', 'data-field': 'coupon.amount.currency' }, ...['USD', 'EUR', 'GBP', 'JPY', 'CNY', 'RUB', 'BRL'].map((x) => h('option', { value: x }, x))))),
    h('div', { class: 'row' },
      field('Percent (1–100)', input('percent', { field: 'coupon.percent', type: 'number', min: 1, max: 100, value: c ? c.percent : 10 })),
      field('Amount', input('amount', { field: 'coupon.amount', inputmode: 'decimal', value: c && !percent ? decimal(c.amount) : '' })),
      field('At most (optional)', input('cap', { field: 'coupon.cap', inputmode: 'decimal', value: c && c.cap ? decimal(c.cap) : '' })),
      field('Minimum order', input('min_subtotal', { field: 'coupon.min_subtotal', inputmode: 'decimal', value: c && c.min_subtotal ? decimal(c.min_subtotal) : '0' }))),
    h('div', { class: 'row' },
      field('From', input('starts_at', { field: 'coupon.starts_at', type: 'datetime-local', required: true, value: localTime(c ? c.starts_at : now) })),
      field('Until', input('ends_at', { field: 'coupon.ends_at', type: 'datetime-local', required: true,
        value: localTime(c ? c.ends_at : new Date(now.getTime() + 7 * 864e5)) })),
      field('Uses in all (0: no limit)', input('redemption_limit', { field: 'coupon.redemption_limit', type: 'number', min: 0, value: c ? c.redemption_limit || 0 : 0 })),
      field('Uses a buyer (0: no limit)', input('per_buyer_limit', { field: 'coupon.per_buyer_limit', type: 'number', min: 0, value: c ? c.per_buyer_limit || 0 : 1 }))),
    h('div', { class: 'field' }, h('label', { class: 'check' }, input('first_order_only', { type: 'checkbox', checked: !!(c && c.first_order_only) }), ' First order only')),
    products.length ? h('fieldset', { class: 'field' }, h('legend', {}, 'Products (none ticked: the whole store)'),
      ...products.map((p) => h('label', { class: 'check' }, input('product:' + p.id, { type: 'checkbox', checked: !!(c && (c.product_ids || []).includes(p.id)) }), ' ', p.title))) : null));
  }
  try {
    products = (await api('GET', '/v1/products?page_size=50')).products || [];
  } catch (err) {
    showPageError(err);
    return;
  }
  draw();
  await load().catch(showPageError);
}

// ---- figures ----

async function figuresPage() {
  const view = { name: 'figures', reload: () => draw().catch(showPageError) };
  async function draw() {
    const current = newest(view);
    const st = await api('GET', '/v1/stats');
    if (!current()) return; // the seller went elsewhere, or a later draw is on its way
    const days = st.days || [];
    const cur = (days.flatMap((d) => d.revenue || [])[0] || {}).currency;
    main.replaceChildren(h('h1', {}, 'Figures'),
      h('div', { class: 'grid' },
        h('section', { class: 'card', 'aria-label': 'Orders by status' }, h('h2', {}, 'Orders by status'),
          h('table', {}, h('tbody', {}, (st.orders_by_status || []).map((c) => h('tr', {}, h('td', {}, statusName(c.status)), h('td', { class: 'num' }, c.count)))))),
        h('section', { class: 'card', 'aria-label': 'Service' }, h('h2', {}, 'Service'),
          h('p', {}, 'Cancellation rate (your fault): ', h('strong', { id: 'cancel-rate' }, (Number(st.cancellation_rate_bp || 0) / 100).toFixed(2) + ' %'),
            h('span', { class: 'muted' }, ` of ${st.paid_orders || 0} paid orders`)),
          h('p', {}, 'Open cancellation requests: ', st.open_cancellation_request_count || 0, ' · open disputes: ', st.open_dispute_count || 0),
          h('p', {}, 'Refunds in flight: ', st.refunds_in_flight || 0, ' ', (st.refunds_in_flight_amounts || []).map(money).join(', ')),
          h('p', {}, 'Your coupons took off paid orders: ', h('span', { id: 'store-funded-total' },
            (st.store_funded_discounts || []).map(money).join(', ') || 'nothing')))),
      h('section', { class: 'card', 'aria-label': 'Last 30 days' }, h('h2', {}, 'Orders and revenue, last 30 days'),
        chart(days, cur),
        h('table', { class: 'visually-hidden' }, h('tbody', {}, days.map((d) => h('tr', {}, h('td', {}, d.date), h('td', {}, d.orders || 0), h('td', {}, (d.revenue || []).map(money).join(', '))))))));
  }
  state.view = view;
  await draw().catch(showPageError);
}

function chart(days, cur) {
  const W = 600, H = 180, pad = 24, n = days.length || 1, bw = (W - 2 * pad) / n;
  const orders = days.map((d) => Number(d.orders || 0));
  const maxOrders = Math.max(1, ...orders);
  const revenue = days.map((d) => Number(((d.revenue || []).find((m) => m.currency === cur) || {}).amount_minor || 0));
  const maxRevenue = Math.max(1, ...revenue);
  const ns = 'http://www.w3.org/2000/svg';
  const svg = (tag, attrs, ...kids) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    el.append(...kids);
    return el;
  };
  const bars = days.map((d, i) => {
    const bh = (H - 2 * pad) * orders[i] / maxOrders;
    return svg('rect', { class: 'bar', x: pad + i * bw + 1, y: H - pad - bh, width: Math.max(1, bw - 2), height: bh },
      svg('title', {}, `${d.date}: ${orders[i]} orders, ${(d.revenue || []).map(money).join(', ') || 'no revenue'}`));
  });
  const points = revenue.map((r, i) => `${pad + i * bw + bw / 2},${H - pad - (H - 2 * pad) * r / maxRevenue}`).join(' ');
  return svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `Orders per day (bars) and revenue${cur ? ' in ' + cur : ''} (line)` },
    ...bars, svg('polyline', { class: 'line', points }),
    svg('text', { x: pad, y: H - 6 }, days[0] ? days[0].date : ''),
    svg('text', { x: W - pad, y: H - 6, 'text-anchor': 'end' }, days[n - 1] ? days[n - 1].date : ''),
    svg('text', { x: pad, y: 12 }, `${maxOrders} orders · ${cur ? money({ amount_minor: maxRevenue, currency: cur }) : ''}`));
}

// ---- start ----

document.getElementById('signout').addEventListener('click', () => signOut('Signed out.'));
window.addEventListener('hashchange', route);
if (state.token) {
  state.seller = decodeSubject(state.token);
  if (state.seller) startSession(); else signOut();
} else {
  renderSignIn();
}
