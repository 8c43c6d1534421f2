// actorlib dashboard: draws the page its path names and keeps it live over Server-Sent Events
// (/api/watch/... streams the same JSON as /api/state/..., the state API the CLI uses).
"use strict";

// ---- small helpers --------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") el.textContent = value;
    else if (key === "class") el.className += (el.className ? " " : "") + value;
    else if (key === "style") el.style.cssText = value; // CSSOM: allowed by the page's CSP, unlike style attributes
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const short = (id, n = 8) => (id ? String(id).slice(0, n) : "");
const num = (x, digits = 1) => (x === null || x === undefined ? "—" : Number(x).toFixed(digits));

function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

function duration(s) {
  if (s === null || s === undefined) return "—";
  s = Math.max(0, s);
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.floor(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

const clock = (t) => (t ? new Date(t * 1000).toLocaleTimeString() : "—");
const badge = (state) => h("span.badge", { class: state, text: state });
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "STOPPED", "FINISHED"]);

function table(columns, rows, empty = "none") {
  if (!rows.length) return h("div.empty", { text: empty });
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null, text: c.label })));
  return h("table", {}, h("thead", {}, head), h("tbody", {}, rows));
}

function resourceBar(label, used, total, format = (x) => num(x, 1)) {
  const share = total > 0 ? Math.min(100, (100 * used) / total) : 0;
  return h("div.card", {},
    h("div.label", { text: label }),
    h("div.value", { text: total > 0 ? `${format(used)} / ${format(total)}` : "—" }),
    h("div.bar", {}, h("span", { style: `width:${share.toFixed(1)}%` })));
}

function card(label, value, sub) {
  return h("div.card", {}, h("div.label", { text: label }), h("div.value", { text: value }), sub ? h("div.sub", {}, sub) : null);
}

// ---- live data ------------------------------------------------------------------------------

const streams = [];
let lastUpdate = 0;

function setLive(ok) {
  const el = document.getElementById("live");
  if (ok) lastUpdate = Date.now();
  el.className = ok ? "live on" : "live off";
  el.textContent = ok ? `live · ${new Date().toLocaleTimeString()}` : "disconnected — retrying";
}

async function checkLogin() {
  const reply = await fetch("/api/state/nodes?limit=1", { headers: { accept: "application/json" } });
  if (reply.status === 401) location.reload(); // the server answers with the login form
}

// Calls onData with each new answer to a state query (path as under /api/state/).
function watch(path, interval, onData) {
  const sep = path.includes("?") ? "&" : "?";
  const source = new EventSource(`/api/watch/${path}${sep}interval=${interval}`);
  source.onmessage = (event) => { setLive(true); onData(JSON.parse(event.data)); };
  source.addEventListener("missing", () => onData(null));
  source.onerror = () => { setLive(false); if (source.readyState === EventSource.CLOSED) checkLogin(); };
  streams.push(source);
  return source;
}

function poll(url, period, onData) {
  const tick = async () => {
    try {
      const reply = await fetch(url);
      if (reply.status === 401) return checkLogin();
      if (reply.ok) onData(await reply.json());
    } catch (err) { setLive(false); }
    setTimeout(tick, period * 1000);
  };
  tick();
}

const filter = (expr) => `filter=${encodeURIComponent(expr)}`;

// ---- plots (SVG, drawn from the head's ring buffer) ---------------------------------------------

const COLORS = ["#2458a6", "#d1495b", "#2a9d8f", "#e9a23b", "#7b4fb3", "#5c7080", "#c2559a", "#3f8f3f"];

// At most 5 gridlines at round values: 1, 2, 5 x 10^k, or powers of two for bytes.
function ticks(max, binary) {
  max = max > 0 ? max : 1;
  let step = 1;
  if (binary) while (max / step > 5) step *= 2;
  else {
    const p = Math.pow(10, Math.floor(Math.log10(max / 5)));
    step = [1, 2, 5, 10].map((m) => m * p).find((s) => max / s <= 5);
  }
  return { step, count: Math.max(1, Math.ceil(max / step - 1e-9)) };
}

function lineChart(title, times, series, format, floor = 0, binary = false) {
  const W = 600, H = 170, L = 58, R = 8, T = 8, B = 20;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const el = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  const now = times.length ? times[times.length - 1] : Date.now() / 1000;
  const span = Math.max(60, times.length ? now - times[0] : 60);
  const values = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const grid = ticks(Math.max(floor, ...values, 0), binary);
  const top = grid.step * grid.count;
  const x = (t) => L + ((t - (now - span)) / span) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  for (let i = 0; i <= grid.count; i++) {
    const v = grid.step * i;
    el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "axis", "stroke-dasharray": i ? "2,3" : "" });
    el("text", { x: L - 6, y: y(v) + 3, "text-anchor": "end", class: "tick" }, format(v));
  }
  for (const back of [span, span / 2, 0]) {
    const label = back === 0 ? "now" : back < 120 ? `-${Math.round(back)}s` : `-${Math.round(back / 60)}m`;
    el("text", { x: x(now - back), y: H - 5, "text-anchor": back === span ? "start" : back ? "middle" : "end", class: "tick" }, label);
  }
  series.forEach((s, i) => {
    let d = "";
    let pen = false;
    s.values.forEach((v, j) => {
      if (v === null || v === undefined) { pen = false; return; }
      d += `${pen ? "L" : "M"}${x(times[j]).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    if (d) el("path", { d, class: "line", stroke: s.color || COLORS[i % COLORS.length] });
  });
  const legend = h("div.legend", {}, series.map((s, i) =>
    h("span", {}, h("i", { style: `background:${s.color || COLORS[i % COLORS.length]}` }), s.label)));
  return h("div.plot", {}, h("h3", { text: title }), svg, legend);
}

function plots(history, ips) {
  const times = history.times;
  const label = (id) => ips[id] || short(id);
  const nodes = Object.entries(history.nodes);
  const pick = (points, key) => points.map((p) => (p ? p[history.columns.indexOf(key)] : null));
  const finished = times.map((_, j) => nodes.reduce((sum, [, pts]) => sum + (pts[j] ? pts[j][history.columns.indexOf("finished_rate")] : 0), 0));
  const failed = times.map((_, j) => nodes.reduce((sum, [, pts]) => sum + (pts[j] ? pts[j][history.columns.indexOf("failed_rate")] : 0), 0));
  return [
    lineChart("CPU of each node's processes (%, 100 = one core)", times,
      nodes.map(([id, pts]) => ({ label: label(id), values: pick(pts, "cpu") })), (v) => v.toFixed(0), 10),
    lineChart("Memory of each node's processes (RSS)", times,
      nodes.map(([id, pts]) => ({ label: label(id), values: pick(pts, "rss") })), bytes, 1 << 20, true),
    lineChart("Tasks and actor calls per second", times,
      [{ label: "finished", values: finished, color: "#2a9d8f" }, { label: "failed", values: failed, color: "#d1495b" }],
      (v) => String(Number(v.toFixed(2))), 1),
  ];
}

// ---- pages ----------------------------------------------------------------------------------

function nodeIps(nodes) {
  const ips = {};
  for (const n of (nodes && nodes.items) || []) ips[n.node_id] = n.node_ip + (n.is_head_node ? " (head)" : "");
  return ips;
}

function partialNote(result) {
  return result && result.partial && result.partial.length
    ? h("div.error-text", { text: `Incomplete: ${result.partial.join("; ")}` }) : null;
}

function overview(main) {
  const S = {};
  const cards = h("div.cards");
  const plotBox = h("div.plots");
  const failures = h("section.panel");
  fill(main, h("h1", { text: "Overview" }), cards, plotBox, h("h2", { text: "Recent failures" }), failures);
  const draw = () => {
    const nodes = (S.nodes && S.nodes.items) || [];
    const alive = nodes.filter((n) => n.state === "ALIVE");
    const sum = (key, which) => alive.reduce((acc, n) => acc + (n[which][key] || 0), 0);
    const stats = (S.stats && S.stats.nodes) || [];
    const total = (key) => stats.reduce((acc, s) => acc + (s[key] || 0), 0);
    const actors = (S.actors && S.actors.by_state) || {};
    const jobs = (S.jobs && S.jobs.items) || [];
    const jobCount = (status) => jobs.filter((j) => j.status === status).length;
    const cpuTotal = sum("CPU", "resources_total"), gpuTotal = sum("GPU", "resources_total");
    fill(cards,
      card("Nodes", `${alive.length} alive`, `${nodes.length - alive.length} dead`),
      resourceBar("CPU reserved", cpuTotal - sum("CPU", "resources_available"), cpuTotal),
      gpuTotal ? resourceBar("GPU reserved", gpuTotal - sum("GPU", "resources_available"), gpuTotal) : null,
      resourceBar("Object store", total("store_used"), total("store_capacity"), bytes),
      card("Memory (processes)", bytes(total("process_rss")), `${total("processes")} processes`),
      card("Tasks", `${total("tasks_running")} running`, `${total("tasks_finished")} finished · ${total("tasks_failed")} failed`),
      card("Actors", `${actors.ALIVE || 0} alive`, `${actors.RESTARTING || 0} restarting · ${actors.DEAD || 0} dead`),
      card("Jobs", `${jobCount("RUNNING")} running`, `${jobCount("SUCCEEDED") + jobCount("FINISHED")} done · ${jobCount("FAILED")} failed`));
    if (S.history) fill(plotBox, plots(S.history, nodeIps(S.nodes)));
    const rows = [];
    for (const t of (S.failedTasks && S.failedTasks.items) || [])
      rows.push(h("tr", {}, h("td", { text: clock(t.end_time) }), h("td", {}, badge("task")), h("td", { class: "mono", text: t.name }),
        h("td", {}, h("span.error-text", { text: t.error_message }))));
    for (const a of (S.deadActors && S.deadActors.items) || [])
      rows.push(h("tr", {}, h("td", { text: "" }), h("td", {}, badge("actor")), h("td", { class: "mono", text: `${a.class_name} ${short(a.actor_id)}` }),
        h("td", {}, h("span.error-text", { text: a.death_cause }))));
    for (const j of jobs.filter((j) => j.status === "FAILED").slice(0, 10))
      rows.push(h("tr", {}, h("td", { text: clock(j.end_time) }), h("td", {}, badge("job")), h("td", { class: "mono", text: j.submission_id || j.job_id }),
        h("td", {}, h("span.error-text", { text: j.message }))));
    fill(failures, table([{ label: "When" }, { label: "Kind" }, { label: "What" }, { label: "Error" }], rows, "No failures."));
  };
  watch("nodes?limit=1000", 1, (d) => { S.nodes = d; draw(); });
  watch("stats", 2, (d) => { S.stats = d; draw(); });
  watch("summary/actors", 2, (d) => { S.actors = d; draw(); });
  watch("jobs?limit=1000", 2, (d) => { S.jobs = d; draw(); });
  watch(`tasks?${filter("state=FAILED")}&limit=10`, 3, (d) => { S.failedTasks = d; draw(); });
  watch(`actors?${filter("state=DEAD")}&limit=10`, 2, (d) => { S.deadActors = d; draw(); });
  poll("/api/history", 2, (d) => { S.history = d; draw(); });
}

function nodesPage(main) {
  const S = {};
  const body = h("div");
  fill(main, h("h1", { text: "Nodes" }), body);
  const draw = () => {
    const nodes = (S.nodes && S.nodes.items) || [];
    const workers = (S.workers && S.workers.items) || [];
    const stats = Object.fromEntries(((S.stats && S.stats.nodes) || []).map((s) => [s.node_id, s]));
    fill(body, partialNote(S.workers), nodes.map((n) => {
      const s = stats[n.node_id] || {};
      const used = (key) => (n.resources_total[key] || 0) - (n.resources_available[key] || 0);
      const mine = workers.filter((w) => w.node_id === n.node_id);
      const rows = mine.map((w) => h("tr", { "data-worker-id": w.worker_id },
        h("td", { class: "num", text: w.pid }), h("td", { text: w.worker_type }), h("td", {}, badge(w.state)),
        h("td", { class: "mono", text: w.class_name || "" }), h("td", { class: "mono", text: short(w.actor_id) }),
        h("td", { class: "mono", text: w.job_id }), h("td", { class: "num", text: num(w.cpu_percent) }),
        h("td", { class: "num", text: bytes(w.rss) }), h("td", { class: "num", text: duration(w.uptime) })));
      return h("section.panel", { "data-node-id": n.node_id },
        h("h2", {}, `${n.node_ip}${n.is_head_node ? " (head)" : ""} `, badge(n.state),
          h("span.muted", { text: `  ${short(n.node_id, 12)} · pid ${n.pid} · heartbeat ${num(n.seconds_since_heartbeat)}s ago` })),
        h("div.cards", {},
          resourceBar("CPU reserved", used("CPU"), n.resources_total.CPU || 0),
          n.resources_total.GPU ? resourceBar("GPU reserved", used("GPU"), n.resources_total.GPU) : null,
          resourceBar("Object store", s.store_used || 0, s.store_capacity || 0, bytes),
          card("Processes", `${num(s.process_cpu_percent)}% CPU`, `${bytes(s.process_rss)} RSS · ${s.processes || 0} processes`),
          card("Machine", `${num(s.cpu_percent)}% CPU`, `${bytes(s.memory_used)} / ${bytes(s.memory_total)} memory`),
          ...Object.entries(n.resources_total).filter(([k]) => !["CPU", "GPU", "memory", "object_store_memory"].includes(k))
            .map(([k, total]) => resourceBar(k, used(k), total))),
        table([{ label: "PID", num: 1 }, { label: "Type" }, { label: "State" }, { label: "Class" }, { label: "Actor" },
          { label: "Job" }, { label: "CPU %", num: 1 }, { label: "RSS", num: 1 }, { label: "Uptime", num: 1 }], rows, "No workers."));
    }));
  };
  watch("nodes?limit=1000", 1, (d) => { S.nodes = d; draw(); });
  watch("workers?limit=10000", 2, (d) => { S.workers = d; draw(); });
  watch("stats", 2, (d) => { S.stats = d; draw(); });
}

const seenRestarts = new Map();
function restartsCell(key, count, tag = "td") {
  const before = seenRestarts.get(key);
  seenRestarts.set(key, count);
  const cell = h(`${tag}.num.restarts`, { class: count ? "nonzero" : null, "data-restarts": count, text: count });
  if (before !== undefined && count > before) cell.classList.add("flash");
  return cell;
}

function actorProcesses(tree) {
  const byActor = {};
  const ips = {};
  const walk = (node, tree) => {
    if (node.actor_id && (node.role === "actor" || !byActor[node.actor_id])) byActor[node.actor_id] = node;
    (node.children || []).forEach((c) => walk(c, tree));
  };
  for (const t of (tree && tree.nodes) || []) {
    ips[t.node_id] = t.ip;
    if (t.root) walk(t.root, t);
  }
  return { byActor, ips };
}

function actorsPage(main) {
  const S = { selected: new URLSearchParams(location.search).get("actor") };
  const body = h("section.panel");
  const detail = h("div");
  fill(main, h("h1", { text: "Actors" }), body, detail);
  const draw = () => {
    const actors = (S.actors && S.actors.items) || [];
    const { byActor, ips } = actorProcesses(S.tree);
    const rows = actors.map((a) => {
      const proc = byActor[a.actor_id] || {};
      const exit = proc.last_exit;
      return h("tr.clickable", { "data-actor-id": a.actor_id, class: a.actor_id === S.selected ? "selected" : null,
        onclick: () => { S.selected = a.actor_id; history.replaceState(null, "", `?actor=${a.actor_id}`); draw(); } },
        h("td", { class: "mono", text: a.class_name }), h("td", { text: a.name }), h("td", {}, badge(a.state)),
        restartsCell(a.actor_id, a.num_restarts), h("td", { text: ips[a.node_id] || short(a.node_id) }),
        h("td", { class: "num", text: a.pid || "" }), h("td", { class: "mono", text: short(a.actor_id) }),
        h("td", { class: "mono", text: a.job_id }),
        h("td", {}, h("span", { class: exit && exit.kind === "abnormal" ? "error-text" : "muted", text: a.death_cause || (exit ? `${exit.reason} (${duration(exit.ago)} ago)` : "") })));
    });
    fill(body, table([{ label: "Class" }, { label: "Name" }, { label: "State" }, { label: "Restarts", num: 1 }, { label: "Node" },
      { label: "PID", num: 1 }, { label: "Actor id" }, { label: "Job" }, { label: "Last exit" }], rows, "No actors."));
    const chosen = actors.find((a) => a.actor_id === S.selected);
    if (!chosen) return fill(detail);
    const proc = byActor[chosen.actor_id] || {};
    const exit = proc.last_exit;
    fill(detail, h("section.panel", { id: "actor-detail" },
      h("h2", { text: `${chosen.class_name} ${chosen.name ? `"${chosen.name}" ` : ""}${chosen.actor_id}` }),
      h("div", {}, `State `, badge(chosen.state), ` · restarts ${chosen.num_restarts} · pid ${chosen.pid || "—"} · node ${ips[chosen.node_id] || chosen.node_id}`,
        proc.cpu_percent !== undefined ? ` · ${num(proc.cpu_percent)}% CPU · ${bytes(proc.rss)} RSS` : "",
        proc.task ? ` · running ${proc.task}` : ""),
      chosen.death_cause ? h("p.error-text", { text: `Death cause: ${chosen.death_cause}` }) : null,
      exit ? h("p", {}, "Last exit: ", h("span", { class: exit.kind === "abnormal" ? "error-text" : "", text: `${exit.reason} (${exit.kind}, ${duration(exit.ago)} ago)` })) : h("p.muted", { text: "No exit yet." }),
      exit && exit.traceback ? h("pre", { class: "traceback", text: exit.traceback }) : null));
  };
  watch("actors?limit=1000", 1, (d) => { S.actors = d; draw(); });
  watch("tree", 2, (d) => { S.tree = d; draw(); });
}

function jobsPage(main) {
  const S = { selected: new URLSearchParams(location.search).get("job"), socket: null, logFor: null };
  const entry = h("input", { type: "text", id: "entrypoint", placeholder: "entrypoint, e.g. python script.py" });
  const message = h("span.muted");
  const submit = async () => {
    if (!entry.value.trim()) return;
    const reply = await fetch("/api/jobs/", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ entrypoint: entry.value }) });
    if (reply.ok) { const { submission_id } = await reply.json(); entry.value = ""; select(submission_id); message.textContent = `submitted ${submission_id}`; }
    else message.textContent = `refused: ${await reply.text()}`;
  };
  const toolbar = h("div.toolbar", {}, entry, h("button.act", { id: "submit-job", onclick: submit, text: "Submit job" }), message);
  const body = h("section.panel");
  const logPanel = h("div");
  fill(main, h("h1", { text: "Jobs" }), toolbar, body, logPanel);
  const select = (sid) => { S.selected = sid; history.replaceState(null, "", `?job=${encodeURIComponent(sid)}`); draw(); };
  const openLog = (sid) => {
    if (S.logFor === sid) return;
    if (S.socket) S.socket.close();
    S.logFor = sid;
    const pre = h("pre.log", { id: "job-log" });
    const status = h("span.muted", { text: "connecting…" });
    const stop = h("button.plain", { id: "stop-job", text: "Stop job", onclick: () => fetch(`/api/jobs/${encodeURIComponent(sid)}/stop`, { method: "POST" }) });
    fill(logPanel, h("section.panel", {}, h("h2", {}, `Log of ${sid} `, status, " ", stop), pre));
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/api/jobs/${encodeURIComponent(sid)}/logs/tail`);
    socket.onopen = () => { status.textContent = "following"; };
    socket.onmessage = (event) => {
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
      pre.append(document.createTextNode(event.data));
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    };
    socket.onclose = () => { status.textContent = "end of log"; };
    S.socket = socket;
  };
  const draw = () => {
    const jobs = (S.jobs && S.jobs.items) || [];
    const now = Date.now() / 1000;
    const rows = jobs.map((j) => {
      const key = j.submission_id || j.job_id;
      return h("tr.clickable", { "data-job": key, class: key === S.selected ? "selected" : null, onclick: () => j.submission_id && select(j.submission_id) },
        h("td", { class: "mono", text: j.submission_id || "—" }), h("td", { class: "mono", text: j.job_id || "—" }), h("td", { text: j.type }),
        h("td", {}, badge(j.status)), h("td", { class: "mono", text: j.entrypoint }), h("td", { text: clock(j.start_time) }),
        h("td", { class: "num", text: duration((j.end_time || now) - j.start_time) }), h("td", { text: j.message }));
    });
    fill(body, table([{ label: "Submission" }, { label: "Job id" }, { label: "Type" }, { label: "Status" }, { label: "Entrypoint" },
      { label: "Started" }, { label: "Duration", num: 1 }, { label: "Message" }], rows, "No jobs yet."));
    const chosen = jobs.find((j) => j.submission_id && j.submission_id === S.selected);
    if (chosen) openLog(chosen.submission_id);
    const stop = document.getElementById("stop-job");
    if (stop && chosen) stop.hidden = TERMINAL.has(chosen.status);
  };
  watch("jobs?limit=1000", 1, (d) => { S.jobs = d; draw(); });
}

function tasksPage(main) {
  const S = {};
  const summary = h("section.panel");
  const failures = h("section.panel");
  fill(main, h("h1", { text: "Tasks" }), h("h2", { text: "By function and state" }), summary, h("h2", { text: "Failures" }), failures);
  const draw = () => {
    const byName = (S.summary && S.summary.by_name) || {};
    const rows = Object.entries(byName).sort(([a], [b]) => a.localeCompare(b)).map(([name, counts]) =>
      h("tr", { "data-function": name }, h("td", { class: "mono", text: name }), h("td", { class: "num", text: counts.RUNNING || 0 }),
        h("td", { class: "num", text: counts.FINISHED || 0 }), h("td", { class: counts.FAILED ? "num error-text" : "num", text: counts.FAILED || 0 })));
    fill(summary, partialNote(S.summary), table([{ label: "Function" }, { label: "Running", num: 1 }, { label: "Finished", num: 1 }, { label: "Failed", num: 1 }], rows,
      "No tasks in the nodes' recent history."));
    const failed = (S.failed && S.failed.items) || [];
    fill(failures, table([{ label: "Ended" }, { label: "Function" }, { label: "Type" }, { label: "Worker pid", num: 1 }, { label: "Error" }],
      failed.map((t) => h("tr", { "data-task-id": t.task_id }, h("td", { text: clock(t.end_time) }), h("td", { class: "mono", text: t.name }),
        h("td", { text: t.type }), h("td", { class: "num", text: t.worker_pid }),
        h("td", {}, h("div.error-text", { text: t.error_message }),
          t.traceback ? h("details", {}, h("summary", { text: "traceback" }), h("pre", { class: "traceback", text: t.traceback })) : null))),
      "No failed tasks."));
  };
  watch("summary/tasks", 2, (d) => { S.summary = d; draw(); });
  watch(`tasks?${filter("state=FAILED")}&limit=50&detail=true`, 2, (d) => { S.failed = d; draw(); });
}

function groupsPage(main) {
  const body = h("section.panel");
  fill(main, h("h1", { text: "Placement groups" }), body);
  watch("placement_groups?limit=1000", 1, (d) => {
    const rows = ((d && d.items) || []).map((g) => h("tr", { "data-pg-id": g.placement_group_id },
      h("td", { class: "mono", text: short(g.placement_group_id, 12) }), h("td", { text: g.name }), h("td", {}, badge(g.state)),
      h("td", { text: g.strategy }),
      h("td", { class: "mono", text: g.bundles.map((b, i) => `${JSON.stringify(b)} → ${short(g.bundle_nodes[i]) || "unplaced"}`).join("  ") }),
      h("td", { class: "mono", text: g.job_id }), h("td", { text: g.reason })));
    fill(body, table([{ label: "Id" }, { label: "Name" }, { label: "State" }, { label: "Strategy" }, { label: "Bundles → nodes" }, { label: "Job" }, { label: "Reason" }],
      rows, "No placement groups."));
  });
}

// ---- the supervision tree -----------------------------------------------------------------------

function treePage(main) {
  const S = { expanded: new Set(), seen: new Set(), open: new Set() };
  const body = h("div.tree");
  const setAll = (open) => {
    for (const key of S.seen) (open ? S.expanded.add(key) : S.expanded.delete(key));
    draw();
  };
  fill(main, h("h1", { text: "Supervision tree" }),
    h("div.toolbar", {}, h("button.plain", { text: "Expand all", onclick: () => setAll(true) }),
      h("button.plain", { text: "Collapse all", onclick: () => setAll(false) }),
      h("span.muted", { text: "Restarts flash as they happen; click an abnormal exit for its traceback." })),
    h("section.panel", {}, body));
  const toggle = (key) => { S.expanded.has(key) ? S.expanded.delete(key) : S.expanded.add(key); draw(); };
  const rowsOf = (tree, node, depth, out) => {
    const key = `${tree.node_id}:${node.path}`;
    if (!S.seen.has(key)) { S.seen.add(key); if (depth <= 2) S.expanded.add(key); }
    const open = S.expanded.has(key);
    const kids = node.children || [];
    const exit = node.last_exit;
    const what = [node.class_name && `${node.class_name}${node.actor_name ? ` "${node.actor_name}"` : ""}`, node.task && `running ${node.task}`,
      node.worker_state, node.strategy].filter(Boolean).join(" · ");
    const exitText = exit ? `last exit: ${exit.reason} (${duration(exit.ago)} ago)` : "";
    const row = h("div.row", { "data-path": node.path, "data-node": tree.node_id, "data-key": key },
      h("div.name", { style: `padding-left:${depth * 1.1}rem` },
        h("span.toggle", { text: kids.length ? (open ? "▾" : "▸") : "", onclick: () => kids.length && toggle(key) }),
        h("span", { class: "mono", text: node.id }), h("span.kind", { text: node.kind + (node.elided ? ` +${node.elided} more` : "") })),
      h("div", {}, badge(node.state)), h("div.num", { text: node.pid || "" }),
      restartsCell(key, node.restarts, "div"), h("div.num", { text: duration(node.uptime) }),
      h("div.num", { text: node.cpu_percent === null || node.cpu_percent === undefined ? "" : `${num(node.cpu_percent)}%` }),
      h("div.num", { text: node.rss ? bytes(node.rss) : "" }),
      h("div", {}, what ? h("span", { text: what + (exitText ? " · " : "") }) : null,
        exit ? h("span.exit", { class: exit.kind === "abnormal" ? "abnormal" : null, text: exitText, title: exit.traceback ? "click for the traceback" : exit.reason,
          onclick: () => { if (exit.traceback) { S.open.has(key) ? S.open.delete(key) : S.open.add(key); draw(); } } }) : null));
    out.push(row);
    if (exit && exit.traceback && S.open.has(key)) out.push(h("pre", { class: "traceback", text: exit.traceback }));
    if (open) kids.forEach((child) => rowsOf(tree, child, depth + 1, out));
  };
  const draw = () => {
    const out = [h("div.row.head", {}, ["Process", "State", "PID", "Restarts", "Uptime", "CPU", "RSS", "Role · last exit"].map((t) => h("div", { text: t })))];
    for (const tree of (S.tree && S.tree.nodes) || []) {
      const key = `${tree.node_id}:`;
      if (!S.seen.has(key)) { S.seen.add(key); S.expanded.add(key); }
      const open = S.expanded.has(key);
      out.push(h("div.row.nodehead", { "data-node-header": tree.node_id },
        h("div.name", {}, h("span.toggle", { text: open ? "▾" : "▸", onclick: () => toggle(key) }),
          `node ${tree.ip}${tree.is_head ? " (head)" : ""} `, h("span.kind", { text: short(tree.node_id, 12) })),
        h("div", {}, badge(tree.alive ? "ALIVE" : "DEAD")), h("div.num", { text: tree.pid }), h("div"),
        h("div.num", { text: duration(tree.uptime) }), h("div.num", { text: tree.cpu_percent === null || tree.cpu_percent === undefined ? "" : `${num(tree.cpu_percent)}%` }),
        h("div.num", { text: tree.rss ? bytes(tree.rss) : "" }), h("div", { class: tree.error ? "error-text" : "muted", text: tree.error || `heartbeat ${num(tree.seconds_since_heartbeat)}s ago` })));
      if (open && tree.root) rowsOf(tree, tree.root, 1, out);
    }
    fill(body, out);
  };
  watch("tree", 1, (d) => { S.tree = d; draw(); });
}

// ---- start ----------------------------------------------------------------------------------------

const PAGES = {
  "/": overview, "/nodes": nodesPage, "/actors": actorsPage, "/jobs": jobsPage, "/tasks": tasksPage,
  "/placement-groups": groupsPage, "/tree": treePage,
};

document.addEventListener("DOMContentLoaded", () => {
  const path = location.pathname.replace(/\/$/, "") || "/";
  for (const link of document.querySelectorAll("#nav a")) if (link.getAttribute("href") === path) link.classList.add("active");
  (PAGES[path] || overview)(document.getElementById("main"));
  setInterval(() => { if (lastUpdate && Date.now() - lastUpdate > 10000) setLive(false); }, 2000);
});
window.addEventListener("beforeunload", () => streams.forEach((s) => s.close()));
