// The page of `sciwm serve`: plain JavaScript over the service's own JSON API.
"use strict";

const state = { token: sessionStorage.getItem("sciwm-token") || "", campaign: null, status: null };

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  return String(v);
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options) {
  const opts = Object.assign({ headers: {} }, options || {});
  if (state.token) opts.headers["Authorization"] = "Bearer " + state.token;
  const resp = await fetch(path, opts);
  if (resp.status === 401) $("token-box").hidden = false;
  if (!resp.ok) {
    let message = resp.status + " " + resp.statusText;
    try { const body = await resp.json(); message = body.message || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return resp;
}

async function loadCampaigns() {
  const list = $("campaigns");
  try {
    const names = (await (await api("/api/campaigns")).json()).campaigns;
    list.replaceChildren();
    if (!names.length) list.append(el("li", { class: "muted" }, "no campaigns in the store"));
    for (const name of names) {
      const item = el("li", { "data-name": name }, name);
      item.addEventListener("click", () => openCampaign(name));
      list.append(item);
    }
    showError("");
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (names.includes(wanted)) openCampaign(wanted);
  } catch (e) {
    list.replaceChildren(el("li", { class: "muted" }, "–"));
    showError(e.message);
  }
}

async function openCampaign(name) {
  state.campaign = name;
  location.hash = encodeURIComponent(name);
  for (const li of $("campaigns").children) li.classList.toggle("active", li.dataset.name === name);
  $("campaign").hidden = false;
  $("campaign-name").textContent = name;
  $("answer").hidden = true;
  try {
    const s = await (await api("/api/campaigns/" + encodeURIComponent(name))).json();
    state.status = s;
    renderStatus(s);
    renderForm(s);
    showError("");
    loadPlots(name);
    loadExperiments(name);
  } catch (e) {
    showError(e.message);
  }
}

function renderStatus(s) {
  const b = s.budget, best = s.best;
  const rows = [
    ["objective", s.objective + " (" + s.direction + ")"],
    ["experiments", s.n_experiments + " (" + Object.entries(s.counts).filter(([, n]) => n)
      .map(([k, n]) => n + " " + k).join(", ") + ")"],
    ["budget", fmt(b.spent) + " of " + fmt(b.total) + " " + b.unit + " spent, " + fmt(b.left) + " left"],
    ["best so far", best ? fmt(best.value) + " at " + Object.entries(best.parameters)
      .map(([k, v]) => k + "=" + fmt(v)).join(", ") + (best.note ? " (" + best.note + ")" : "") : "–"],
    ["world model", s.world_model.type + (s.world_model.logged_step === null
      ? " (none logged yet)" : " (fit " + s.world_model.logged_step + ")")],
  ];
  const table = el("table", { id: "status-table" });
  for (const [k, v] of rows) table.append(el("tr", {}, el("th", {}, k), el("td", {}, v)));
  $("status").replaceChildren(table);
}

function renderForm(s) {
  const fields = $("fields");
  fields.replaceChildren();
  const best = s.best ? s.best.parameters : {};
  for (const p of s.parameters) {
    let input;
    if (p.type === "categorical") {
      input = el("select", { id: "param-" + p.name, name: p.name });
      for (const c of p.choices) input.append(el("option", { value: String(c) }, String(c)));
      if (p.name in best) input.value = String(best[p.name]);
    } else {
      input = el("input", { id: "param-" + p.name, name: p.name, type: "number",
        step: p.type === "int" ? "1" : "any", required: "" });
      input.value = p.name in best ? best[p.name] : (p.low + p.high) / 2;
    }
    const range = p.type === "categorical" ? "" : " [" + fmt(p.low) + ", " + fmt(p.high) + "]";
    fields.append(el("label", {}, p.name + range + " ", input));
  }
}

function readForm() {
  const candidate = {};
  for (const p of state.status.parameters) {
    const raw = $("param-" + p.name).value;
    // send what was typed: the service checks it against the search space
    candidate[p.name] = p.type === "categorical" || raw.trim() === "" || isNaN(Number(raw))
      ? raw : Number(raw);
  }
  return candidate;
}

async function ask(event) {
  event.preventDefault();
  const answer = $("answer");
  try {
    const body = { candidates: [readForm()], level: Number($("level").value) };
    const resp = await api("/api/campaigns/" + encodeURIComponent(state.campaign) + "/predict", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const r = await resp.json();
    renderAnswer(r);
    showError("");
  } catch (e) {
    answer.hidden = true;
    showError(e.message);
  }
}

function renderAnswer(r) {
  const p = r.predictions[0];
  const pct = Math.round(p.cost.level * 100) + "% interval";
  const table = el("table", { id: "answer-table" },
    el("tr", {}, el("th", {}, "quantity"), el("th", {}, "predicted"), el("th", {}, pct)));
  const rows = [...Object.entries(p.outcomes), ["cost (" + r.cost_unit + ")", p.cost]];
  for (const [k, e] of rows) {
    table.append(el("tr", { "data-quantity": k }, el("td", {}, k), el("td", { class: "mean" }, fmt(e.mean)),
      el("td", { class: "interval" }, "[" + fmt(e.lower) + ", " + fmt(e.upper) + "]")));
  }
  const flag = el("p", { id: "answer-extrapolating", class: p.extrapolating ? "warn" : "ok",
    "data-extrapolating": String(p.extrapolating) },
    p.extrapolating ? "Outside the world model's data: trust the intervals less."
      : "Within the world model's data.");
  const notes = p.notes.length ? el("p", { class: "muted" }, p.notes.join("; ")) : "";
  const who = el("p", { class: "muted" }, "world model " + r.world_model.type + ", trained on " +
    fmt(r.world_model.trained_on) + " experiments; answered in " + r.elapsed_ms.toFixed(1) + " ms");
  const answer = $("answer");
  answer.replaceChildren(table, flag, notes, who);
  answer.hidden = false;
}

async function loadPlots(name) {
  const box = $("plots");
  box.replaceChildren();
  for (const plot of ["best_vs_cost", "predicted_vs_measured"]) {
    try {
      const resp = await api("/api/campaigns/" + encodeURIComponent(name) + "/plots/" + plot + ".png");
      const img = el("img", { alt: plot, "data-plot": plot });
      img.src = URL.createObjectURL(await resp.blob());
      box.append(img);
    } catch (e) {
      box.append(el("p", { class: "muted" }, plot + ": " + e.message));
    }
  }
}

async function loadExperiments(name) {
  const box = $("experiments");
  try {
    const rows = (await (await api("/api/campaigns/" + encodeURIComponent(name) + "/experiments")).json()).experiments;
    if (!rows.length) { box.replaceChildren(el("p", { class: "muted" }, "no experiments yet")); return; }
    const cols = Object.keys(rows[0]).filter((c) => !c.startsWith("pred_") && c !== "error");
    const table = el("table", { id: "experiments-table" }, el("tr", {}, ...cols.map((c) => el("th", {}, c))));
    for (const r of rows) table.append(el("tr", {}, ...cols.map((c) => el("td", {}, fmt(r[c])))));
    box.replaceChildren(table);
  } catch (e) {
    box.replaceChildren(el("p", { class: "muted" }, e.message));
  }
}

$("ask-form").addEventListener("submit", ask);
$("token-save").addEventListener("click", () => {
  state.token = $("token").value.trim();
  sessionStorage.setItem("sciwm-token", state.token);
  $("token-box").hidden = true;
  loadCampaigns();
});
loadCampaigns();
