"""The default browser wait: until the DOM settles, capped.

A fixed sleep is either too short for a page that renders after 2 s or wastes time on a page that
was ready at ``load``; ``networkidle`` waits 500 ms even on a static page and never settles with a
long-poll. Instead an init script (installed in every context before any page script runs) counts
the asynchronous work a page has started that can still change the DOM:

* fetch and XMLHttpRequest calls in flight (a fetch until its body has been read), scripts
  added after ``load`` until they have run, a message to a Web Worker until it answers, IndexedDB
  requests until they complete, and a WebSocket or EventSource until its first message (each of
  the last three 1 s at most),
* ``setTimeout`` callbacks due within the cap — except timer chains (a callback re-arming itself
  three or more times, like a poller or a carousel), which would never end; an interval is such a
  chain, counted until its second tick has run,
* work the browser runs at a moment of its own choosing, soon: animation-frame and idle callbacks
  (chains three deep excepted, as for timers: an animation loop), an IntersectionObserver's or
  ResizeObserver's first notification (how a lazy section learns it is on screen), a message the
  page posted to itself (the setImmediate of older libraries), and Cache API calls — each due until
  it runs or settles, the first four for 250 ms at most (a page in the background gets no frames),
  Cache API calls for 1 s,
* a page going away: a cross-document navigation it started (a script setting ``location``, a
  form, a refresh), until the page is replaced or 1 s at most, and a refresh to another URL (a
  ``<meta http-equiv=refresh>`` or the Refresh header, which the engine passes in) due within the
  cap, until it fires — not one reloading the same page, which shows what it will show again,
* DOM mutations after DOMContentLoaded (a MutationObserver), messages posted on a
  ``MessageChannel`` (a scheduler slicing its rendering into tasks) and messages a WebSocket or
  EventSource receives (named events too, of the names the page listens to), as the time of the
  last activity.

The page has settled when nothing is in flight or due and the DOM has been quiet for ``quiet`` ms
(the margin for asynchronous work none of the above counts, and for the gaps between a scheduler's
messages: the more the wait counts as due, the less it has to cover), or when nothing has been in
flight for ``max(1 s, 4 × quiet)`` even if an animation keeps mutating the DOM (a callback due
within a frame does not count as in flight there: a clock redrawn in every animation frame always
has one). A look at the page that comes more than a quiet time late (its thread starved on a loaded
machine, so the page could not run either) counts as activity rather than quiet. The wait never
exceeds the cap nor the request's deadline.

Two kinds of loads the page's scripts cannot see, neither of which holds ``load``: a module loaded
by ``import()`` (how bundlers split an app into chunks loaded on demand, a lazy route's code), and
a request a Web Worker makes (data fetched off the main thread, handed over as a message).
:class:`PendingLoads` counts, from the browser's side, the main frame's script, fetch and XHR
requests in flight, its workers' included; when the page settles with one still loading, the
engine waits for it and settles again, the quiet time counted from when the last one arrived (so
the code or data it brings gets to be used).

What the page can see of all this: the functions the engine calls (``settle``, ``snapshot``) hang
on one window property, non-enumerable, read-only and named at random per service process
(:data:`HOOK`), so a page can neither look for a fixed name (a bot check) nor replace them (a page
that did could hold a fetch to its deadline); what the wait remembers about the page's objects is
kept in ``WeakSet``s, not in properties on them. A page whose scripts break the built-ins the wait
and the snapshot use makes the wait fail at once, not hang; the engine then reads the page from
Playwright's isolated world.
"""

from __future__ import annotations

import asyncio
import secrets

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request

INIT_SCRIPT = r"""
(() => {
  // Only a top-level page is ever read: not the blank page a slot is parked on between leases,
  // nor a frame (each would pay for a set of hooks nobody asks).
  if (Object.hasOwn(window, '%(hook)s') || window !== window.top || location.protocol === 'about:') return;
  const setT = window.setTimeout.bind(window);
  const clearT = window.clearTimeout.bind(window);
  const now = () => performance.now();
  const CAP = %(cap)d;
  const POLL = 25;                // ms between looks while requests or timers are pending
  let inflight = 0;
  let depth = 0;                 // timer-chain depth of the callback running now
  const timers = new Map();      // id -> chain depth, for timers that still count
  let lastActivity = now();
  let lastBusy = now();
  const touch = () => { lastActivity = now(); };
  // A chain is a callback scheduling the next (a poller, an animation loop): a callback scheduled
  // now is one link deeper than the one running, and from the third link on it no longer counts.
  const CHAIN = 3;
  const link = () => depth + 1;
  // `fn` run as link `myDepth` of its chain, then `after` (the bookkeeping of its scheduler).
  const asLink = (fn, myDepth, after) => function () {
    const saved = depth;
    depth = myDepth;
    try { return fn.apply(this, arguments); } finally { depth = saved; after(); }
  };
  window.setTimeout = function (fn, delay, ...args) {
    const d = Number(delay) || 0;
    if (typeof fn !== 'function') return setT(fn, d, ...args);
    const myDepth = link();
    const id = setT(asLink(fn, myDepth, () => { timers.delete(id); touch(); }), d, ...args);
    if (d <= CAP && myDepth < CHAIN) timers.set(id, myDepth);
    return id;
  };
  window.clearTimeout = function (id) { timers.delete(id); return clearT(id); };
  // An interval is a chain too: its first tick is one link deeper than the code that set it, each
  // tick one deeper than the last, so it counts (due within the cap) until its second tick has run
  // — a poller that finds what it waits for at once, or an interval used as a one-shot, but not a
  // clock ticking forever.
  const setI = window.setInterval.bind(window);
  const clearI = window.clearInterval.bind(window);
  window.setInterval = function (fn, delay, ...args) {
    const d = Number(delay) || 0;
    if (typeof fn !== 'function') return setI(fn, d, ...args);
    let tick = link();
    const ticked = () => {
      tick++;
      if (timers.delete(id) && tick < CHAIN) timers.set(id, tick);
      if (tick <= CHAIN) touch();  // not every tick of a clock: that is no sign of work
    };
    const id = setI(function () { return asLink(fn, tick, ticked).apply(this, arguments); }, d, ...args);
    if (d <= CAP && tick < CHAIN) timers.set(id, tick);
    return id;
  };
  window.clearInterval = function (id) { timers.delete(id); return clearI(id); };
  // Work the browser runs at a moment of its own choosing, soon: an animation frame's callback, an
  // idle callback, an observer's first notification, a message the page posted to itself. Each is
  // due until it runs — for at most SOON_MAX ms, as a page in the background gets no frames — so
  // a render scheduled that way holds the wait however short the quiet time. Chains three deep
  // (an animation loop re-arming its frame) do not count, as for timers.
  const SOON_MAX = 250;
  const SOON_POLL = 4;           // ms between looks while only such a callback is due
  const soon = new Map();        // key -> when it was asked for
  const dueSoon = (t) => {
    for (const [key, at] of soon) if (t - at > SOON_MAX) soon.delete(key);
    return soon.size > 0;
  };
  const deferred = (request, cancel, prefix) => {
    if (typeof window[request] !== 'function') return;
    const ask = window[request].bind(window);
    const drop = typeof window[cancel] === 'function' ? window[cancel].bind(window) : null;
    window[request] = function (fn, ...rest) {
      if (typeof fn !== 'function') return ask(fn, ...rest);
      const myDepth = link();
      const id = ask(asLink(fn, myDepth, () => soon.delete(prefix + id)), ...rest);
      if (myDepth < CHAIN) soon.set(prefix + id, now());
      return id;
    };
    if (drop) window[cancel] = function (id) { soon.delete(prefix + id); return drop(id); };
  };
  deferred('requestAnimationFrame', 'cancelAnimationFrame', 'frame:');
  deferred('requestIdleCallback', 'cancelIdleCallback', 'idle:');
  // An IntersectionObserver or ResizeObserver notifies once as soon as it observes (how a lazy
  // section learns it is on screen and loads): the observer is due until that first call.
  const notified = new WeakSet();
  for (const name of ['IntersectionObserver', 'ResizeObserver']) {
    const Original = window[name];
    if (typeof Original !== 'function') continue;
    const observe = Original.prototype.observe;
    Original.prototype.observe = function () {
      const result = observe.apply(this, arguments);
      if (!notified.has(this) && link() < CHAIN) soon.set(this, now());
      return result;
    };
    for (const method of ['unobserve', 'disconnect']) {
      const orig = Original.prototype[method];
      Original.prototype[method] = function () { soon.delete(this); return orig.apply(this, arguments); };
    }
    window[name] = new Proxy(Original, {
      construct(target, args, newTarget) {
        const callback = args[0];
        if (typeof callback === 'function') {
          args[0] = function (entries, observer) {
            notified.add(observer);
            soon.delete(observer);
            return callback.apply(this, arguments);
          };
        }
        return Reflect.construct(target, args, newTarget);
      },
    });
  }
  const origFetch = window.fetch;
  if (origFetch) {
    window.fetch = function () {
      inflight++; touch();
      const p = origFetch.apply(this, arguments);
      const done = () => { inflight--; touch(); };
      p.then(done, done);
      return p;
    };
  }
  // The body of a fetch arrives after its promise resolves: reading it is work in flight too.
  for (const name of ['text', 'json', 'arrayBuffer', 'blob', 'formData']) {
    const orig = Response.prototype[name];
    if (!orig) continue;
    Response.prototype[name] = function () {
      inflight++; touch();
      const p = orig.apply(this, arguments);
      const done = () => { inflight--; touch(); };
      p.then(done, done);
      return p;
    };
  }
  const origSend = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function () {
    inflight++; touch();
    this.addEventListener('loadend', () => { inflight--; touch(); }, { once: true });
    return origSend.apply(this, arguments);
  };
  // A scheduler that slices its work into tasks with messages (React's does, rendering in 5 ms
  // slices between which the DOM does not change) is busy until it stops posting: each message is
  // activity, and work in flight (so the calm rule below, for endless animations, does not cut a
  // long render short; a loop that never stops posting holds the wait to the cap).
  const origPost = MessagePort.prototype.postMessage;
  MessagePort.prototype.postMessage = function () {
    touch();
    lastBusy = now();
    return origPost.apply(this, arguments);
  };
  // The same with messages to the window itself (the setImmediate of older libraries and
  // polyfills), each due until it is delivered.
  const origWindowPost = window.postMessage;
  let posted = 0;
  window.postMessage = function () {
    touch();
    lastBusy = now();
    const result = origWindowPost.apply(this, arguments);
    soon.set('message:' + posted++, now());
    return result;
  };
  let delivered = 0;
  window.addEventListener('message', () => {
    if (delivered < posted) soon.delete('message:' + delivered++);
  }, true);
  // Work in flight until the function returned is called, or for `bound` ms at most (a reply that
  // never comes); `ended`, if given, runs once either way.
  const hold = (bound, ended) => {
    let pending = true;
    inflight++;
    touch();
    const done = () => {
      if (!pending) return;
      pending = false;
      clearT(timer);
      inflight--;
      touch();
      if (ended) ended();
    };
    const timer = setT(done, bound);
    return done;
  };
  // A message to a Web Worker is work in flight until the worker answers (its requests, once made,
  // are counted from the browser's side, but starting a worker can take longer than the quiet
  // time) — at most WORKER_REPLY ms, for a worker that never answers.
  const WORKER_REPLY = 1000;
  if (window.Worker) {
    const origWorkerPost = Worker.prototype.postMessage;
    const awaiting = new WeakSet();
    Worker.prototype.postMessage = function () {
      touch();
      if (!awaiting.has(this)) {
        awaiting.add(this);
        const done = hold(WORKER_REPLY, () => { awaiting.delete(this); });
        this.addEventListener('message', done, { once: true });
        this.addEventListener('error', done, { once: true });
      }
      return origWorkerPost.apply(this, arguments);
    };
  }
  // IndexedDB: an app that keeps its data in the browser (offline-first, the last session's cache)
  // renders once it has read it back. Each request is work in flight until it succeeds or fails (a
  // cursor's again after each continue()), for at most STORE_REPLY ms.
  const STORE_REPLY = 1000;
  const pendingStores = new WeakSet();
  const trackStore = (request) => {
    if (!request || pendingStores.has(request)) return request;
    pendingStores.add(request);
    const done = hold(STORE_REPLY, () => {
      pendingStores.delete(request);
      request.removeEventListener('success', done);
      request.removeEventListener('error', done);
    });
    request.addEventListener('success', done);
    request.addEventListener('error', done);
    return request;
  };
  // Each method of `proto` named hands what it returns to `track`.
  const wrapResults = (proto, names, track) => {
    for (const name of names) {
      const orig = proto && proto[name];
      if (typeof orig !== 'function') continue;
      proto[name] = function () { return track(orig.apply(this, arguments)); };
    }
  };
  if (window.IDBFactory) {
    const reads = ['get', 'getAll', 'getAllKeys', 'getKey', 'count', 'openCursor', 'openKeyCursor'];
    wrapResults(IDBFactory.prototype, ['open', 'deleteDatabase'], trackStore);
    wrapResults(IDBObjectStore.prototype, [...reads, 'put', 'add', 'delete', 'clear'], trackStore);
    wrapResults(IDBIndex.prototype, reads, trackStore);
    for (const name of ['continue', 'advance', 'continuePrimaryKey']) {
      const orig = IDBCursor.prototype[name];
      if (typeof orig !== 'function') continue;
      IDBCursor.prototype[name] = function () {
        const result = orig.apply(this, arguments);
        trackStore(this.request);
        return result;
      };
    }
  }
  // The Cache API, the other store an offline-first app renders from: each call is work in flight
  // until its promise settles, for at most STORE_REPLY ms.
  const trackPromise = (promise) => {
    if (!promise || typeof promise.then !== 'function') return promise;
    const done = hold(STORE_REPLY);
    promise.then(done, done);
    return promise;
  };
  if (window.CacheStorage) {
    wrapResults(CacheStorage.prototype, ['open', 'match', 'has', 'keys', 'delete'], trackPromise);
  }
  if (window.Cache) {
    wrapResults(Cache.prototype, ['match', 'matchAll', 'keys', 'add', 'addAll', 'put', 'delete'], trackPromise);
  }
  // A WebSocket or an EventSource brings data when the server sends it (a live page's first
  // snapshot): connecting is work in flight until the first message, or until it fails or closes,
  // for at most STREAM_FIRST ms; every message is activity (a stream that never stops is ended by
  // the calm rule below). A Proxy, so subclasses, instanceof and the constants still work.
  const STREAM_FIRST = 1000;
  const PageEventSource = window.EventSource;
  const watchStream = (stream) => {
    const first = hold(STREAM_FIRST);
    const arrived = () => { first(); touch(); };
    stream.addEventListener('message', arrived);
    stream.addEventListener('error', first);
    stream.addEventListener('close', first);
    // An EventSource delivers a named event ("event: price") only to listeners of that name, so
    // one is added for each name the page listens to, ahead of the page's own: the first named
    // event ends the connecting wait, as a message does, instead of its 1 s bound.
    const listen = stream.addEventListener;
    const heard = new Set(['message', 'error', 'open', 'close']);
    if (typeof PageEventSource === 'function' && stream instanceof PageEventSource) {
      stream.addEventListener = function (type) {
        if (!heard.has(String(type))) {
          heard.add(String(type));
          listen.call(this, type, arrived);
        }
        return listen.apply(this, arguments);
      };
    }
  };
  for (const name of ['WebSocket', 'EventSource']) {
    const Original = window[name];
    if (typeof Original !== 'function') continue;
    window[name] = new Proxy(Original, {
      construct(target, args, newTarget) {
        const stream = Reflect.construct(target, args, newTarget);
        watchStream(stream);
        return stream;
      },
    });
  }
  // A script added at run time (a loader, a dynamic import shim) is work in flight until it runs.
  const seenScripts = new WeakSet();
  const watchScript = (node) => {
    if (node.nodeName !== 'SCRIPT' || !node.src || seenScripts.has(node)) return;
    seenScripts.add(node);
    inflight++;
    const done = () => { inflight--; touch(); };
    node.addEventListener('load', done, { once: true });
    node.addEventListener('error', done, { once: true });
  };
  const observer = new MutationObserver((records) => {
    touch();
    if (document.readyState !== 'complete') return;  // parser-inserted scripts block load anyway
    for (const record of records) record.addedNodes.forEach(watchScript);
  });
  // Observing from DOMContentLoaded on: the parser's own insertions are not "activity" and cost a
  // record each on a big page. This listener is registered before any page script's, so it runs first.
  const watched = { subtree: true, childList: true, characterData: true, attributes: true };
  document.addEventListener('DOMContentLoaded', () => {
    touch();
    observer.observe(document, watched);
  }, { once: true });
  // A web component renders into its shadow root, which neither the observer above nor outerHTML
  // reaches: every root is watched as it is made, and kept for the snapshot (closed ones too,
  // which nothing else can reach).
  const roots = [];
  const origAttach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function () {
    const root = origAttach.apply(this, arguments);
    roots.push(root);
    observer.observe(root, watched);
    return root;
  };
  // A page that moves itself on (a script setting location, a form it submits, a refresh) is
  // about to be replaced: reading it now reads a page that is going away. A cross-document
  // navigation it starts holds the wait until the page goes — LEAVING ms at most: one that fails
  // or turns out a download leaves the page in place.
  const LEAVING = 1000;
  let leavingUntil = 0;
  const leaving = () => { leavingUntil = now() + LEAVING; };
  // (The Navigation API: Chromium has had it since version 102.)
  navigation.addEventListener('navigate', (event) => { if (!event.destination.sameDocument) leaving(); });
  // A router that intercepts it (the page's own listeners run after this one) keeps the page.
  const intercept = NavigateEvent.prototype.intercept;
  NavigateEvent.prototype.intercept = function () { leavingUntil = 0; return intercept.apply(this, arguments); };
  // A refresh to another URL (`<meta http-equiv=refresh>`, or the Refresh header the engine passes
  // in; read as engines/refresh.py reads it) is a redirect the browser makes `delay` s after load:
  // due until then (and LEAVING more, for a loaded machine's late timer) when that is within the
  // cap. One reloading the same page (a dashboard's auto-refresh) is not: the page is what it shows.
  const refreshDelay = (value) => {
    const m = /^\s*(\d*)([\d.]*)\s*[;,]?\s*([\s\S]*)$/.exec(String(value));
    if (!m || (!m[1] && !m[2].startsWith('.'))) return Infinity;
    let target = m[3].replace(/^url\s*=\s*/i, '');
    if (target[0] === '"' || target[0] === "'") {
      const end = target.indexOf(target[0], 1);
      target = target.slice(1, end < 0 ? undefined : end);
    }
    target = target.trim();
    const here = location.href.split('#')[0];
    try {
      const url = new URL(target || here, document.baseURI);  // a javascript: URL is no redirect
      if (!/^https?:$/.test(url.protocol) || url.href.split('#')[0] === here) return Infinity;
    } catch (error) {
      return Infinity;
    }
    return Number(m[1] || 0) * 1000;
  };
  // When the soonest such refresh fires, once load has ended (before, readyState holds the wait).
  const refreshTime = (header) => {
    const entry = performance.getEntriesByType('navigation')[0];
    if (!entry || !entry.loadEventEnd) return null;
    const metas = [...document.querySelectorAll('meta[http-equiv="refresh" i]')].map((m) => m.content);
    return entry.loadEventEnd + Math.min(...[header, ...metas].filter((v) => v != null).map(refreshDelay));
  };
  // The page and its title, read in the same call that waited: two round trips fewer per page.
  const snapshot = %(snapshot)s;
  const settle = (quiet, cap, fresh, refresh) => new Promise((resolve, reject) => {
    const start = now();
    if (fresh) touch();  // something the page cannot see just happened (a script arrived): quiet from now
    let dueAt = null;
    let refreshAt = null;
    const check = () => { try { look(); } catch (error) { reject(error); } };  // never a hang
    const look = () => {
      const t = now();
      if (refreshAt === null) refreshAt = refreshTime(refresh);
      // A look that comes a whole quiet time late means the page's thread was starved (a loaded
      // machine): the page could not run either, so that time was not quiet — count it as activity.
      if (dueAt !== null && t - dueAt > Math.max(25, quiet)) touch();
      const waiting = inflight > 0 || timers.size > 0 || document.readyState !== 'complete' || t < leavingUntil
        || (refreshAt !== null && refreshAt <= start + cap && t < refreshAt + LEAVING);
      const busy = dueSoon(t) || waiting;
      // A callback due within a frame holds this look, not the calm rule's second: a live clock
      // redrawn in every animation frame always has one due, and would hold the wait to the cap.
      if (waiting) lastBusy = t;
      const idleFor = t - lastBusy;
      const calm = Math.max(1000, 4 * quiet);
      const settled = !busy && (t - lastActivity >= quiet || idleFor >= calm);
      if (settled || t - start >= cap) {
        const pending = timers.size + soon.size;
        resolve({ settled, waited_ms: Math.round(t - start), inflight, timers: pending, ...snapshot(roots) });
      } else {
        // Idle: look again exactly when the quiet time would be up (a mutation meanwhile moves it
        // on), not on a fixed tick that overshoots by half a tick on average. Busy: poll — often
        // when all that is due is a callback the browser runs within a frame or so.
        const due = busy ? (waiting ? POLL : SOON_POLL) : Math.min(quiet - (t - lastActivity), calm - idleFor);
        const wait = Math.max(1, Math.ceil(Math.min(due, cap - (t - start))));
        dueAt = t + wait;
        setT(check, wait);
      }
    };
    check();
  });
  Object.defineProperty(window, '%(hook)s', {
    value: Object.freeze({ settle, snapshot: () => snapshot(roots) }),
    enumerable: false,
    writable: false,
    configurable: false,
  });
})();
"""


#: The page serialised as Playwright's ``page.content()`` does, and its title — with the content of
#: shadow roots as declarative shadow DOM (``<template shadowrootmode>``, which the extractors
#: read as part of its host): the roots ``known`` to the init script and every open one.
SNAPSHOT = """(known) => {
  let html = '';
  if (document.doctype) html = new XMLSerializer().serializeToString(document.doctype);
  const top = document.documentElement;
  if (!top) return { html, title: document.title };
  const roots = new Set();
  const visit = (scope) => {  // a TreeWalker: a third of querySelectorAll('*')'s cost on a big page
    const walker = document.createTreeWalker(scope, NodeFilter.SHOW_ELEMENT);
    while (walker.nextNode()) {
      const root = walker.currentNode.shadowRoot;
      if (root && !roots.has(root)) { roots.add(root); visit(root); }
    }
  };
  for (const root of known || []) { if (!roots.has(root)) { roots.add(root); visit(root); } }
  visit(document);  // open roots the init script did not see made (the parser's declarative ones)
  if (roots.size && top.getHTML) {
    const shell = top.cloneNode(false).outerHTML;
    html += shell.slice(0, shell.lastIndexOf('</')) + top.getHTML({ shadowRoots: [...roots] }) + '</html>';
  } else {
    html += top.outerHTML;
  }
  return { html, title: document.title };
}"""

#: The window property the init script's functions hang on: a random name per service process.
HOOK = "_" + secrets.token_hex(8)

#: Read the page: through the init script when it is there (it knows the closed shadow roots).
READ = f"() => window['{HOOK}'] ? window['{HOOK}'].snapshot() : ({SNAPSHOT})()"

#: Wait until the page settles, then read it (``(quiet_ms, cap_ms, fresh, refresh_header)``); a page
#: without the init script (one Chromium made itself, an error page) is read at once.
SETTLE = f"(q, c, f, r) => window['{HOOK}'] ? window['{HOOK}'].settle(q, c, f, r) : ({SNAPSHOT})()"


def init_script(cap_ms: int) -> str:
    return INIT_SCRIPT % {"cap": cap_ms, "snapshot": SNAPSHOT, "hook": HOOK}


#: What can bring a page code or data to render. Not "eventsource" and "websocket" (streams that
#: never end), nor images, styles or fonts (which do not change the text).
PENDING_TYPES = frozenset({"script", "fetch", "xhr"})


class PendingLoads:
    """The main frame's (and its workers') script and data requests still in flight, fed by the
    page's request events."""

    def __init__(self, page: Page) -> None:
        self._page = page
        self._pending: set[Request] = set()
        self.idle = asyncio.Event()
        self.idle.set()

    def __len__(self) -> int:
        return len(self._pending)

    def started(self, request: Request) -> None:
        if request.resource_type not in PENDING_TYPES:
            return
        try:
            frame = request.frame
        except PlaywrightError:  # a service worker's request has no frame
            return
        if frame != self._page.main_frame:
            return
        if request.redirected_from is not None:  # the same load, moved on
            self._pending.discard(request.redirected_from)
        self._pending.add(request)
        self.idle.clear()

    def ended(self, request: Request) -> None:
        self._pending.discard(request)
        if not self._pending:
            self.idle.set()
