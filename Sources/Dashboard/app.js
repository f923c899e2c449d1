// corral web dashboard: the browser side.
//
// One page, hash routing (#/ and #/vm/NAME), no framework. Every string that comes from the server (VM names,
// paths, messages) goes into the DOM through textContent or attribute setters, never through innerHTML.
// scripts/build-web-assets bundles this file, xterm and noVNC into dashboard.js and the CSS into dashboard.css.

import 'xterm/lib/xterm.css';
import './app.css';
import { Terminal } from 'xterm';
import RFB from 'novnc/core/rfb.js';
import { initLogging as initNoVNCLogging } from 'novnc/core/util/logging.js';

// noVNC logs a refused connection (4409: the VM has no display) as an error; the page says it in #vnc-status.
initNoVNCLogging('none');

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** Creates an element. `props`: class, text, dataset, hidden, disabled, title and any attribute; children are
 *  nodes or strings (strings become text nodes). */
function h(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === 'class') node.className = value;
        else if (key === 'text') node.textContent = String(value);
        else if (key === 'dataset') Object.assign(node.dataset, value);
        else if (key === 'hidden' || key === 'disabled') node[key] = Boolean(value);
        else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
        if (child === null || child === undefined || child === false) continue;
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
}

const enc = encodeURIComponent;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const MiB = 1024 * 1024;

function formatBytes(bytes) {
    if (typeof bytes !== 'number' || !isFinite(bytes)) return '–';
    if (bytes < 1024) return `${bytes} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let value = bytes / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    const digits = value >= 100 || Number.isInteger(value) ? 0 : 1;
    return `${value.toFixed(digits)} ${units[unit]}`;
}

function formatDuration(seconds) {
    if (typeof seconds !== 'number' || !isFinite(seconds) || seconds < 0) return '–';
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400);
    const hr = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    const pad = (n) => String(n).padStart(2, '0');
    if (d > 0) return `${d}d ${hr}h`;
    if (hr > 0) return `${hr}h ${pad(m)}m`;
    if (m > 0) return `${m}m ${pad(sec)}s`;
    return `${sec}s`;
}

function formatNumber(value, digits = 1) {
    return typeof value === 'number' && isFinite(value) ? value.toFixed(digits) : '–';
}

function wsURL(path) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}${path}`;
}

function vmPath(name, rest = '') {
    return `/v1/vms/${enc(name)}${rest}`;
}

/** Runs `fn` so that calls while it runs fold into one more run afterwards. */
function coalesced(fn) {
    let running = null;
    let again = false;
    return function run() {
        if (running) { again = true; return running; }
        running = (async () => {
            try {
                do { again = false; await fn(); } while (again);
            } finally {
                running = null;
            }
        })();
        return running;
    };
}

/** A trigger that runs `fn` once, `delay` ms after the first of a burst of calls. */
function throttled(fn, delay) {
    let timer = null;
    const trigger = () => {
        if (timer !== null) return;
        timer = setTimeout(() => { timer = null; fn(); }, delay);
    };
    trigger.cancel = () => { if (timer !== null) { clearTimeout(timer); timer = null; } };
    return trigger;
}

// ---------------------------------------------------------------------------------------------------------------
// Errors and the error bar

class ApiError extends Error {
    constructor(status, code, message, details = []) {
        super(message);
        this.status = status;
        this.code = code;
        this.details = details;
    }
}

/** Thrown after a 401: the page has already gone back to the login view, nothing else to show. */
class SessionLost extends Error {
    constructor() { super('session lost'); }
}

const isAbort = (error) => error && (error.name === 'AbortError');

/** Reads an error reply ({"error", "message", ...}) into an ApiError; never shows raw JSON. */
async function errorFrom(response) {
    let code = `http-${response.status}`;
    let message = `${response.status} ${response.statusText || 'error'}`.trim();
    const details = [];
    try {
        const body = JSON.parse(await response.text());
        if (body && typeof body === 'object') {
            if (typeof body.error === 'string') code = body.error;
            if (typeof body.message === 'string' && body.message) message = body.message;
            if (body.qmp && typeof body.qmp.desc === 'string' && !message.includes(body.qmp.desc)) {
                message += ` (QEMU: ${body.qmp.desc})`;
            }
            if (Array.isArray(body.diagnostics)) {
                for (const d of body.diagnostics) {
                    if (d && typeof d.message === 'string') {
                        details.push(`${d.path ? d.path + ': ' : ''}${d.message}`);
                    }
                }
            }
            if (Array.isArray(body.qemuOutput)) {
                for (const line of body.qemuOutput.slice(-20)) details.push(String(line));
            }
        }
    } catch {
        // Not JSON: keep the status line.
    }
    return new ApiError(response.status, code, message, details);
}

const errorBar = {
    show(error) {
        if (!error || error instanceof SessionLost || isAbort(error)) return;
        const message = error instanceof ApiError || error instanceof Error ? error.message : String(error);
        $('#error-text').textContent = message;
        const details = error instanceof ApiError ? error.details : [];
        const pre = $('#error-details');
        pre.textContent = details.join('\n');
        pre.hidden = details.length === 0;
        $('#error').hidden = false;
    },
    hide() {
        $('#error').hidden = true;
        $('#error-text').textContent = '';
        $('#error-details').textContent = '';
    },
};

// ---------------------------------------------------------------------------------------------------------------
// Session and API calls

const session = {
    csrf: null,
    expiresAt: 0,
    timer: null,
    active: false,
};

/** One API call. Adds the CSRF header to everything but GET; a 401 ends the session; an error reply throws
 *  an ApiError carrying the server's message. */
async function request(method, path, { body, signal, accept = 'application/json' } = {}) {
    const headers = { Accept: accept };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store', signal };
    if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
    }
    if (method !== 'GET' && method !== 'HEAD') headers['X-Corral-CSRF'] = session.csrf || '';
    let response;
    try {
        response = await fetch(path, init);
    } catch (error) {
        if (isAbort(error)) throw error;
        throw new ApiError(0, 'network', `Cannot reach the corral daemon (${error.message || error}).`);
    }
    if (response.status === 401) {
        sessionLost('Your session has ended. Sign in again.');
        throw new SessionLost();
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
}

async function api(method, path, body) {
    const response = await request(method, path, { body });
    if (response.status === 204) return null;
    const text = await response.text();
    return text ? JSON.parse(text) : null;
}

/** Reads an NDJSON body, calling `onObject` for each parsed line. Malformed lines are skipped. */
async function readNDJSON(response, onObject) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    const flush = (final) => {
        let newline;
        while ((newline = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, newline).trim();
            buffer = buffer.slice(newline + 1);
            if (line) parseLine(line);
        }
        if (final && buffer.trim()) { parseLine(buffer.trim()); buffer = ''; }
    };
    const parseLine = (line) => {
        let object;
        try { object = JSON.parse(line); } catch { console.warn('corral: skipping a malformed stream line'); return; }
        onObject(object);
    };
    for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        flush(false);
    }
    buffer += decoder.decode();
    flush(true);
}

function adoptSession(info) {
    session.csrf = info && typeof info.csrf === 'string' ? info.csrf : null;
    session.expiresAt = info && typeof info.expiresAt === 'number' ? info.expiresAt : 0;
    clearTimeout(session.timer);
    session.timer = null;
    if (session.csrf && session.expiresAt > 0) {
        // Look again just after the session's end (the server may have renewed it).
        const wait = Math.min(Math.max(session.expiresAt * 1000 - Date.now() + 1000, 5000), 2 ** 31 - 1);
        session.timer = setTimeout(recheckSession, wait);
    }
}

async function fetchSession() {
    const response = await fetch('/web/session', {
        credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' },
    });
    if (response.ok) return response.json();
    if (response.status === 401) return null;
    throw await errorFrom(response);
}

async function recheckSession() {
    if (!session.active) return;
    try {
        const info = await fetchSession();
        if (!session.active) return;
        if (info) adoptSession(info);
        else sessionLost('Your session has expired. Sign in again.');
    } catch {
        session.timer = setTimeout(recheckSession, 30000);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Views

const views = ['login-view', 'list-view', 'vm-view'];

function showView(id) {
    $('#boot').hidden = true;
    for (const view of views) $('#' + view).hidden = view !== id;
    const loggedIn = id !== 'login-view';
    $('#logout').hidden = !loggedIn;
    $('#host-summary').hidden = !loggedIn || !$('#host-summary').textContent;
    $('#events-status').hidden = !loggedIn;
    $('#crumbs').hidden = !loggedIn;
    $('#crumb-vm').textContent = id === 'vm-view' && currentPage ? currentPage.name : '';
}

function showLogin(message = '') {
    showView('login-view');
    $('#login-error').textContent = message;
    const token = $('#token');
    token.value = '';
    token.focus();
}

function sessionLost(message) {
    const wasActive = session.active;
    stopApp();
    if (wasActive || $('#login-view').hidden) showLogin(message);
}

async function boot() {
    wireStaticHandlers();
    let info = null;
    try {
        info = await fetchSession();
    } catch (error) {
        showLogin(error.message || 'Cannot reach the corral daemon.');
        return;
    }
    if (info) startApp(info);
    else showLogin();
}

async function login(event) {
    event.preventDefault();
    const token = $('#token').value.trim();
    const errorBox = $('#login-error');
    if (!token) { errorBox.textContent = 'Enter the admin token.'; return; }
    const button = $('#login-submit');
    button.disabled = true;
    errorBox.textContent = '';
    try {
        const response = await fetch('/web/login', {
            method: 'POST',
            credentials: 'same-origin',
            cache: 'no-store',
            headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
            body: JSON.stringify({ token }),
        });
        if (!response.ok) {
            const error = await errorFrom(response);
            errorBox.textContent = response.status === 401 && error.code === `http-401`
                ? 'Wrong token.' : error.message;
            return;
        }
        const info = await response.json();
        $('#token').value = '';
        startApp(info);
    } catch (error) {
        errorBox.textContent = `Cannot reach the corral daemon (${error.message || error}).`;
    } finally {
        button.disabled = false;
    }
}

async function logout() {
    try {
        await request('POST', '/web/logout');
    } catch (error) {
        // A 401 has already brought the login view back; anything else: stay, and say why.
        if (!(error instanceof SessionLost)) errorBar.show(error);
        return;
    }
    stopApp();
    showLogin();
}

function startApp(info) {
    adoptSession(info);
    session.active = true;
    errorBar.hide();
    $('#login-error').textContent = '';
    events.start();
    hostSummary.refresh();
    hostSummary.startTimer();
    uptimeTicker.start();
    // The first list loads whatever the route is (body[data-ready] is set once it has rendered).
    list.refresh();
    route({ listLoading: true });
}

function stopApp() {
    session.active = false;
    adoptSession(null);
    events.stop();
    hostSummary.stopTimer();
    uptimeTicker.stop();
    closePage();
    list.clear();
    delete document.body.dataset.ready;
    $('#host-summary').textContent = '';
    errorBar.hide();
}

// ---------------------------------------------------------------------------------------------------------------
// Routing

let currentPage = null;

function parseHash() {
    const hash = location.hash.replace(/^#/, '');
    const match = /^\/vm\/([^/]+)\/?$/.exec(hash);
    if (match) {
        try { return { view: 'vm', name: decodeURIComponent(match[1]) }; } catch { /* fall through */ }
    }
    return { view: 'list' };
}

function route({ listLoading = false } = {}) {
    if (!session.active) return;
    const target = parseHash();
    if (target.view === 'vm') {
        if (!currentPage || currentPage.name !== target.name) {
            closePage();
            currentPage = new VMPage(target.name);
            // Visible before xterm opens in it: xterm measures its characters in the live layout.
            showView('vm-view');
            currentPage.open();
        }
        showView('vm-view');
    } else {
        closePage();
        showView('list-view');
        if (!listLoading) list.refresh();
    }
}

function closePage() {
    if (currentPage) {
        currentPage.destroy();
        currentPage = null;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// VM actions (list and VM view)

const ACTIONS = {
    start: (s) => s === 'stopped' || s === 'crashed',
    stop: (s) => s === 'running' || s === 'paused',
    pause: (s) => s === 'running',
    resume: (s) => s === 'paused',
    kill: (s) => s === 'starting' || s === 'running' || s === 'paused',
    delete: (s) => s !== 'migrating' && s !== 'incoming',
};
const ACTION_LABELS = {
    start: 'Start', stop: 'Shut down', pause: 'Pause', resume: 'Resume', kill: 'Kill', delete: 'Delete',
};
const BUSY_LABELS = {
    start: 'Starting…', stop: 'Shutting down…', pause: 'Pausing…', resume: 'Resuming…', kill: 'Killing…',
    delete: 'Deleting…',
};
const ACTIVE_STATES = new Set(['running', 'paused', 'migrating']);

/** VM name → action in flight. */
const pendingActions = new Map();

/** Shows/enables each `[data-action]` button in `container` for `state`. Inapplicable ones are hidden and
 *  disabled; while an action runs every button of that VM is disabled. */
function updateActionButtons(container, name, state) {
    const pending = pendingActions.get(name);
    for (const button of $$('button[data-action]', container)) {
        const action = button.dataset.action;
        const applicable = Boolean(state) && (ACTIONS[action] ? ACTIONS[action](state) : false);
        button.hidden = !applicable && pending !== action;
        button.disabled = !applicable || pending !== undefined;
        button.classList.toggle('busy', pending === action);
        button.textContent = pending === action ? BUSY_LABELS[action] : ACTION_LABELS[action] || action;
    }
}

function refreshActionButtons(name) {
    const row = list.rowFor(name);
    const vm = list.find(name);
    if (row && vm) updateActionButtons(row, name, vm.state);
    if (currentPage && currentPage.name === name) currentPage.renderActions();
}

async function runAction(name, action) {
    if (action === 'delete') { await deleteVM(name); return; }
    if (pendingActions.has(name)) return;
    pendingActions.set(name, action);
    refreshActionButtons(name);
    try {
        const status = await api('POST', vmPath(name, `/${action}`));
        if (status && typeof status === 'object') knownStatus(status);
    } catch (error) {
        errorBar.show(error);
    } finally {
        pendingActions.delete(name);
        refreshActionButtons(name);
        scheduleRefresh(name);
    }
}

async function deleteVM(name) {
    const vm = (currentPage && currentPage.name === name && currentPage.status) || list.find(name);
    const running = vm && ACTIVE_STATES.has(vm.state);
    const answer = await confirmDialog({
        title: `Delete VM “${name}”?`,
        text: running
            ? 'The VM is running: it is stopped first. Then corral forgets it and removes its state folder.'
            : 'corral forgets the VM and removes its state folder.',
        check: 'Also delete its managed volumes',
        ok: 'Delete',
    });
    if (!answer.ok) return;
    pendingActions.set(name, 'delete');
    refreshActionButtons(name);
    try {
        const volumes = answer.checked ? 'delete' : 'keep';
        await api('DELETE', vmPath(name, `?force=true&volumes=${volumes}`));
        list.remove(name);
        if (currentPage && currentPage.name === name) location.hash = '#/';
    } catch (error) {
        errorBar.show(error);
    } finally {
        pendingActions.delete(name);
        refreshActionButtons(name);
        scheduleRefresh(name);
    }
}

/** An in-page confirmation (a <dialog>): resolves {ok, checked}. */
function confirmDialog({ title, text, check = '', ok = 'OK' }) {
    const dialog = $('#confirm');
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    $('#confirm-option').hidden = !check;
    $('#confirm-check').checked = false;
    $('#confirm-check-label').textContent = check;
    $('#confirm-ok').textContent = ok;
    return new Promise((resolve) => {
        const done = () => {
            dialog.removeEventListener('close', done);
            resolve({ ok: dialog.returnValue === 'ok', checked: $('#confirm-check').checked });
        };
        dialog.returnValue = '';
        dialog.addEventListener('close', done);
        dialog.showModal();
        $('#confirm-cancel').focus();
    });
}

/** A VMStatus from any reply: update the list and the open page. */
function knownStatus(status) {
    list.update(status);
    if (currentPage && currentPage.name === status.name) currentPage.applyStatus(status);
}

// ---------------------------------------------------------------------------------------------------------------
// The VM list

const list = {
    vms: [],
    loaded: false,
    generation: 0,

    find(name) { return this.vms.find((vm) => vm.name === name); },

    rowFor(name) {
        for (const row of $$('#vms tbody tr[data-vm]')) if (row.dataset.vm === name) return row;
        return null;
    },

    clear() {
        this.vms = [];
        this.loaded = false;
        this.generation += 1;
        $('#vms tbody').replaceChildren();
        $('#vm-count').textContent = '';
    },

    update(status) {
        const index = this.vms.findIndex((vm) => vm.name === status.name);
        status._at = Date.now();
        if (index >= 0) this.vms[index] = status;
        else { this.vms.push(status); this.vms.sort((a, b) => a.name.localeCompare(b.name)); }
        if (this.loaded) this.render();
    },

    remove(name) {
        this.vms = this.vms.filter((vm) => vm.name !== name);
        if (this.loaded) this.render();
    },

    refresh: null, // set below (coalesced)

    async load() {
        const generation = this.generation;
        try {
            const vms = await api('GET', '/v1/vms');
            if (generation !== this.generation || !session.active) return;
            const now = Date.now();
            this.vms = (Array.isArray(vms) ? vms : []).map((vm) => Object.assign(vm, { _at: now }));
            this.vms.sort((a, b) => a.name.localeCompare(b.name));
            this.loaded = true;
            this.render();
            document.body.dataset.ready = '1';
        } catch (error) {
            if (generation === this.generation) errorBar.show(error);
        }
    },

    render() {
        const tbody = $('#vms tbody');
        $('#vm-count').textContent = this.vms.length ? `(${this.vms.length})` : '';
        if (this.vms.length === 0) {
            tbody.replaceChildren(h('tr', { class: 'empty' },
                h('td', { colspan: '7' },
                    'No virtual machines on this host. Create one with ',
                    h('code', { text: 'corral up PROFILE' }), '.')));
            return;
        }
        tbody.replaceChildren(...this.vms.map((vm) => this.row(vm)));
    },

    row(vm) {
        const memory = vm.memory || {};
        const cpus = vm.cpus || {};
        const addresses = (vm.nics || []).flatMap((nic) => nic.addresses || []);
        const actions = h('td', { class: 'actions' },
            ...['start', 'stop', 'pause', 'resume', 'kill'].map((action) =>
                h('button', { type: 'button', class: action === 'kill' ? 'danger small' : 'small', dataset: { action } },
                    ACTION_LABELS[action])));
        const row = h('tr', { dataset: { vm: vm.name } },
            h('td', { class: 'name' }, h('a', { href: `#/vm/${enc(vm.name)}`, text: vm.name })),
            h('td', { class: 'state', dataset: { state: vm.state }, title: vm.problem || vm.lastExit || '' }, vm.state),
            h('td', { class: 'num cpus', text: cpus.online !== undefined ? `${cpus.online} / ${cpus.max}` : '–' }),
            h('td', {
                class: 'num memory',
                title: memory.balloonBytes !== undefined ? `balloon ${formatBytes(memory.balloonBytes)}` : '',
                text: formatBytes(memory.sizeBytes),
            }),
            uptimeCell(h('td', { class: 'num uptime' }), vm),
            h('td', { class: 'addresses mono', text: addresses.length ? addresses.slice(0, 2).join(', ') + (addresses.length > 2 ? ' …' : '') : '' }),
            actions);
        updateActionButtons(row, vm.name, vm.state);
        return row;
    },
};
list.refresh = coalesced(() => list.load());

function uptimeCell(cell, vm) {
    if (typeof vm.uptimeSeconds === 'number') {
        cell.dataset.uptime = String(vm.uptimeSeconds);
        cell.dataset.at = String(vm._at || Date.now());
        cell.textContent = formatDuration(vm.uptimeSeconds);
    } else {
        delete cell.dataset.uptime;
        cell.textContent = '–';
    }
    return cell;
}

/** Advances every displayed uptime once a second without asking the server. */
const uptimeTicker = {
    timer: null,
    start() {
        this.stop();
        this.timer = setInterval(() => {
            const now = Date.now();
            for (const cell of $$('[data-uptime]')) {
                const base = Number(cell.dataset.uptime);
                const at = Number(cell.dataset.at);
                cell.textContent = formatDuration(base + (now - at) / 1000);
            }
        }, 1000);
    },
    stop() { clearInterval(this.timer); this.timer = null; },
};

// ---------------------------------------------------------------------------------------------------------------
// Host summary (header)

const hostSummary = {
    timer: null,
    refresh: null,
    async load() {
        try {
            const report = await api('GET', '/v1/host');
            if (!session.active || !report) return;
            this.render(report);
        } catch (error) {
            if (error instanceof SessionLost) return;
            const box = $('#host-summary');
            box.textContent = 'host: unavailable';
            box.title = error.message || '';
            box.hidden = $('#logout').hidden;
        }
    },
    render(report) {
        const box = $('#host-summary');
        const cpus = report.cpus || {};
        const memory = report.memory || {};
        const cpuText = `${formatNumber(cpus.committed, 0)} / ${formatNumber(cpus.capacity, 0)}`;
        const memText = `${formatBytes(memory.committed)} / ${formatBytes(memory.capacity)}`;
        box.replaceChildren(
            h('span', { class: 'metric' }, h('span', { class: 'label', text: 'vCPUs' }), ' ', h('b', { text: cpuText })),
            h('span', { class: 'metric' }, h('span', { class: 'label', text: 'Memory' }), ' ', h('b', { text: memText })));
        const lines = [
            `vCPUs committed ${cpuText} host CPUs (ratio ${formatNumber(cpus.ratio, 2)}` +
                (typeof cpus.limit === 'number' ? `, limit ${formatNumber(cpus.limit, 2)})` : ', no limit)'),
            `Memory committed ${memText} (ratio ${formatNumber(memory.ratio, 2)}` +
                (typeof memory.limit === 'number' ? `, limit ${formatNumber(memory.limit, 2)})` : ', no limit)'),
        ];
        if (typeof report.memoryAvailableBytes === 'number') lines.push(`Host memory available ${formatBytes(report.memoryAvailableBytes)}`);
        if (report.ksm && report.ksm.running) lines.push(`KSM saves ${formatBytes(report.ksm.savedBytes)}`);
        box.title = lines.join('\n');
        box.hidden = $('#logout').hidden;
    },
    soon: null,
    startTimer() {
        this.stopTimer();
        this.timer = setInterval(() => this.refresh(), 30000);
    },
    stopTimer() {
        clearInterval(this.timer);
        this.timer = null;
        if (this.soon) this.soon.cancel();
    },
};
hostSummary.refresh = coalesced(() => hostSummary.load());
hostSummary.soon = throttled(() => { if (session.active) hostSummary.refresh(); }, 3000);

// ---------------------------------------------------------------------------------------------------------------
// Event stream: GET /v1/events?follow=true (NDJSON), reconnecting with backoff

const listRefreshSoon = throttled(() => {
    if (session.active && !$('#list-view').hidden) list.refresh();
}, 200);

const pageRefreshSoon = throttled(() => {
    if (session.active && currentPage) currentPage.refresh();
}, 200);

/** Something about `vm` (or everything, without a name) may have changed. */
function scheduleRefresh(vm) {
    listRefreshSoon();
    if (currentPage && (!vm || currentPage.name === vm)) pageRefreshSoon();
}

const events = {
    generation: 0,
    controller: null,
    running: false,

    start() {
        this.stop();
        this.running = true;
        this.loop(++this.generation);
    },

    stop() {
        this.running = false;
        this.generation += 1;
        if (this.controller) this.controller.abort();
        this.controller = null;
        this.setLive(null);
    },

    setLive(live) {
        const box = $('#events-status');
        box.dataset.live = live === null ? '' : String(live);
        box.textContent = live === null ? '' : live ? 'live' : 'reconnecting…';
        box.title = live ? 'Receiving events from the daemon' : 'The event stream is down; retrying';
    },

    async loop(generation) {
        let backoff = 1000;
        let first = true;
        while (this.running && generation === this.generation) {
            const controller = new AbortController();
            this.controller = controller;
            const openedAt = Date.now();
            try {
                const response = await request('GET', '/v1/events?follow=true',
                    { signal: controller.signal, accept: 'application/x-ndjson' });
                if (generation !== this.generation) { controller.abort(); return; }
                this.setLive(true);
                // Events may have been missed while the stream was down.
                if (!first) { scheduleRefresh(); hostSummary.soon(); }
                first = false;
                await readNDJSON(response, (event) => {
                    if (generation === this.generation) this.handle(event);
                });
            } catch (error) {
                if (error instanceof SessionLost || generation !== this.generation) return;
                if (!isAbort(error)) console.warn('corral: event stream:', error.message || error);
            }
            if (!this.running || generation !== this.generation) return;
            this.setLive(false);
            if (Date.now() - openedAt > 10000) backoff = 1000;
            await sleep(backoff + Math.random() * 250);
            backoff = Math.min(backoff * 2, 30000);
        }
    },

    handle(event) {
        if (!event || typeof event !== 'object') return;
        const vm = typeof event.vm === 'string' ? event.vm : null;
        if (event.name === 'migration-progress') {
            if (currentPage && currentPage.name === vm) currentPage.migrationProgressEvent(event.data);
            return;
        }
        scheduleRefresh(vm);
        hostSummary.soon();
    },
};

// ---------------------------------------------------------------------------------------------------------------
// Graphs (canvas, own drawing)

const WINDOW_SECONDS = 120;

/** A round grid step (1, 2, 2.5 or 5 × 10^k) that covers `value` in at most 5 steps, and the axis top. */
function niceScale(value) {
    const target = value > 0 ? value : 1;
    let step = 10 ** Math.floor(Math.log10(target / 5));
    for (const factor of [1, 2, 2.5, 5, 10]) {
        if (Math.ceil(target / (step * factor) - 1e-9) <= 5) { step *= factor; break; }
    }
    return { step, max: Math.max(step, Math.ceil(target / step - 1e-9) * step) };
}

class Graph {
    /** series: [{key, label, color, fill, dash}]; format(value) for axis labels and the legend. */
    constructor(canvas, { title, series, format, minMax }) {
        this.canvas = canvas;
        this.title = title;
        this.series = series;
        this.format = format;
        this.minMax = minMax;
        this.message = '';
    }

    draw(points, now = Date.now() / 1000) {
        const canvas = this.canvas;
        const width = canvas.clientWidth;
        const height = canvas.clientHeight;
        if (!width || !height) return;
        const dpr = window.devicePixelRatio || 1;
        if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
            canvas.width = Math.round(width * dpr);
            canvas.height = Math.round(height * dpr);
        }
        const ctx = canvas.getContext('2d');
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        ctx.clearRect(0, 0, width, height);

        const font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
        const pad = { left: 58, right: 10, top: 22, bottom: 18 };
        const plotW = width - pad.left - pad.right;
        const plotH = height - pad.top - pad.bottom;
        const start = now - WINDOW_SECONDS;
        const visible = points.filter((p) => p.t >= start - 5);

        let top = typeof this.minMax === 'function' ? this.minMax() : this.minMax || 1;
        for (const p of visible) {
            for (const s of this.series) {
                const v = p[s.key];
                if (typeof v === 'number' && isFinite(v) && v * 1.05 > top) top = v * 1.05;
            }
        }
        const { step, max } = niceScale(top);
        const lines = Math.round(max / step);

        // Grid and axis labels
        ctx.font = font;
        ctx.textBaseline = 'middle';
        ctx.lineWidth = 1;
        for (let i = 0; i <= lines; i += 1) {
            const y = Math.round(pad.top + plotH - (plotH * i) / lines) + 0.5;
            ctx.strokeStyle = i === 0 ? '#b8bfc9' : '#e6e9ee';
            ctx.beginPath();
            ctx.moveTo(pad.left, y);
            ctx.lineTo(pad.left + plotW, y);
            ctx.stroke();
            ctx.fillStyle = '#6b7280';
            ctx.textAlign = 'right';
            ctx.fillText(this.format(step * i), pad.left - 6, y);
        }
        ctx.textBaseline = 'alphabetic';
        ctx.textAlign = 'left';
        ctx.fillText('−2 min', pad.left, height - 4);
        ctx.textAlign = 'center';
        ctx.fillText('−1 min', pad.left + plotW / 2, height - 4);
        ctx.textAlign = 'right';
        ctx.fillText('now', pad.left + plotW, height - 4);

        const x = (t) => pad.left + ((t - start) / WINDOW_SECONDS) * plotW;
        const y = (v) => pad.top + plotH - (Math.min(v, max) / max) * plotH;

        // Series
        ctx.save();
        ctx.beginPath();
        ctx.rect(pad.left, pad.top - 1, plotW, plotH + 2);
        ctx.clip();
        for (const s of this.series) {
            const segments = [];
            let segment = [];
            let previous = null;
            for (const p of visible) {
                const v = p[s.key];
                const usable = typeof v === 'number' && isFinite(v);
                if (!usable || (previous && p.t - previous.t > 8)) {
                    if (segment.length) segments.push(segment);
                    segment = [];
                }
                if (usable) segment.push([x(p.t), y(v)]);
                previous = p;
            }
            if (segment.length) segments.push(segment);
            for (const seg of segments) {
                if (s.fill && seg.length > 1) {
                    ctx.beginPath();
                    ctx.moveTo(seg[0][0], pad.top + plotH);
                    for (const [px, py] of seg) ctx.lineTo(px, py);
                    ctx.lineTo(seg[seg.length - 1][0], pad.top + plotH);
                    ctx.closePath();
                    ctx.fillStyle = s.fill;
                    ctx.fill();
                }
                ctx.beginPath();
                ctx.setLineDash(s.dash || []);
                ctx.strokeStyle = s.color;
                ctx.lineWidth = 1.6;
                seg.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
                if (seg.length === 1) ctx.arc(seg[0][0], seg[0][1], 1.5, 0, Math.PI * 2);
                ctx.stroke();
                ctx.setLineDash([]);
            }
        }
        ctx.restore();

        // Title and legend with the latest values
        ctx.font = `600 ${font}`;
        ctx.textBaseline = 'alphabetic';
        ctx.textAlign = 'left';
        ctx.fillStyle = '#1f2933';
        ctx.fillText(this.title, 4, 13);
        let lx = 4 + ctx.measureText(this.title).width + 14;
        ctx.font = font;
        const last = visible.length ? visible[visible.length - 1] : null;
        for (const s of this.series) {
            const v = last ? last[s.key] : undefined;
            const text = `${s.label} ${typeof v === 'number' && isFinite(v) ? this.format(v) : '–'}`;
            ctx.fillStyle = s.color;
            ctx.fillRect(lx, 5, 10, 8);
            ctx.fillStyle = '#374151';
            ctx.fillText(text, lx + 14, 13);
            lx += 14 + ctx.measureText(text).width + 14;
        }

        // What the canvas shows, also as attributes (for assistive tools and the browser tests).
        for (const s of this.series) {
            const v = last ? last[s.key] : undefined;
            canvas.dataset[s.key] = typeof v === 'number' && isFinite(v) ? String(Math.round(v * 10) / 10) : '';
        }
        canvas.dataset.points = String(visible.filter((p) => this.series.some((s) => typeof p[s.key] === 'number')).length);
        const hasData = visible.some((p) => this.series.some((s) => typeof p[s.key] === 'number'));
        if (!hasData || this.message) {
            ctx.textAlign = 'center';
            ctx.textBaseline = 'middle';
            ctx.fillStyle = '#6b7280';
            const text = this.message || 'waiting for data…';
            ctx.fillText(text.length > 90 ? text.slice(0, 89) + '…' : text, pad.left + plotW / 2, pad.top + plotH / 2);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The VM page

const TERMINAL_THEME = {
    background: '#1b1e23',
    foreground: '#d8dee9',
    cursor: '#d8dee9',
    selection: 'rgba(120, 160, 220, 0.35)',
};

class VMPage {
    constructor(name) {
        this.name = name;
        this.status = null;
        this.gone = false;
        this.destroyed = false;
        this.controller = new AbortController();
        this.timers = new Set();
        this.samples = [];          // {t, cpu, used, balloon}
        this.lastCPU = null;        // {t, seconds}
        this.term = null;
        this.console = { ws: null, decoder: null, userClosed: false };
        this.vnc = { rfb: null, serial: 0, userClosed: false, connected: false };
        this.migration = { controller: null, active: false, result: '' };
        this.refresh = coalesced(() => this.load());
        this.cpuGraph = new Graph($('#cpu-graph'), {
            title: 'CPU',
            series: [{ key: 'cpu', label: 'QEMU process (100 % = 1 host CPU)', color: '#2563eb', fill: 'rgba(37, 99, 235, 0.12)' }],
            format: (v) => `${v >= 10 || v === 0 ? v.toFixed(0) : v.toFixed(1)} %`,
            minMax: 100,
        });
        this.memGraph = new Graph($('#mem-graph'), {
            title: 'Memory (MiB)',
            series: [
                { key: 'used', label: 'guest used', color: '#7c3aed', fill: 'rgba(124, 58, 237, 0.12)' },
                { key: 'balloon', label: 'balloon', color: '#d97706', dash: [5, 3] },
            ],
            format: (v) => `${Math.round(v)} MiB`,
            minMax: () => (this.status && this.status.memory ? this.status.memory.sizeBytes / MiB : 256),
        });
    }

    // --- lifecycle ------------------------------------------------------------------------------------------

    open() {
        const view = $('#vm-view');
        view.dataset.vm = this.name;
        $('#vm-name').textContent = this.name;
        $('#crumb-vm').textContent = this.name;
        document.title = `${this.name} – corral`;
        this.resetDOM();
        $('#screenshot-link').href = vmPath(this.name, '/screenshot');
        this.term = new Terminal({
            rendererType: 'dom',
            rows: 24,
            cols: 100,
            cursorBlink: true,
            scrollback: 5000,
            fontSize: 13,
            fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace',
            theme: TERMINAL_THEME,
        });
        this.term.open($('#console'));
        requestAnimationFrame(() => this.fitConsoleWidth());
        this.term.on('data', (data) => {
            const ws = this.console.ws;
            if (ws && ws.readyState === WebSocket.OPEN) ws.send(data);
        });
        this.drawGraphs();
        // The first status connects the console and the display (applyStatus → autoConnect).
        this.refresh().then(() => this.pollStats());
    }

    /** Widens (or narrows) the console to the columns its panel has room for; the rows stay. Below 40 columns
     *  (a hidden or tiny panel) it keeps what it has. */
    fitConsoleWidth() {
        const term = this.term;
        const panel = $('#console')?.parentElement;
        const cell = term?._core?.renderer?.dimensions?.actualCellWidth;
        if (!term || !panel || !cell) return;
        const style = getComputedStyle(panel);
        const scrollbar = term._core.viewport?.scrollBarWidth || 0;
        const width = panel.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - scrollbar;
        const cols = Math.min(300, Math.floor(width / cell));
        if (cols >= 40 && cols !== term.cols) term.resize(cols, term.rows);
    }

    destroy() {
        this.destroyed = true;
        this.controller.abort();
        for (const timer of this.timers) clearTimeout(timer);
        this.timers.clear();
        this.closeConsole(false);
        this.closeVNC(false);
        if (this.migration.controller) this.migration.controller.abort();
        if (this.term) {
            this.term.dispose();
            this.term = null;
        }
        $('#console').replaceChildren();
        $('#vnc').replaceChildren();
        delete $('#vm-view').dataset.vm;
        document.title = 'corral';
        this.resetDOM();
    }

    later(fn, ms) {
        const timer = setTimeout(() => { this.timers.delete(timer); if (!this.destroyed) fn(); }, ms);
        this.timers.add(timer);
        return timer;
    }

    /** Empties every VM-specific part of the view, so nothing of the previous VM shows. */
    resetDOM() {
        if (document.activeElement && $('#vm-view').contains(document.activeElement)) document.activeElement.blur();
        $('#vm-state').textContent = '';
        delete $('#vm-state').dataset.state;
        $('#vm-details').replaceChildren();
        $('#vm-disks tbody').replaceChildren();
        $('#vm-nics tbody').replaceChildren();
        $('#vm-hostdevs tbody').replaceChildren();
        $('#hostdevs-card').hidden = true;
        $('#vm-gone').hidden = true;
        $('#vm-gone').textContent = '';
        $('#vm-problem').hidden = true;
        $('#vm-body').hidden = false;
        $('#stats-status').textContent = '';
        for (const id of ['#cpus-form', '#memory-add-form', '#memory-remove-form', '#balloon-form', '#disk-add-form', '#nic-add-form', '#migrate-form']) {
            $(id).reset();
        }
        $('#cpus-count').dataset.dirty = '';
        $('#cpus-hint').textContent = '';
        $('#balloon-hint').textContent = '';
        updateNICFormFields();
        $('#migrate-progress').value = 0;
        $('#migrate-status').textContent = '';
        $('#migrate-status').className = 'small';
        $('#migrate-cancel').disabled = true;
        $('#migrate-submit').disabled = false;
        this.setConsoleStatus('', 'idle');
        $('#console-takeover').hidden = true;
        $('#console-connect').textContent = 'Connect';
        this.setVNCStatus('', 'idle');
        $('#vnc').hidden = true;
        $('#vnc-cad').disabled = true;
        $('#vnc-connect').textContent = 'Connect';
        updateActionButtons($('#vm-actions'), this.name, null);
    }

    async load() {
        if (this.destroyed) return;
        try {
            const response = await request('GET', vmPath(this.name), { signal: this.controller.signal });
            const status = await response.json();
            if (this.destroyed) return;
            status._at = Date.now();
            this.applyStatus(status);
        } catch (error) {
            if (this.destroyed || isAbort(error) || error instanceof SessionLost) return;
            if (error instanceof ApiError && error.status === 404) this.markGone(error.message);
            else errorBar.show(error);
        }
    }

    markGone(message) {
        const firstTime = !this.gone;
        this.gone = true;
        this.status = null;
        this.closeConsole(false);
        this.closeVNC(false);
        const notice = $('#vm-gone');
        const migrated = this.migration.result ? ` ${this.migration.result}` : '';
        notice.replaceChildren(
            `No VM named “${this.name}” on this host.${migrated} `,
            h('a', { href: '#/', text: 'Back to the list' }));
        notice.title = message || '';
        notice.hidden = false;
        $('#vm-body').hidden = true;
        $('#vm-problem').hidden = true;
        $('#vm-state').textContent = '';
        delete $('#vm-state').dataset.state;
        updateActionButtons($('#vm-actions'), this.name, null);
        if (firstTime) list.remove(this.name);
    }

    applyStatus(status) {
        if (this.destroyed) return;
        const previous = this.status ? this.status.state : null;
        if (this.gone) {
            this.gone = false;
            $('#vm-gone').hidden = true;
            $('#vm-body').hidden = false;
        }
        this.status = status;
        this.render();
        if (previous !== status.state) this.autoConnect(previous);
    }

    // --- rendering -------------------------------------------------------------------------------------------

    render() {
        const st = this.status;
        if (!st) return;
        const badge = $('#vm-state');
        badge.textContent = st.state;
        badge.dataset.state = st.state;
        this.renderActions();

        const problem = $('#vm-problem');
        problem.textContent = st.problem ? `Problem: ${st.problem}` : '';
        problem.hidden = !st.problem;

        const memory = st.memory || {};
        const cpus = st.cpus || {};
        const rows = [
            ['State', st.state],
            ['Accelerator', st.accel],
            ['PID', st.pid],
            ['Uptime', uptimeCell(h('span'), st)],
            ['vCPUs', cpus.online !== undefined ? `${cpus.online} online of ${cpus.max}` : undefined],
            ['Memory', memory.sizeBytes !== undefined
                ? `${formatBytes(memory.sizeBytes)} boot, up to ${formatBytes(memory.maxBytes)}` : undefined],
            ['Balloon', memory.balloonBytes !== undefined ? formatBytes(memory.balloonBytes) : undefined],
            ['Restarts', st.restartCount],
            ['Last exit', st.lastExit],
            ['Problem', st.problem],
            ['Guest agent', st.agent],
            ['Confinement', st.confinement],
            ['Unplug pending', st.unplugPending && st.unplugPending.length ? st.unplugPending.join(', ') : undefined],
            ['Migrating to', st.migration ? st.migration.to : undefined],
        ];
        const details = $('#vm-details');
        details.replaceChildren(...rows.flatMap(([label, value]) => {
            if (value === undefined || value === null || value === '') return [];
            const dd = h('dd', { dataset: { field: label.toLowerCase().replace(/\s+/g, '-') } },
                value instanceof Node ? value : String(value));
            if (label === 'Problem') dd.classList.add('bad');
            return [h('dt', { text: label }), dd];
        }));

        this.renderDisks();
        this.renderNICs();
        this.renderHostdevs();

        // Forms: the vCPU count follows the VM unless the user is editing it.
        const count = $('#cpus-count');
        if (!count.dataset.dirty && document.activeElement !== count && cpus.online !== undefined) {
            count.value = String(cpus.online);
        }
        $('#cpus-hint').textContent = cpus.max ? `max ${cpus.max}` : '';
        $('#balloon-hint').textContent = memory.balloonBytes !== undefined
            ? `now ${formatBytes(memory.balloonBytes)}` : 'no balloon reported';

        // A migration somebody else started (or ours, before its first line).
        if (!this.migration.active) {
            if (st.state === 'migrating') {
                $('#migrate-cancel').disabled = false;
                $('#migrate-submit').disabled = true;
                if (st.migration && st.migration.progress) this.showProgress(st.migration.progress, st.migration.to);
                else this.setMigrateStatus(`migrating${st.migration ? ' to ' + st.migration.to : ''}…`);
            } else {
                $('#migrate-cancel').disabled = true;
                $('#migrate-submit').disabled = false;
            }
        }
        this.drawGraphs();
    }

    renderActions() {
        updateActionButtons($('#vm-actions'), this.name, this.status && !this.gone ? this.status.state : null);
    }

    renderDisks() {
        const pending = new Set(this.status.unplugPending || []);
        const disks = this.status.disks || [];
        const tbody = $('#vm-disks tbody');
        if (!disks.length) {
            tbody.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: '6', text: 'No disks.' })));
            return;
        }
        tbody.replaceChildren(...disks.map((disk) => h('tr', { dataset: { disk: disk.id } },
            h('td', { class: 'id' }, disk.id, pending.has(disk.id) ? h('span', { class: 'tag', text: 'unplug pending' }) : null),
            h('td', { class: 'mono path', title: disk.file, text: disk.file }),
            h('td', { text: disk.format }),
            h('td', { text: disk.bus }),
            h('td', { text: disk.readonly ? 'read-only' : 'read-write' }),
            h('td', { class: 'actions' },
                h('button', { type: 'button', class: 'small', dataset: { remove: 'disk', id: disk.id }, title: `Unplug disk ${disk.id}` }, 'Remove')))));
    }

    renderNICs() {
        const pending = new Set(this.status.unplugPending || []);
        const nics = this.status.nics || [];
        const tbody = $('#vm-nics tbody');
        if (!nics.length) {
            tbody.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: '6', text: 'No network interfaces.' })));
            return;
        }
        tbody.replaceChildren(...nics.map((nic) => {
            const addresses = (nic.addresses || []).join(', ');
            return h('tr', { dataset: { nic: nic.id } },
                h('td', { class: 'id' }, nic.id, pending.has(nic.id) ? h('span', { class: 'tag', text: 'unplug pending' }) : null),
                h('td', { class: 'mono', text: nic.mac }),
                h('td', { text: nic.mode }),
                h('td', { text: nic.network || '' }),
                h('td', { class: 'mono' }, addresses,
                    addresses && nic.addressSource ? h('span', { class: 'muted small', text: ` (${nic.addressSource})` }) : null),
                h('td', { class: 'actions' },
                    h('button', { type: 'button', class: 'small', dataset: { remove: 'nic', id: nic.id }, title: `Unplug NIC ${nic.id}` }, 'Remove')));
        }));
    }

    renderHostdevs() {
        const devices = this.status.hostdevs || [];
        $('#hostdevs-card').hidden = devices.length === 0;
        $('#vm-hostdevs tbody').replaceChildren(...devices.map((dev) => h('tr', { dataset: { hostdev: dev.id } },
            h('td', { text: dev.id }),
            h('td', { text: dev.kind }),
            h('td', { class: 'mono', text: (dev.host || []).join(', ') || '–' }),
            h('td', { text: dev.source }),
            h('td', { text: dev.failover || '' }))));
    }

    // --- statistics and graphs -------------------------------------------------------------------------------

    async pollStats() {
        if (this.destroyed) return;
        const startedAt = Date.now();
        const status = this.status;
        if (this.gone) {
            this.lastCPU = null;
        } else if (status && ACTIVE_STATES.has(status.state)) {
            try {
                // CPU time is in the VM's status (every VM has it); memory figures need a balloon device.
                const signal = this.controller.signal;
                const fresh = await (await request('GET', vmPath(this.name, ''), { signal })).json();
                let stats = null;
                let statsError = null;
                try {
                    stats = await (await request('GET', vmPath(this.name, '/stats'), { signal })).json();
                } catch (error) {
                    if (this.destroyed || isAbort(error) || error instanceof SessionLost) return;
                    statsError = error;
                }
                if (this.destroyed) return;
                this.addSample(Object.assign({}, stats || {}, { cpuSeconds: fresh.cpuSeconds }));
                const memoryNote = stats ? '' : `Memory statistics unavailable: ${statsError.message}`;
                $('#stats-status').textContent = stats ? this.statsNote(stats) : memoryNote;
                this.cpuGraph.message = this.lastCPU ? '' : 'QEMU CPU time not reported';
                this.memGraph.message = memoryNote;
            } catch (error) {
                if (this.destroyed || isAbort(error) || error instanceof SessionLost) return;
                const text = `Statistics unavailable: ${error.message}`;
                $('#stats-status').textContent = text;
                this.cpuGraph.message = text;
                this.memGraph.message = text;
            }
        } else {
            this.lastCPU = null;
            const text = status ? `No statistics while the VM is ${status.state}.` : '';
            $('#stats-status').textContent = text;
            this.cpuGraph.message = text;
            this.memGraph.message = text;
        }
        this.drawGraphs();
        this.later(() => this.pollStats(), Math.max(500, 2000 - (Date.now() - startedAt)));
    }

    statsNote(stats) {
        if (typeof stats.lastUpdate !== 'number') return 'The guest has not reported memory statistics yet.';
        const age = Date.now() / 1000 - stats.lastUpdate;
        const target = typeof stats.balloonTargetBytes === 'number' ? ` · balloon target ${formatBytes(stats.balloonTargetBytes)}` : '';
        const auto = stats.autoBalloon ? ' · automatic balloon on' : '';
        return `Guest statistics ${age < 2 ? 'just now' : formatDuration(age) + ' old'}${target}${auto}`;
    }

    addSample(stats) {
        const t = Date.now() / 1000;
        const sample = { t, cpu: null, used: null, balloon: null };
        if (typeof stats.cpuSeconds === 'number' && isFinite(stats.cpuSeconds)) {
            const previous = this.lastCPU;
            if (previous && t > previous.t && stats.cpuSeconds >= previous.seconds) {
                sample.cpu = ((stats.cpuSeconds - previous.seconds) / (t - previous.t)) * 100;
            }
            this.lastCPU = { t, seconds: stats.cpuSeconds };
        } else {
            this.lastCPU = null;
        }
        const s = stats.stats || {};
        const total = s['stat-total-memory'];
        const available = s['stat-available-memory'];
        if (typeof total === 'number' && typeof available === 'number' && total >= 0 && available >= 0) {
            sample.used = Math.max(0, total - available) / MiB;
        }
        if (typeof stats.balloonBytes === 'number') sample.balloon = stats.balloonBytes / MiB;
        this.samples.push(sample);
        const cutoff = t - WINDOW_SECONDS - 10;
        while (this.samples.length && this.samples[0].t < cutoff) this.samples.shift();
    }

    drawGraphs() {
        if (this.destroyed) return;
        const now = Date.now() / 1000;
        this.cpuGraph.draw(this.samples, now);
        this.memGraph.draw(this.samples, now);
    }

    // --- console (xterm over the attach WebSocket) ----------------------------------------------------------

    /** Connects the console and the display when the VM (re)enters an active state, unless the user closed them. */
    autoConnect(previousState) {
        if (this.destroyed || this.gone || !this.status) return;
        const active = ACTIVE_STATES.has(this.status.state);
        const wasActive = previousState !== null && ACTIVE_STATES.has(previousState);
        if (active && !wasActive) {
            if (!this.console.ws && !this.console.userClosed) this.openConsole(false);
            if (!this.vnc.rfb && !this.vnc.userClosed) this.openVNC();
        } else if (!active) {
            if (!this.console.ws) {
                this.setConsoleStatus(`Not connected: the VM is ${this.status.state}.`, 'idle');
                $('#console-takeover').hidden = true;
            }
            if (!this.vnc.rfb) this.setVNCStatus(`Not connected: the VM is ${this.status.state}.`, 'idle');
        }
    }

    setConsoleStatus(text, kind) {
        const box = $('#console-status');
        box.textContent = text;
        box.dataset.kind = kind;
    }

    openConsole(force) {
        this.closeConsole(false);
        const url = wsURL(vmPath(this.name, '/console/attach') + (force ? '?force=true' : ''));
        let ws;
        try {
            ws = new WebSocket(url);
        } catch (error) {
            this.setConsoleStatus(`Cannot connect: ${error.message}`, 'bad');
            return;
        }
        ws.binaryType = 'arraybuffer';
        const c = this.console;
        c.ws = ws;
        c.decoder = new TextDecoder('utf-8');
        c.userClosed = false;
        $('#console-takeover').hidden = true;
        $('#console-connect').textContent = 'Disconnect';
        this.setConsoleStatus(force ? 'Taking over…' : 'Connecting…', 'busy');
        ws.addEventListener('open', () => {
            if (c.ws !== ws) return;
            this.setConsoleStatus('Connected. Click the terminal to type.', 'ok');
        });
        ws.addEventListener('message', (event) => {
            if (c.ws !== ws || !this.term) return;
            if (typeof event.data === 'string') this.term.write(event.data);
            else this.term.write(c.decoder.decode(new Uint8Array(event.data), { stream: true }));
        });
        ws.addEventListener('close', (event) => {
            if (c.ws !== ws) return;
            const rest = c.decoder.decode();
            if (rest && this.term) this.term.write(rest);
            c.ws = null;
            $('#console-connect').textContent = 'Connect';
            if (event.code >= 4000 && event.code < 5000) {
                const status = event.code - 4000;
                this.setConsoleStatus(`Refused (${status}): ${event.reason || 'no reason given'}`, 'bad');
                $('#console-takeover').hidden = status !== 409;
            } else if (c.userClosed) {
                this.setConsoleStatus('Disconnected.', 'idle');
            } else {
                const why = event.reason ? `: ${event.reason}` : '';
                this.setConsoleStatus(`Disconnected${why}.`, 'idle');
                // Another client may have taken the console over.
                $('#console-takeover').hidden = !(this.status && ACTIVE_STATES.has(this.status.state));
            }
        });
    }

    closeConsole(byUser) {
        const c = this.console;
        if (byUser) c.userClosed = true;
        const ws = c.ws;
        c.ws = null;
        if (ws) {
            try { ws.close(1000, 'closed by the user'); } catch { /* already closing */ }
            if (!this.destroyed) {
                this.setConsoleStatus('Disconnected.', 'idle');
                $('#console-connect').textContent = 'Connect';
            }
        }
    }

    // --- display (noVNC) ------------------------------------------------------------------------------------

    setVNCStatus(text, kind) {
        const box = $('#vnc-status');
        box.textContent = text;
        box.dataset.kind = kind;
    }

    openVNC() {
        this.closeVNC(false);
        const v = this.vnc;
        const serial = ++v.serial;
        const current = () => v.serial === serial && !this.destroyed;
        v.userClosed = false;
        v.connected = false;
        const box = $('#vnc');
        box.replaceChildren();
        let refusal = null;
        let ws;
        try {
            // The server negotiates no subprotocol. noVNC gets this WebSocket as its channel, so that the close
            // code and reason (4000 + HTTP status, the message) stay readable here.
            ws = new WebSocket(wsURL(vmPath(this.name, '/vnc')), []);
        } catch (error) {
            this.setVNCStatus(`Cannot connect: ${error.message}`, 'bad');
            return;
        }
        ws.addEventListener('close', (event) => {
            if (!current() || event.code < 4000 || event.code >= 5000) return;
            const status = event.code - 4000;
            refusal = event.reason || 'the server refused the display';
            this.setVNCStatus(status === 409 ? `No display: ${refusal}` : `Refused (${status}): ${refusal}`, 'bad');
            box.hidden = true;
        });
        let rfb;
        try {
            rfb = new RFB(box, ws, { wsProtocols: [], shared: true });
        } catch (error) {
            try { ws.close(); } catch { /* ignore */ }
            this.setVNCStatus(`Cannot start the VNC client: ${error.message}`, 'bad');
            return;
        }
        v.rfb = rfb;
        rfb.scaleViewport = true;
        rfb.resizeSession = false;
        rfb.background = '#1b1e23';
        // The screen shows once the RFB handshake is through: a refusal leaves no empty box behind.
        box.hidden = true;
        this.setVNCStatus('Connecting…', 'busy');
        $('#vnc-connect').textContent = 'Disconnect';
        let desktop = '';
        rfb.addEventListener('connect', () => {
            if (!current()) return;
            v.connected = true;
            box.hidden = false;
            $('#vnc-cad').disabled = false;
            this.setVNCStatus(desktop ? `Connected: ${desktop}` : 'Connected.', 'ok');
        });
        rfb.addEventListener('desktopname', (event) => {
            if (!current()) return;
            desktop = (event.detail && event.detail.name) || '';
            if (v.connected && desktop) this.setVNCStatus(`Connected: ${desktop}`, 'ok');
        });
        rfb.addEventListener('securityfailure', (event) => {
            if (!current()) return;
            refusal = (event.detail && event.detail.reason) || 'security negotiation failed';
            this.setVNCStatus(`Refused: ${refusal}`, 'bad');
        });
        rfb.addEventListener('disconnect', (event) => {
            if (!current()) return;
            v.rfb = null;
            v.connected = false;
            box.hidden = true;
            box.replaceChildren();
            $('#vnc-cad').disabled = true;
            $('#vnc-connect').textContent = 'Connect';
            if (refusal) return; // the close listener has said why
            if (event.detail && event.detail.clean) this.setVNCStatus('Disconnected by the server.', 'idle');
            else this.setVNCStatus('Connection lost.', 'bad');
        });
    }

    closeVNC(byUser) {
        const v = this.vnc;
        if (byUser) v.userClosed = true;
        v.serial += 1; // late events of the old connection are ignored
        const rfb = v.rfb;
        v.rfb = null;
        v.connected = false;
        if (rfb) {
            try { rfb.disconnect(); } catch { /* already down */ }
        }
        if (!this.destroyed) {
            if (rfb) this.setVNCStatus('Disconnected.', 'idle');
            $('#vnc').hidden = true;
            $('#vnc').replaceChildren();
            $('#vnc-cad').disabled = true;
            $('#vnc-connect').textContent = 'Connect';
        }
    }

    // --- hotplug ---------------------------------------------------------------------------------------------

    async change(method, rest, body, form) {
        const button = form ? $('button[type=submit]', form) : null;
        if (button) button.disabled = true;
        try {
            const status = await api(method, vmPath(this.name, rest), body);
            if (this.destroyed) return false;
            if (status && typeof status === 'object' && status.name) knownStatus(status);
            return true;
        } catch (error) {
            errorBar.show(error);
            return false;
        } finally {
            if (button) button.disabled = false;
            scheduleRefresh(this.name);
        }
    }

    // --- migration -------------------------------------------------------------------------------------------

    setMigrateStatus(text, kind = '') {
        const box = $('#migrate-status');
        box.textContent = text;
        box.className = `small ${kind}`.trim();
    }

    showProgress(progress, destination) {
        if (!progress || typeof progress !== 'object') return;
        const bar = $('#migrate-progress');
        if (typeof progress.percent === 'number') bar.value = Math.max(0, Math.min(100, progress.percent));
        else bar.removeAttribute('value');
        const parts = [progress.status || 'unknown'];
        if (typeof progress.percent === 'number') parts.push(`${progress.percent.toFixed(0)} %`);
        if (typeof progress.mibPerSecond === 'number') parts.push(`${progress.mibPerSecond.toFixed(1)} MiB/s`);
        if (typeof progress.ramTransferred === 'number') {
            parts.push(`${formatBytes(progress.ramTransferred)}${typeof progress.ramTotal === 'number' ? ' of ' + formatBytes(progress.ramTotal) : ''} sent`);
        }
        if (typeof progress.ramRemaining === 'number') parts.push(`${formatBytes(progress.ramRemaining)} left`);
        if (typeof progress.dirtyPagesRate === 'number' && progress.dirtyPagesRate > 0) parts.push(`dirty ${progress.dirtyPagesRate} pages/s`);
        if (typeof progress.expectedDowntimeMs === 'number') parts.push(`expected downtime ${progress.expectedDowntimeMs} ms`);
        if (progress.errorDescription) parts.push(`error: ${progress.errorDescription}`);
        this.setMigrateStatus((destination ? `→ ${destination}: ` : '') + parts.join(' · '));
    }

    migrationProgressEvent(data) {
        if (this.destroyed || this.migration.active) return;
        this.showProgress(data, this.status && this.status.migration ? this.status.migration.to : '');
        $('#migrate-cancel').disabled = false;
    }

    async migrate() {
        if (this.migration.active) return;
        const to = $('#migrate-to').value.trim();
        const token = $('#migrate-token').value;
        if (!to) { errorBar.show(new Error('Enter the destination as HOST:PORT.')); return; }
        const body = {
            to,
            options: {
                postcopy: $('#migrate-postcopy').checked,
                withStorage: $('#migrate-with-storage').checked,
                autoConverge: $('#migrate-auto-converge').checked,
                tls: $('#migrate-tls').checked,
            },
        };
        if (token) body.token = token;
        const m = this.migration;
        m.active = true;
        m.controller = new AbortController();
        m.result = '';
        $('#migrate-submit').disabled = true;
        $('#migrate-cancel').disabled = false;
        const bar = $('#migrate-progress');
        bar.removeAttribute('value');
        this.setMigrateStatus(`Starting migration to ${to}…`);
        let outcome = null;
        try {
            const response = await request('POST', vmPath(this.name, '/migrate'),
                { body, signal: m.controller.signal, accept: 'application/x-ndjson' });
            await readNDJSON(response, (message) => {
                if (this.destroyed || !message || typeof message !== 'object') return;
                if (message.progress) {
                    this.showProgress(message.progress, to);
                } else if (message.result) {
                    outcome = 'ok';
                    const r = message.result;
                    bar.value = 100;
                    const parts = [`Migrated to ${r.destination || to}`];
                    if (typeof r.totalMilliseconds === 'number') parts.push(`in ${(r.totalMilliseconds / 1000).toFixed(1)} s`);
                    if (typeof r.downtimeMilliseconds === 'number') parts.push(`downtime ${r.downtimeMilliseconds} ms`);
                    if (typeof r.transferredBytes === 'number') parts.push(`${formatBytes(r.transferredBytes)} sent`);
                    m.result = parts.join(', ') + '.';
                    this.setMigrateStatus(m.result, 'good');
                    if (this.gone) this.markGone('');
                } else if (message.error) {
                    outcome = 'error';
                    const text = message.error.message || message.error.error || 'migration failed';
                    bar.value = 0;
                    this.setMigrateStatus(`Migration failed: ${text}`, 'bad');
                    errorBar.show(new ApiError(0, message.error.error || 'migration', text));
                }
            });
            if (!outcome && !this.destroyed) {
                this.setMigrateStatus('The progress stream ended without a result; the VM state below is current.', 'bad');
            }
        } catch (error) {
            if (this.destroyed || isAbort(error) || error instanceof SessionLost) return;
            bar.value = 0;
            this.setMigrateStatus(`Migration not started: ${error.message}`, 'bad');
            errorBar.show(error);
        } finally {
            m.active = false;
            m.controller = null;
            if (!this.destroyed) {
                $('#migrate-submit').disabled = false;
                $('#migrate-cancel').disabled = true;
                $('#migrate-token').value = '';
                scheduleRefresh(this.name);
                hostSummary.soon();
            }
        }
    }

    async cancelMigration() {
        const button = $('#migrate-cancel');
        button.disabled = true;
        try {
            await api('POST', vmPath(this.name, '/migrate/cancel'));
            if (!this.migration.active) this.setMigrateStatus('Cancel requested.');
        } catch (error) {
            errorBar.show(error);
            button.disabled = !this.migration.active && !(this.status && this.status.state === 'migrating');
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Form values

function updateNICFormFields() {
    const mode = $('#nic-mode').value;
    $('#nic-bridge').disabled = mode !== 'bridge';
    $('#nic-ifname').disabled = mode !== 'tap';
}

function valueOrUndefined(selector) {
    const value = $(selector).value.trim();
    return value ? value : undefined;
}

function onPageForm(selector, handler) {
    $(selector).addEventListener('submit', (event) => {
        event.preventDefault();
        if (currentPage && !currentPage.destroyed) handler(currentPage, event.currentTarget);
    });
}

// ---------------------------------------------------------------------------------------------------------------
// Static handlers (attached once; they act on the page that is open)

function wireStaticHandlers() {
    $('#login').addEventListener('submit', login);
    $('#logout').addEventListener('click', logout);
    $('#error-dismiss').addEventListener('click', () => errorBar.hide());
    window.addEventListener('hashchange', () => route());
    window.addEventListener('resize', throttled(() => {
        if (!currentPage) return;
        currentPage.drawGraphs();
        currentPage.fitConsoleWidth();
    }, 100));

    // Action buttons in the list and the VM view.
    document.addEventListener('click', (event) => {
        const button = event.target.closest('button[data-action]');
        if (!button || button.disabled) return;
        const holder = button.closest('[data-vm]');
        if (!holder || !holder.dataset.vm) return;
        runAction(holder.dataset.vm, button.dataset.action);
    });

    // Remove buttons in the disk and NIC tables.
    for (const [table, kind] of [['#vm-disks', 'disk'], ['#vm-nics', 'nic']]) {
        $(table).addEventListener('click', (event) => {
            const button = event.target.closest('button[data-remove]');
            if (!button || !currentPage) return;
            const id = button.dataset.id;
            button.disabled = true;
            const path = kind === 'disk' ? `/disks/${enc(id)}` : `/nics/${enc(id)}`;
            currentPage.change('DELETE', path).finally(() => { button.disabled = false; });
        });
    }

    onPageForm('#cpus-form', async (page, form) => {
        const count = Number($('#cpus-count').value);
        if (!Number.isInteger(count) || count < 1) { errorBar.show(new Error('The vCPU count must be a whole number of at least 1.')); return; }
        if (await page.change('POST', '/cpus', { count }, form)) $('#cpus-count').dataset.dirty = '';
    });
    $('#cpus-count').addEventListener('input', () => { $('#cpus-count').dataset.dirty = '1'; });

    onPageForm('#memory-add-form', async (page, form) => {
        const body = { size: $('#memory-size').value.trim() };
        const id = valueOrUndefined('#memory-id');
        if (id) body.id = id;
        if (await page.change('POST', '/memory', body, form)) form.reset();
    });

    onPageForm('#memory-remove-form', async (page, form) => {
        const id = $('#memory-remove-id').value.trim();
        if (await page.change('DELETE', `/memory/${enc(id)}`, undefined, form)) form.reset();
    });

    onPageForm('#balloon-form', async (page, form) => {
        if (await page.change('POST', '/balloon', { size: $('#balloon-size').value.trim() }, form)) form.reset();
    });

    onPageForm('#disk-add-form', async (page, form) => {
        const body = {
            id: $('#disk-id').value.trim(),
            readonly: $('#disk-readonly').checked,
            bus: $('#disk-bus').value,
        };
        const file = valueOrUndefined('#disk-file');
        const size = valueOrUndefined('#disk-size');
        const format = $('#disk-format').value;
        if (file) body.file = file;
        if (size) body.size = size;
        if (format) body.format = format;
        if (!file && !size) { errorBar.show(new Error('Give an image path, a size, or both.')); return; }
        if (await page.change('POST', '/disks', body, form)) form.reset();
    });

    $('#nic-mode').addEventListener('change', updateNICFormFields);
    onPageForm('#nic-add-form', async (page, form) => {
        const body = { id: $('#nic-id').value.trim(), mode: $('#nic-mode').value, model: $('#nic-model').value };
        const bridge = valueOrUndefined('#nic-bridge');
        const ifname = valueOrUndefined('#nic-ifname');
        const mac = valueOrUndefined('#nic-mac');
        if (body.mode === 'bridge' && bridge) body.bridge = bridge;
        if (body.mode === 'tap' && ifname) body.ifname = ifname;
        if (mac) body.mac = mac;
        if (await page.change('POST', '/nics', body, form)) { form.reset(); updateNICFormFields(); }
    });

    onPageForm('#migrate-form', (page) => page.migrate());
    $('#migrate-cancel').addEventListener('click', () => { if (currentPage) currentPage.cancelMigration(); });

    $('#console-connect').addEventListener('click', () => {
        if (!currentPage) return;
        if (currentPage.console.ws) currentPage.closeConsole(true);
        else currentPage.openConsole(false);
    });
    $('#console-takeover').addEventListener('click', () => { if (currentPage) currentPage.openConsole(true); });

    $('#vnc-connect').addEventListener('click', () => {
        if (!currentPage) return;
        if (currentPage.vnc.rfb) currentPage.closeVNC(true);
        else currentPage.openVNC();
    });
    $('#vnc-cad').addEventListener('click', () => {
        if (currentPage && currentPage.vnc.rfb && currentPage.vnc.connected) currentPage.vnc.rfb.sendCtrlAltDel();
    });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
