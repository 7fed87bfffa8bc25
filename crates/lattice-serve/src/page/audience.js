// The audience builder: a form over POST /v1/audiences. No dependencies, no network access
// beyond this server.
"use strict";

const PREVIEW_ROWS = 20;
const SVG = "http://www.w3.org/2000/svg";
let apiKey = "";
let lastRequest = null;

const $ = (id) => document.getElementById(id);

function status(text, isError) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", Boolean(isError));
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (apiKey) h["Authorization"] = "Bearer " + apiKey;
  return h;
}

async function problemText(res) {
  try {
    const p = await res.json();
    return (p.field ? p.field + ": " : "") + (p.detail || p.title || res.statusText);
  } catch (_) {
    return res.status + " " + res.statusText;
  }
}

function option(select, value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  select.appendChild(o);
}

async function connect(event) {
  event.preventDefault();
  apiKey = $("api-key").value.trim();
  status("Connecting…");
  const res = await fetch("/v1/audiences/options", { headers: headers() });
  if (!res.ok) {
    status("Could not connect: " + (await problemText(res)), true);
    return;
  }
  const o = await res.json();
  $("model-line").textContent =
    "Model " + o.model + " as of " + o.as_of + " · " + o.customers.toLocaleString("en") + " customers";
  const cat = $("category");
  cat.replaceChildren();
  o.categories.forEach((c) => option(cat, c, c));
  const act = $("action");
  act.replaceChildren();
  o.actions.forEach((a) => option(act, a.id, a.name + " (" + a.id + ")"));
  const ch = $("channel");
  ch.replaceChildren();
  option(ch, "", "any");
  o.channels.forEach((c) => option(ch, c, c));
  const tiers = $("tiers");
  tiers.replaceChildren();
  o.tiers.forEach((t, k) => {
    const id = "tier-" + k;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = id;
    box.value = t;
    box.name = "tier";
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = t;
    tiers.append(box, label);
  });
  $("builder").hidden = false;
  status("Connected. Choose a target and build the audience.");
  $("category").focus();
}

function num(id) {
  const v = $(id).value.trim();
  return v === "" ? undefined : Number(v);
}

function checked(name) {
  return document.querySelector('input[name="' + name + '"]:checked').value;
}

/** The request the form describes (without the preview). */
function requestFromForm() {
  const req = { target: {}, size: {}, filters: {} };
  const target = checked("target");
  if (target === "category") req.target.category = $("category").value;
  else if (target === "action") req.target.action = $("action").value;
  else req.target.churn = true;

  const size = checked("size");
  if (size === "top") req.size.top = num("top");
  else if (size === "min_probability") req.size.min_probability = num("min-probability");
  else {
    req.size.budget = num("budget");
    const cost = num("cost");
    if (cost !== undefined) req.size.cost_per_contact = cost;
  }

  const f = req.filters;
  const tiers = Array.from(document.querySelectorAll('input[name="tier"]:checked')).map((b) => b.value);
  if (tiers.length) f.tiers = tiers;
  if ($("channel").value) f.channel = $("channel").value;
  const put = (key, id) => {
    const v = num(id);
    if (v !== undefined) f[key] = v;
  };
  put("min_churn_probability", "min-churn");
  put("max_churn_probability", "max-churn");
  put("min_clv", "min-clv");
  put("last_purchase_within_days", "within-days");
  put("last_purchase_older_than_days", "older-days");
  put("exclude_contacted_within_days", "contacted-days");

  const share = num("holdout");
  if (share) req.holdout = { share: share };
  const id = $("audience-id").value.trim();
  if (id) req.audience_id = id;
  return req;
}

function fmt(x, digits) {
  if (x === null || x === undefined) return "unknown";
  return x.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function setFigure(id, value, digits) {
  const el = $(id);
  el.dataset.value = value === null || value === undefined ? "" : String(value);
  el.textContent = digits === undefined ? fmt(value, 0) : fmt(value, digits);
}

function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function funnelChart(steps) {
  const w = 560, bar = 22, gap = 6, label = 200;
  const h = steps.length * (bar + gap);
  const total = Math.max(1, steps[0].before);
  const root = svg("svg", { viewBox: "0 0 " + w + " " + h, width: w, height: h, role: "img",
    "aria-labelledby": "funnel-title" });
  steps.forEach((s, k) => {
    const y = k * (bar + gap);
    const width = Math.max(1, ((w - label - 70) * s.after) / total);
    root.appendChild(svg("text", { x: 0, y: y + bar * 0.7, class: "axis" }, s.step));
    root.appendChild(svg("rect", { x: label, y: y, width: width, height: bar, class: "bar" }));
    root.appendChild(svg("text", { x: label + width + 6, y: y + bar * 0.7, class: "axis" },
      s.after.toLocaleString("en")));
  });
  $("funnel-chart").replaceChildren(root);
}

function liftChart(lift) {
  const box = $("lift-chart");
  if (!lift.curve.length) {
    box.replaceChildren(document.createTextNode("The model has no backtest of this score: the lift is unknown."));
    return;
  }
  const w = 560, h = 260, left = 44, bottom = 30, top = 10, right = 26;
  const maxLift = Math.max(1.5, ...lift.curve.map((p) => p.lift)) * 1.1;
  const x = (d) => left + d * (w - left - right);
  const y = (l) => top + (1 - l / maxLift) * (h - top - bottom);
  const root = svg("svg", { viewBox: "0 0 " + w + " " + h, width: w, height: h, role: "img",
    "aria-labelledby": "lift-title lift-desc" });
  root.appendChild(svg("desc", { id: "lift-desc" },
    "Cumulative lift by share of customers targeted; the marker is this audience at " +
      fmt(lift.depth * 100, 1) + "% of customers, lift " + fmt(lift.backtest, 2) + "."));
  root.appendChild(svg("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(0), class: "axis-line" }));
  root.appendChild(svg("line", { x1: x(0), y1: y(0), x2: x(0), y2: y(maxLift), class: "axis-line" }));
  root.appendChild(svg("line", { x1: x(0), y1: y(1), x2: x(1), y2: y(1), class: "random" }));
  root.appendChild(svg("text", { x: x(1) - 4, y: y(1) - 4, class: "axis", "text-anchor": "end" }, "random"));
  for (let t = 0; t <= 1.0001; t += 0.25) {
    root.appendChild(svg("text", { x: x(t), y: h - 10, class: "axis", "text-anchor": "middle" },
      Math.round(t * 100) + "%"));
  }
  for (let l = 0; l <= maxLift; l += Math.max(1, Math.round(maxLift / 4))) {
    root.appendChild(svg("text", { x: left - 6, y: y(l) + 4, class: "axis", "text-anchor": "end" }, String(l)));
  }
  const pts = [[0, lift.curve[0].lift]].concat(lift.curve.map((p) => [p.depth, p.lift]));
  root.appendChild(svg("polyline", {
    points: pts.map(([d, l]) => x(d).toFixed(1) + "," + y(l).toFixed(1)).join(" "), class: "curve" }));
  if (lift.backtest !== null && lift.backtest !== undefined) {
    root.appendChild(svg("circle", { cx: x(lift.depth), cy: y(lift.backtest), r: 5, class: "marker" }));
  }
  box.replaceChildren(root);
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function show(answer) {
  const s = answer.summary;
  $("audience-id-out").textContent = s.audience_id;
  setFigure("size", s.size);
  setFigure("control-size", s.control_size);
  setFigure("expected", s.expected_conversions.mean, 1);
  setFigure("expected-low", s.expected_conversions.low, 1);
  setFigure("expected-high", s.expected_conversions.high, 1);
  setFigure("lift-backtest", s.lift.backtest, 2);
  setFigure("lift-estimated", s.lift.estimated, 2);
  $("event").textContent = "A conversion is " + s.target.event + ".";
  $("calibration").textContent = "Probabilities: " + s.calibration + ".";

  const body = $("funnel").tBodies[0];
  body.replaceChildren();
  s.funnel.forEach((step) => {
    const tr = document.createElement("tr");
    tr.dataset.step = step.step;
    cell(tr, step.step);
    cell(tr, step.detail);
    cell(tr, step.before.toLocaleString("en")).dataset.value = String(step.before);
    cell(tr, step.after.toLocaleString("en")).dataset.value = String(step.after);
    body.appendChild(tr);
  });
  funnelChart(s.funnel);
  liftChart(s.lift);

  const rows = $("preview").tBodies[0];
  rows.replaceChildren();
  answer.customers.forEach((c) => {
    const tr = document.createElement("tr");
    tr.dataset.customer = c.customer_id;
    cell(tr, String(c.rank));
    cell(tr, c.customer_id);
    cell(tr, fmt(c.probability, 3)).dataset.value = String(c.probability);
    cell(tr, fmt(c.expected_value, 2)).dataset.value = String(c.expected_value);
    cell(tr, c.reasons.join(", "));
    rows.appendChild(tr);
  });
  $("result").hidden = false;
}

async function build(event) {
  event.preventDefault();
  const req = requestFromForm();
  status("Building…");
  const res = await fetch("/v1/audiences?format=json", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", Accept: "application/json" }),
    body: JSON.stringify(Object.assign({}, req, { preview: PREVIEW_ROWS })),
  });
  if (!res.ok) {
    status("Not built: " + (await problemText(res)), true);
    return;
  }
  const answer = await res.json();
  lastRequest = req;
  $("result").dataset.request = JSON.stringify(req);
  show(answer);
  status("Built: " + answer.summary.size.toLocaleString("en") + " customers.");
  $("result-title").setAttribute("tabindex", "-1");
  $("result-title").focus();
}

async function download() {
  if (!lastRequest) return;
  status("Preparing the CSV…");
  const res = await fetch("/v1/audiences?format=csv", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", Accept: "text/csv" }),
    body: JSON.stringify(lastRequest),
  });
  if (!res.ok) {
    status("No CSV: " + (await problemText(res)), true);
    return;
  }
  const blob = await res.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = (res.headers.get("Lattice-Audience-Id") || "audience") + ".csv";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  status("Downloaded " + a.download + ".");
}

document.addEventListener("DOMContentLoaded", () => {
  $("connect").addEventListener("submit", (e) => connect(e).catch((x) => status(String(x), true)));
  $("builder").addEventListener("submit", (e) => build(e).catch((x) => status(String(x), true)));
  $("download").addEventListener("click", () => download().catch((x) => status(String(x), true)));
});
