// taskdaemon dashboard: plain JavaScript, no build step. Every number and
// list comes from the v1 API; live changes come from /api/v1/stream.
'use strict';

const state = { me: null, lastSeq: 0, tasks: new Map(), ws: null, followTimer: null, follow: null, samples: null, listQuery: '' };
const view = document.getElementById('view');

const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const when = (t) => (t ? new Date(t).toLocaleString() : '');

function toast(text) {
  const box = document.getElementById('toast');
  const item = document.createElement('div');
  item.textContent = text;
  box.appendChild(item);
  setTimeout(() => item.remove(), 5000);
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: 'same-origin', ...options });
  const type = response.headers.get('content-type') || '';
  const body = type.includes('json') ? await response.json() : await response.text();
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : response.statusText;
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}

async function act(path, confirmText, body) {
  if (!state.me || !state.me.can_act) return;
  if (confirmText && !window.confirm(confirmText)) return;
  try {
    const init = { method: 'POST' };
    if (body) { init.headers = { 'content-type': 'application/json' }; init.body = JSON.stringify(body); }
    const task = await api(path, init);
    toast(`${task.id || 'done'}: ${task.status || 'ok'}`);
    if (task.id) upsert(task);
  } catch (e) { toast(e.message); }
}

// ---- live updates --------------------------------------------------------

function connect() {
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  const query = new URLSearchParams({ topics: 'all,samples' });
  if (state.lastSeq) query.set('from', state.lastSeq);
  const ws = new WebSocket(`${proto}://${location.host}/api/v1/stream?${query}`);
  state.ws = ws;
  const live = document.getElementById('live');
  ws.onopen = () => {
    live.textContent = 'live'; live.classList.add('on');
    // A followed log picks up where the page has it, on the new connection.
    const followed = state.follow;
    if (followed) followLog(followed.id, followed.end, followed.append);
  };
  ws.onclose = () => {
    live.textContent = 'reconnecting'; live.classList.remove('on');
    setTimeout(connect, 1500);
  };
  ws.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === 'snapshot') {
      state.lastSeq = data.seq;
      for (const task of data.tasks) state.tasks.set(task.id, task);
      render();
    } else if (data.type === 'event') {
      state.lastSeq = data.seq;
      const id = data.event.task_id;
      if (id) refreshTask(id);
    } else if (data.type === 'log') {
      const followed = state.follow;
      if (followed && data.task === followed.id && data.offset === followed.end) {
        followed.end = data.end;
        followed.append(data.text, data.end);
      }
    } else if (data.type === 'samples') {
      state.samples = data;
      renderResources();
    }
  };
}

function sendTopics(change) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(change));
}

// Streams a task's stdout from byte `end` on (what the page already shows);
// `append(text, end)` gets each new piece.
function followLog(id, end, append) {
  unfollowLog();
  state.follow = { id, end, append, topic: `log:${id}@${end}` };
  sendTopics({ subscribe: [state.follow.topic] });
}

function unfollowLog() {
  if (state.follow) sendTopics({ unsubscribe: [state.follow.topic] });
  state.follow = null;
}

// A task's refresh in flight, and whether another was asked for meanwhile:
// an event that arrives while a fetch is on its way may be newer than what
// that fetch returns, so the task is fetched once more after it.
const pending = new Map();
async function refreshTask(id) {
  if (pending.has(id)) { pending.set(id, true); return; }
  try {
    do {
      pending.set(id, false);
      try { upsert(await api(`/api/v1/tasks/${encodeURIComponent(id)}`)); } catch (_) { /* out of scope or gone */ }
    } while (pending.get(id));
  } finally {
    pending.delete(id);
  }
}

function upsert(task) {
  const isNew = !state.tasks.has(task.id);
  state.tasks.set(task.id, task);
  const row = document.querySelector(`#task-list tr[data-id="${CSS.escape(task.id)}"]`);
  if (row) row.outerHTML = taskRow(task);
  else if (isNew && document.getElementById('task-list') && matchesFilters(task)) {
    document.querySelector('#task-list tbody').insertAdjacentHTML('afterbegin', taskRow(task));
  }
  const detail = document.getElementById('task-detail');
  if (detail && detail.dataset.id === task.id) renderTaskFields(task);
  const overview = document.getElementById('overview');
  if (overview) loadOverview();
}

// ---- views ---------------------------------------------------------------

const routes = {
  overview: renderOverview, tasks: renderTasks, task: renderTask, queues: renderQueues,
  tracked: renderTracked, memory: renderMemory, history: renderHistory, loops: renderLoops,
  plans: renderPlans, plan: renderPlan,
};

function render() {
  clearInterval(state.followTimer);
  unfollowLog();
  const [, name = 'overview', ...rest] = location.hash.split('/');
  for (const link of document.querySelectorAll('nav a')) {
    link.toggleAttribute('aria-current', link.getAttribute('href') === `#/${name}`);
    if (link.hasAttribute('aria-current')) link.setAttribute('aria-current', 'page');
  }
  (routes[name] || renderOverview)(decodeURIComponent(rest.join('/')));
}

function disabledAttr() {
  return state.me && state.me.can_act ? '' : 'disabled title="read-only link"';
}

async function renderOverview() {
  view.innerHTML = '<h1>Overview</h1><div id="overview"></div>';
  loadOverview();
}

async function loadOverview() {
  const box = document.getElementById('overview');
  if (!box) return;
  let html = '';
  try {
    const { counters, health } = await api('/api/v1/metrics');
    const card = (n, l) => `<div class="card"><div class="n">${esc(n)}</div><div class="l">${esc(l)}</div></div>`;
    const depth = Object.values(counters.queue_depth).reduce((a, b) => a + b, 0);
    const done = counters.tasks.succeeded + counters.tasks.failed;
    const rate = done ? Math.round((100 * counters.tasks.succeeded) / done) + '%' : '–';
    html += '<div class="cards">' + card(counters.tasks.running, 'running') + card(counters.tasks.pending + counters.tasks.blocked, 'waiting')
      + card(depth, 'queue depth') + card(rate, 'success rate') + card(counters.tasks.failed, 'failed')
      + card(health.load ? health.load[0].toFixed(2) : '–', `load (${health.cpus} CPUs)`)
      + card(health.mem_total_kb ? Math.round(100 - (100 * health.mem_available_kb) / health.mem_total_kb) + '%' : '–', 'host memory used')
      + card(health.process_rss_kb ? Math.round(health.process_rss_kb / 1024) + ' MiB' : '–', 'server RSS') + '</div>';
  } catch (e) {
    html += `<p class="muted">${esc(e.message)}</p>`;
  }
  const running = [...state.tasks.values()].filter((t) => t.status === 'running');
  html += `<h2>Running (${running.length})</h2>` + taskTable(running);
  html += '<div id="attention"></div>';
  html += '<h2>Resources</h2><div id="resources"></div>';
  box.innerHTML = html;
  renderResources();
  renderAttention();
}

// Plans in progress, queries waiting for an answer and alerts (a scoped share link sees none).
async function renderAttention() {
  const box = document.getElementById('attention');
  if (!box) return;
  let a;
  try { a = await api('/api/v1/attention'); } catch (_) { return; }
  let html = '';
  if (a.queries.length) html += `<h2>Waiting for your answer (${a.queries.length})</h2>` + messageList(a.queries, true);
  if (a.alerts.length) html += `<h2>Alerts (${a.alerts.length})</h2>` + messageList(a.alerts, false);
  if (a.plans.length) html += `<h2>Plans in progress (${a.plans.length})</h2>` + planTable(a.plans);
  box.innerHTML = html;
  bindAnswers(box);
}

// ---- plans ---------------------------------------------------------------

const money = (n) => `$${Number(n || 0).toFixed(4)}`;

function planTable(plans) {
  return '<div class="scroll"><table id="plan-list"><thead><tr><th>Plan</th><th>Status</th><th>Specs done</th><th>Title</th><th class="hide-narrow">Target</th></tr></thead><tbody>'
    + plans.map((p) => `<tr data-plan="${esc(p.id)}"><td><a href="#/plan/${encodeURIComponent(p.id)}">${esc(p.id)}</a></td>`
      + `<td class="status" data-status="${esc(p.status)}">${esc(p.status)}</td><td>${p.specs_succeeded}/${p.specs_total}</td>`
      + `<td>${esc(p.title || p.goal)}</td><td class="hide-narrow">${esc(p.target_branch)}</td></tr>`).join('')
    + '</tbody></table></div>';
}

// Messages to the person; a query gets an answer form (owners only).
function messageList(messages, answerable) {
  return '<ul class="messages">' + messages.map((m) => `<li data-message="${esc(m.id)}"><strong>${esc(m.id)}</strong> `
    + `<a href="#/plan/${encodeURIComponent(m.plan)}">${esc(m.plan)}</a>, from ${esc(m.from)}: ${esc(m.body)}`
    + (answerable ? `<form class="filters answer" data-plan="${esc(m.plan)}" data-message="${esc(m.id)}">`
      + `<label>Answer<input name="answer" required ${disabledAttr()}></label><button ${disabledAttr()}>Answer</button></form>` : '')
    + '</li>').join('') + '</ul>';
}

function bindAnswers(box, after) {
  for (const form of box.querySelectorAll('form.answer')) {
    form.onsubmit = async (e) => {
      e.preventDefault();
      const answer = form.elements.answer.value;
      if (await planAct(form.dataset.plan, 'answer', null, { message: form.dataset.message, answer })) (after || renderAttention)();
    };
  }
}

// A plan action; true when it succeeded.
async function planAct(id, action, confirmText, body) {
  if (!state.me || !state.me.can_act) return false;
  if (confirmText && !window.confirm(confirmText)) return false;
  try {
    const init = { method: 'POST' };
    if (body) { init.headers = { 'content-type': 'application/json' }; init.body = JSON.stringify(body); }
    const done = await api(`/api/v1/plans/${encodeURIComponent(id)}/${action}`, init);
    toast(`${done.id || id}: ${done.status || done.delivery || 'done'}`);
    return true;
  } catch (e) { toast(e.message); return false; }
}

async function renderPlans() {
  view.innerHTML = '<h1>Plans</h1><div id="plans">Loading…</div>';
  try {
    const plans = await api('/api/v1/plans');
    document.getElementById('plans').innerHTML = plans.length ? planTable(plans.slice().reverse())
      : '<p class="muted">No plans yet: <code>taskdaemon new-plan "GOAL"</code>.</p>';
  } catch (e) { document.getElementById('plans').textContent = e.message; }
}

function loopRows(loops) {
  return loops.map((l) => `<li><a href="#/task/${encodeURIComponent(l.id)}">${esc(l.id)}</a> `
    + `<span class="status" data-status="${esc(l.status)}">${esc(l.status)}</span>, ${l.iterations} iterations, ${money(l.cost_usd)}</li>`).join('');
}

async function renderPlan(id) {
  view.innerHTML = `<h1>${esc(id)}</h1><div id="plan-detail" data-id="${esc(id)}">Loading…</div>`;
  const box = document.getElementById('plan-detail');
  let p;
  try { p = await api(`/api/v1/plans/${encodeURIComponent(id)}`); } catch (e) { box.textContent = e.message; return; }
  const fields = [['title', p.title || ''], ['goal', p.goal], ['status', p.status], ['note', p.note || ''],
    ['target', p.target_branch], ['specs done', `${p.specs_succeeded}/${p.specs_total}`], ['cost', `${money(p.cost.cost_usd)} (${p.cost.input_tokens} in / ${p.cost.output_tokens} out)`]];
  let html = '<dl class="fields">' + fields.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('') + '</dl>'
    + `<div class="actions"><button type="button" id="plan-approve" ${disabledAttr()}>Approve</button>`
    + `<button type="button" id="plan-resume" ${disabledAttr()}>Resume</button>`
    + `<button type="button" id="plan-cancel" class="danger" ${disabledAttr()}>Cancel</button></div>`;
  if (p.summary) html += `<p>${esc(p.summary)}</p>`;
  if (p.loops.length) html += `<h2>Plan loops</h2><ul>${loopRows(p.loops)}</ul>`;
  html += `<h2>Specs (${p.specs.length})</h2>`;
  for (const s of p.specs) {
    html += `<section class="spec" data-spec="${esc(s.name)}"><h3>${esc(s.name)}: ${esc(s.title)} `
      + `<span class="status" data-status="${esc(s.status)}">${esc(s.status)}</span> ${money(s.cost.cost_usd)}</h3>`
      + (s.depends_on.length ? `<p class="muted">after ${esc(s.depends_on.join(', '))}</p>` : '')
      + (s.note ? `<p class="muted">${esc(s.note)}</p>` : '')
      + (s.loops.length ? `<ul>${loopRows(s.loops)}</ul>` : '')
      + '<ol>' + s.phases.map((ph) => `<li>${esc(ph.title)} <span class="status" data-status="${esc(ph.status)}">${esc(ph.status)}</span>`
        + ` <code>${esc(ph.validation)}</code>${ph.loops.length ? `<ul>${loopRows(ph.loops)}</ul>` : ''}</li>`).join('') + '</ol></section>';
  }
  html += '<div id="plan-queries"></div>';
  box.innerHTML = html;
  const again = () => renderPlan(id);
  document.getElementById('plan-approve').onclick = async () => { if (await planAct(id, 'approve', `Approve ${id}? The daemon starts it.`)) again(); };
  document.getElementById('plan-resume').onclick = async () => { if (await planAct(id, 'resume', `Resume ${id}?`)) again(); };
  document.getElementById('plan-cancel').onclick = async () => { if (await planAct(id, 'cancel', `Cancel ${id} and its unfinished specs?`)) again(); };
  try {
    const a = await api('/api/v1/attention');
    const queries = a.queries.filter((m) => m.plan === p.id);
    const alerts = a.alerts.filter((m) => m.plan === p.id);
    const qbox = document.getElementById('plan-queries');
    if (!qbox) return;
    qbox.innerHTML = (queries.length ? `<h2>Waiting for your answer (${queries.length})</h2>` + messageList(queries, true) : '')
      + (alerts.length ? `<h2>Alerts (${alerts.length})</h2>` + messageList(alerts, false) : '');
    bindAnswers(qbox, again);
  } catch (_) { /* nothing waits */ }
}

// The live resource samples of running processes (the stream's `samples` topic).
function renderResources() {
  const box = document.getElementById('resources');
  if (!box) return;
  const rows = state.samples ? state.samples.samples : [];
  if (!rows.length) { box.innerHTML = '<p class="muted">No samples yet.</p>'; return; }
  box.innerHTML = '<table><thead><tr><th>task</th><th>CPU %</th><th>RSS</th><th>processes</th></tr></thead><tbody>'
    + rows.map((r) => `<tr data-sample="${esc(r.task)}"><td><a href="#/task/${encodeURIComponent(r.task)}">${esc(r.task)}</a></td>`
      + `<td>${esc(r.cpu_percent.toFixed(1))}</td><td>${esc(Math.round(r.rss_kb / 1024))} MiB</td><td>${esc(r.processes)}</td></tr>`).join('')
    + '</tbody></table>';
}

function taskRow(t) {
  return `<tr data-id="${esc(t.id)}"><td><a href="#/task/${encodeURIComponent(t.id)}">${esc(t.id)}</a></td>`
    + `<td>${esc(t.kind)}</td><td class="status" data-status="${esc(t.status)}">${esc(t.status)}</td>`
    + `<td>${esc(t.name || t.description || '')}</td><td class="cmd hide-narrow">${esc(t.command)}</td>`
    + `<td class="hide-narrow">${esc(when(t.started_at))}</td></tr>`;
}

function taskTable(tasks, id = '') {
  return `<div class="scroll"><table ${id ? `id="${id}"` : ''}><thead><tr><th>ID</th><th>Kind</th><th>Status</th><th>Name</th>`
    + '<th class="hide-narrow">Command</th><th class="hide-narrow">Started</th></tr></thead><tbody>'
    + tasks.map(taskRow).join('') + '</tbody></table></div>';
}

const FILTERS = ['status', 'kind', 'queue', 'tool', 'label'];
function currentFilters() {
  return Object.fromEntries(new URLSearchParams(state.listQuery));
}
function matchesFilters(task) {
  const f = currentFilters();
  return (!f.status || task.status === f.status) && (!f.kind || task.kind === f.kind)
    && (!f.tool || task.tool === f.tool) && !f.queue && !f.label;
}

async function renderTasks() {
  const f = currentFilters();
  const select = (name, values) => `<label>${name}<select name="${name}"><option value="">any</option>`
    + values.map((v) => `<option ${f[name] === v ? 'selected' : ''}>${v}</option>`).join('') + '</select></label>';
  const text = (name) => `<label>${name}<input name="${name}" value="${esc(f[name] || '')}" size="8"></label>`;
  view.innerHTML = '<h1>Tasks</h1><form class="filters" id="filters">'
    + select('status', ['pending', 'blocked', 'running', 'succeeded', 'failed', 'cancelled', 'lost'])
    + select('kind', ['process', 'agent', 'loop', 'manual']) + text('queue') + text('tool') + text('label')
    + '<button type="submit">Filter</button><button type="button" id="export-csv">CSV</button><button type="button" id="export-json">JSON</button></form>'
    + '<div id="list">Loading…</div><button type="button" id="more" hidden>Load more</button>';
  document.getElementById('filters').onsubmit = (e) => {
    e.preventDefault();
    const params = new URLSearchParams();
    for (const name of FILTERS) { const v = e.target.elements[name].value.trim(); if (v) params.set(name, v); }
    state.listQuery = params.toString();
    renderTasks();
  };
  let rows = [];
  let next = null;
  const load = async () => {
    const params = new URLSearchParams(state.listQuery);
    if (next) params.set('cursor', next);
    try {
      const page = await api(`/api/v1/tasks?${params}`);
      rows = rows.concat(page.tasks);
      for (const t of page.tasks) state.tasks.set(t.id, t);
      next = page.next;
      document.getElementById('list').innerHTML = taskTable(rows, 'task-list');
      document.getElementById('more').hidden = !next;
    } catch (e) { document.getElementById('list').textContent = e.message; }
  };
  document.getElementById('more').onclick = load;
  document.getElementById('export-json').onclick = () => download('tasks.json', 'application/json', JSON.stringify(rows, null, 2));
  document.getElementById('export-csv').onclick = () => {
    const cols = ['id', 'kind', 'status', 'name', 'tool', 'command', 'created_at', 'started_at', 'finished_at', 'exit_code'];
    const cell = (v) => `"${String(v ?? '').replace(/"/g, '""')}"`;
    download('tasks.csv', 'text/csv', [cols.join(',')].concat(rows.map((r) => cols.map((c) => cell(r[c])).join(','))).join('\n') + '\n');
  };
  await load();
}

function download(name, type, text) {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([text], { type }));
  link.download = name;
  link.click();
  URL.revokeObjectURL(link.href);
}

async function renderTask(id) {
  view.innerHTML = `<h1>${esc(id)}</h1><div id="task-detail" data-id="${esc(id)}"><dl class="fields" id="fields"></dl>`
    + `<div class="actions"><button type="button" id="kill" class="danger" ${disabledAttr()}>Kill</button>`
    + `<button type="button" id="restart" ${disabledAttr()}>Restart</button>`
    + `<button type="button" id="retry" ${disabledAttr()}>Retry</button>`
    + '<label style="flex-direction:row;gap:.3rem;align-items:center"><input type="checkbox" id="follow" checked> follow log</label>'
    + '<select id="stream" aria-label="Log stream"><option>stdout</option><option>stderr</option></select></div>'
    + '<dl class="fields" id="outcome"></dl><pre class="log" id="log" tabindex="0" aria-label="Log"></pre></div>';
  const path = `/api/v1/tasks/${encodeURIComponent(id)}`;
  document.getElementById('kill').onclick = () => act(`${path}/kill`, `Kill ${id}? Its process group gets SIGTERM, then SIGKILL.`);
  document.getElementById('restart').onclick = () => act(`${path}/restart`, `Restart ${id}?`);
  document.getElementById('retry').onclick = () => act(`${path}/retry`, `Run ${id} again?`);
  let task;
  try { task = await api(path); renderTaskFields(task); } catch (e) { document.getElementById('fields').textContent = e.message; return; }
  renderOutcome(task);
  let end = null;
  const log = document.getElementById('log');
  const stream = document.getElementById('stream');
  const follow = document.getElementById('follow');
  const append = (text, newEnd) => {
    end = newEnd;
    if (!text) return;
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent += text;
    if (atBottom) log.scrollTop = log.scrollHeight;
  };
  // What the log holds past `end` (its newest 200 lines at first).
  const read = async () => {
    const query = end === null ? 'tail=200' : `offset=${end}`;
    try {
      const chunk = await api(`${path}/logs?stream=${stream.value}&${query}`);
      append(chunk.text, chunk.end);
    } catch (_) { /* the next read retries */ }
  };
  // stdout streams over the WebSocket from where the read stopped; stderr is polled.
  const restart = async () => {
    unfollowLog();
    clearInterval(state.followTimer);
    await read();
    if (!follow.checked || !log.isConnected) return;
    if (stream.value === 'stdout' && end !== null) followLog(id, end, append);
    else state.followTimer = setInterval(read, 1000);
  };
  stream.onchange = () => { end = null; log.textContent = ''; restart(); };
  follow.onchange = restart;
  await restart();
}

function renderTaskFields(t) {
  const fields = document.getElementById('fields');
  if (!fields) return;
  const rows = [['status', `<span class="status" data-status="${esc(t.status)}" id="detail-status">${esc(t.status)}</span>`],
    ['kind', esc(t.kind)], ['name', esc(t.name || t.description || '')], ['command', `<code>${esc(t.command)}</code>`],
    ['pid', esc(t.pid ?? '')], ['exit code', esc(t.exit_code ?? '')], ['signal', esc(t.signal ?? '')], ['error', esc(t.error || '')],
    ['created', esc(when(t.created_at))], ['started', esc(when(t.started_at))], ['finished', esc(when(t.finished_at))],
    ['restarts', esc(t.restarts)], ['labels', esc((t.labels || []).join(', '))], ['depends on', esc((t.depends_on || []).join(', '))]];
  fields.innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('');
  const ended = ['succeeded', 'failed', 'cancelled', 'lost'].includes(t.status);
  const kill = document.getElementById('kill');
  if (kill && state.me && state.me.can_act) kill.disabled = ended;
}

// Cost, tokens and turns: a queue task's result, or a loop's totals.
async function renderOutcome(task) {
  const box = document.getElementById('outcome');
  let rows = [];
  try {
    if (task.kind === 'agent') {
      const r = await api(`/api/v1/tasks/${encodeURIComponent(task.id)}/result`);
      rows = [['cost', r.cost_usd != null ? `$${r.cost_usd.toFixed(4)}` : ''], ['turns', r.num_turns ?? ''],
        ['tokens', r.tokens ? Object.entries(r.tokens).map(([k, v]) => `${k} ${v}`).join(', ') : ''],
        ['duration', r.duration_ms != null ? `${(r.duration_ms / 1000).toFixed(1)} s` : ''], ['result error', r.error || '']];
    } else if (task.kind === 'loop') {
      const l = await api(`/api/v1/loops/${encodeURIComponent(task.id)}`);
      rows = [['iterations', l.iterations], ['tokens', `in ${l.input_tokens}, out ${l.output_tokens}`],
        ['cost', `$${l.cost_usd.toFixed(4)}`], ['tool calls', l.tool_calls]];
    }
  } catch (_) { /* no result yet */ }
  if (box) box.innerHTML = rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('');
}

async function renderLoops() {
  view.innerHTML = '<h1>Loops</h1><div id="loops">Loading…</div>';
  try {
    const loops = await api('/api/v1/loops?all=true');
    document.getElementById('loops').innerHTML = '<div class="scroll"><table><thead><tr><th>ID</th><th>Status</th><th>Iterations</th><th>Tokens in/out</th><th>Cost</th><th class="hide-narrow">Name</th></tr></thead><tbody>'
      + loops.map((l) => `<tr><td><a href="#/task/${encodeURIComponent(l.id)}">${esc(l.id)}</a></td><td class="status" data-status="${esc(l.status)}">${esc(l.status)}</td><td>${l.iterations}</td><td>${l.input_tokens}/${l.output_tokens}</td><td>$${l.cost_usd.toFixed(4)}</td><td class="hide-narrow">${esc(l.name || '')}</td></tr>`).join('')
      + '</tbody></table></div>';
  } catch (e) { document.getElementById('loops').textContent = e.message; }
}

async function renderQueues() {
  view.innerHTML = '<h1>Queues</h1><div id="queues">Loading…</div><h2>Workers</h2><div id="workers"></div>';
  try {
    const queues = await api('/api/v1/queues');
    document.getElementById('queues').innerHTML = '<div class="scroll"><table><thead><tr><th>Queue</th><th>Pending</th><th>Done</th><th>Failed</th><th>Current</th><th class="hide-narrow">Folder</th></tr></thead><tbody>'
      + queues.map((q) => `<tr><td><a href="#/tasks" data-queue="${esc(q.id)}">${esc(q.id)}</a></td><td>${q.pending}</td><td>${q.done}</td><td>${q.failed}</td><td>${esc(q.current_task || '')}</td><td class="hide-narrow">${esc(q.path)}</td></tr>`).join('')
      + '</tbody></table></div>';
    for (const link of document.querySelectorAll('[data-queue]')) link.onclick = () => { state.listQuery = `queue=${encodeURIComponent(link.dataset.queue)}`; };
  } catch (e) { document.getElementById('queues').textContent = e.message; }
  try {
    const workers = await api('/api/v1/workers');
    document.getElementById('workers').innerHTML = '<div class="scroll"><table><thead><tr><th>Worker</th><th>State</th><th>Host</th><th>Task</th></tr></thead><tbody>'
      + workers.map((w) => `<tr><td>${esc(w.queue || w.worker || '')}</td><td>${esc(w.state)}</td><td>${esc(w.host || '')}</td><td>${esc(w.current_task || '')}</td></tr>`).join('')
      + '</tbody></table></div>';
  } catch (e) { document.getElementById('workers').textContent = e.message; }
}

async function renderTracked() {
  view.innerHTML = '<h1>Tracked work</h1><div id="tracked">Loading…</div>';
  try {
    const { tasks, ready } = await api('/api/v1/tracked');
    document.getElementById('tracked').innerHTML = `<h2>Ready (${ready.length})</h2>` + taskTable(ready)
      + `<h2>All (${tasks.length})</h2><div class="scroll"><table><thead><tr><th>ID</th><th>Status</th><th>Title</th><th>Depends on</th><th>Labels</th></tr></thead><tbody>`
      + tasks.map((t) => `<tr><td><a href="#/task/${encodeURIComponent(t.id)}">${esc(t.id)}</a></td><td class="status" data-status="${esc(t.status)}">${esc(t.status)}</td><td>${esc(t.name)}</td><td>${esc(t.depends_on.join(', '))}</td><td>${esc(t.labels.join(', '))}</td></tr>`).join('')
      + '</tbody></table></div>';
  } catch (e) { document.getElementById('tracked').textContent = e.message; }
}

async function renderMemory() {
  view.innerHTML = '<h1>Memory and search</h1><form class="filters" id="search"><label>Search<input name="q" required></label><button>Search</button></form><div id="memory">Loading…</div>';
  document.getElementById('search').onsubmit = async (e) => {
    e.preventDefault();
    try {
      const hits = await api(`/api/v1/search?q=${encodeURIComponent(e.target.elements.q.value)}`);
      document.getElementById('memory').innerHTML = `<h2>${hits.length} matches</h2><ul>` + hits.map((h) => `<li><pre class="log">${esc(JSON.stringify(h, null, 1))}</pre></li>`).join('') + '</ul>';
    } catch (err) { document.getElementById('memory').textContent = err.message; }
  };
  try {
    const memories = await api('/api/v1/memory');
    document.getElementById('memory').innerHTML = '<div class="scroll"><table><thead><tr><th>Kind</th><th>Text</th><th>Task</th><th>When</th></tr></thead><tbody>'
      + memories.map((m) => `<tr><td>${esc(m.kind)}</td><td>${esc(m.text || m.value || m.content || JSON.stringify(m))}</td><td>${esc(m.task_id || '')}</td><td>${esc(when(m.created_at))}</td></tr>`).join('')
      + '</tbody></table></div>';
  } catch (e) { document.getElementById('memory').textContent = e.message; }
}

function bars(rows, value, label) {
  const max = Math.max(1e-9, ...rows.map(value));
  return '<div class="bars">' + rows.map((r) => `<span title="${esc(r.key)}: ${esc(label(r))}" style="height:${(100 * value(r)) / max}%"></span>`).join('') + '</div>';
}

function aggregateTable(rows) {
  const ms = (v) => (v == null ? '–' : v < 1000 ? `${v} ms` : `${(v / 1000).toFixed(1)} s`);
  return '<div class="scroll"><table><thead><tr><th></th><th>Ended</th><th>Succeeded</th><th>Failed</th><th>Completion</th><th>p50</th><th>p95</th><th class="hide-narrow">Cost</th></tr></thead><tbody>'
    + rows.map((r) => `<tr><td>${esc(r.key)}</td><td>${r.finished}</td><td>${r.succeeded}</td><td>${r.failed + r.lost}</td><td>${r.completion_rate == null ? '–' : Math.round(r.completion_rate * 100) + '%'}</td><td>${ms(r.p50_ms)}</td><td>${ms(r.p95_ms)}</td><td class="hide-narrow">$${r.cost_usd.toFixed(2)}</td></tr>`).join('')
    + '</tbody></table></div>';
}

async function renderAggregates(since) {
  const box = document.getElementById('aggregates');
  try {
    const a = await api(`/api/v1/aggregates?since=${since}`);
    box.innerHTML = `<h2>Completion rate per day</h2>${bars(a.by_day, (r) => r.completion_rate || 0, (r) => `${Math.round((r.completion_rate || 0) * 100)}%`)}`
      + `<h2>p95 execution time per day</h2>${bars(a.by_day, (r) => r.p95_ms || 0, (r) => `${r.p95_ms ?? '–'} ms`)}`
      + `<h2>By queue</h2>${aggregateTable(a.by_queue)}<h2>By kind</h2>${aggregateTable(a.by_kind)}<h2>By day</h2>${aggregateTable(a.by_day)}`;
  } catch (e) { box.textContent = e.message; }
}

async function renderHistory() {
  view.innerHTML = '<h1>History</h1><form class="filters" id="window"><label>Window<select name="since"><option>24h</option><option selected>7d</option><option>30d</option></select></label>'
    + '<a id="report-md" href="/api/v1/report?since=7d&format=md" download="report.md">Report (Markdown)</a> <a id="report-html" href="/api/v1/report?since=7d&format=html" target="_blank">Report (HTML)</a></form>'
    + '<div id="aggregates">Loading…</div>'
    + '<h2>Events per hour (loaded)</h2><div class="bars" id="bars"></div><div id="history">Loading…</div><button type="button" id="older" hidden>Load more</button>';
  const windowSelect = document.querySelector('#window select');
  windowSelect.onchange = () => {
    const since = windowSelect.value;
    document.getElementById('report-md').href = `/api/v1/report?since=${since}&format=md`;
    document.getElementById('report-html').href = `/api/v1/report?since=${since}&format=html`;
    renderAggregates(since);
  };
  renderAggregates('7d');
  let events = [];
  let after = 0;
  const load = async () => {
    try {
      const page = await api(`/api/v1/history?after=${after}&limit=200`);
      events = events.concat(page.events);
      after = page.next || after;
      document.getElementById('older').hidden = !page.next;
      const buckets = new Map();
      for (const e of events) { const h = e.at.slice(0, 13); buckets.set(h, (buckets.get(h) || 0) + 1); }
      const last = [...buckets.entries()].slice(-24);
      const max = Math.max(1, ...last.map(([, n]) => n));
      document.getElementById('bars').innerHTML = last.map(([h, n]) => `<span title="${esc(h)}: ${n}" style="height:${(100 * n) / max}%"></span>`).join('');
      document.getElementById('history').innerHTML = '<div class="scroll"><table><thead><tr><th>#</th><th>When</th><th>Task</th><th>Kind</th><th>Message</th></tr></thead><tbody>'
        + events.slice().reverse().map((e) => `<tr><td>${e.seq}</td><td>${esc(when(e.at))}</td><td>${esc(e.task_id || '')}</td><td>${esc(e.kind)}</td><td>${esc(e.message)}</td></tr>`).join('')
        + '</tbody></table></div>';
    } catch (e) { document.getElementById('history').textContent = e.message; }
  };
  document.getElementById('older').onclick = load;
  await load();
}

// ---- start ---------------------------------------------------------------

(async function start() {
  try {
    state.me = await api('/api/v1/me');
  } catch (e) {
    view.innerHTML = `<h1>Not logged in</h1><p>${esc(e.message)}</p><p>Open the URL <code>taskdaemon dashboard</code> prints.</p>`;
    return;
  }
  const role = document.getElementById('role');
  role.textContent = state.me.can_act ? 'owner' : `read-only: ${state.me.share.scope}${state.me.share.target ? ' ' + state.me.share.target : ''}`;
  document.body.classList.toggle('read-only', !state.me.can_act);
  window.addEventListener('hashchange', render);
  connect();
  render();
})();
