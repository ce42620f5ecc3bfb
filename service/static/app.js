// The page calls the same public API as any client: jobs queued with ?async=true and followed
// at /jobs/{id} (so it can show progress), JSON answers with images as base64 PNG.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

const state = {
  models: {}, // name -> /models entry
  slots: { image: null, attributes: null }, // {blob, name, url}
  active: "image", // the slot the next example goes to
  runs: {}, // kind -> the latest run's token: an older answer is dropped
  frames: null, // the interpolation animation's timer
};

function headers() {
  const h = { Accept: "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

// The API's `detail`: a message, or pydantic's list of field errors.
function describe(detail) {
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc || []).slice(1).join(".") || "request"}: ${e.msg}`).join("; ");
  }
  return String(detail ?? "the service gave no reason");
}

async function detailOf(answer) {
  try {
    return describe((await answer.json()).detail);
  } catch {
    return `the service answered ${answer.status} ${answer.statusText}`;
  }
}

// --- models, examples, card ---------------------------------------------------------------

async function loadModels() {
  try {
    const answer = await fetch("/models");
    if (!answer.ok) throw new Error(await detailOf(answer));
    const body = await answer.json();
    for (const m of body.models) {
      state.models[m.name] = m;
      const label = `${m.name}: ${m.method || m.variant}, ${m.resolution}px`;
      $("model").add(new Option(label, m.name, false, m.name === body.default));
    }
    $("ready").textContent = body.models.length ? "" : "No worker is serving models yet: try again in a moment.";
    if (body.models.length) await modelChanged();
  } catch (err) {
    $("ready").textContent = `The models are unavailable: ${err.message}`;
  }
}

async function modelChanged() {
  for (const slot of Object.keys(state.slots)) setSlot(slot, null);
  for (const kind of ["transfer", "sample", "neutralize", "interpolate"]) $(`${kind}-result`).replaceChildren();
  activate("image");
  await loadExamples($("model").value);
}

async function loadExamples(name) {
  const gallery = $("examples");
  gallery.replaceChildren();
  gallery.dataset.state = "loading";
  const answer = await fetch(`/models/${encodeURIComponent(name)}/examples`);
  if (!answer.ok) {
    $("examples-note").textContent = `No examples for ${name}: ${await detailOf(answer)}. Drop your own pictures instead.`;
    gallery.dataset.state = "none";
    return;
  }
  const body = await answer.json();
  $("examples-note").textContent = `${body.description}.`;
  for (const ex of body.examples) {
    const img = el("img", { src: ex.url, alt: ex.label, className: "pixelated" });
    const button = el("button", { type: "button", className: "example", title: `${ex.label} (row ${ex.index})` },
      img, el("span", { textContent: ex.label }));
    button.addEventListener("click", () => useExample(ex));
    gallery.append(button);
  }
  gallery.dataset.state = "ready";
}

async function useExample(ex) {
  const slot = state.active;
  const answer = await fetch(ex.url);
  if (!answer.ok) return showError($("ready"), await detailOf(answer));
  setSlot(slot, await answer.blob(), ex.label);
  const other = slot === "image" ? "attributes" : "image";
  if (!state.slots[other]) activate(other);
}

function showCard() {
  const m = state.models[$("model").value];
  if (!m) return;
  const rows = [
    ["method", m.method || m.variant], ["resolution", `${m.resolution} × ${m.resolution}`],
    ["latents", `z ${m.z_dim}, e ${m.e_dim}`], ["checkpoint SHA-256", m.checkpoint_sha256],
    ["edits answer", m.rendering === "input" ? "the picture with the edit's change" : "the model's own drawing"],
  ];
  const body = $("card-body");
  body.replaceChildren(el("h2", { textContent: `Model card: ${m.name}` }), table(rows));
  const card = m.card || {};
  for (const [title, key] of [["Trained on", "data"], ["Training", "training"], ["Evaluation (held-out split)", "metrics"], ["Sampling", "sampling"]]) {
    if (card[key] === undefined) continue;
    body.append(el("h3", { textContent: title }), render(card[key]));
  }
  $("card").showModal();
}

function table(rows) {
  return el("table", {}, ...rows.map(([k, v]) => el("tr", {}, el("th", { textContent: k }), el("td", {}, v))));
}

function render(value) {
  if (value === null || typeof value !== "object") return document.createTextNode(String(value));
  if (Array.isArray(value)) {
    return value.every((v) => typeof v !== "object") ? document.createTextNode(value.join(", ")) : el("div", {}, ...value.map(render));
  }
  return table(Object.entries(value).map(([k, v]) => [k.replaceAll("_", " "), render(v)]));
}

// --- the two slots ---------------------------------------------------------------------------

function activate(slot) {
  state.active = slot;
  for (const node of document.querySelectorAll(".slot")) node.classList.toggle("active", node.dataset.slot === slot);
}

function setSlot(slot, blob, name) {
  const node = $(`slot-${slot}`);
  const old = state.slots[slot];
  if (old) URL.revokeObjectURL(old.url);
  const picture = node.querySelector(".slot-picture");
  if (!blob) {
    state.slots[slot] = null;
    picture.replaceChildren(el("span", { className: "placeholder", textContent: "drop or click" }));
    node.querySelector(".slot-label").textContent = "";
    node.dataset.filled = "";
    return;
  }
  const url = URL.createObjectURL(blob);
  state.slots[slot] = { blob, name, url };
  const img = el("img", { src: url, alt: name });
  img.addEventListener("load", () => img.classList.toggle("pixelated", img.naturalWidth <= 128));
  picture.replaceChildren(img);
  node.querySelector(".slot-label").textContent = name;
  node.dataset.filled = "yes";
}

function bindSlot(slot) {
  const node = $(`slot-${slot}`);
  const input = node.querySelector("input[type=file]");
  node.addEventListener("click", () => activate(slot));
  node.addEventListener("keydown", (event) => { if (event.key === "Enter") input.click(); });
  node.querySelector(".choose").addEventListener("click", (event) => { event.stopPropagation(); activate(slot); input.click(); });
  input.addEventListener("change", () => { if (input.files[0]) setSlot(slot, input.files[0], input.files[0].name); input.value = ""; });
  node.addEventListener("dragover", (event) => { event.preventDefault(); node.classList.add("over"); });
  node.addEventListener("dragleave", () => node.classList.remove("over"));
  node.addEventListener("drop", (event) => {
    event.preventDefault();
    node.classList.remove("over");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) { setSlot(slot, file, file.name); activate(slot); }
  });
}

// --- jobs ------------------------------------------------------------------------------------

const ROUTES = {
  transfer: { needs: ["image", "attributes"], form: (d, s) => { d.append("image", s.image.blob, s.image.name); d.append("attributes", s.attributes.blob, s.attributes.name); d.append("strength", $("strength").value); } },
  sample: { needs: ["image"], form: (d, s) => { d.append("image", s.image.blob, s.image.name); d.append("n", $("n").value); d.append("seed", $("seed").value); d.append("temperature", $("temperature").value); } },
  neutralize: { needs: ["image"], form: (d, s) => d.append("image", s.image.blob, s.image.name) },
  interpolate: { needs: ["image", "attributes"], form: (d, s) => { d.append("a", s.image.blob, s.image.name); d.append("b", s.attributes.blob, s.attributes.name); d.append("steps", $("steps").value); } },
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Queues the job, follows it at /jobs/{id} while `progress` shows where it is, and returns the
// JSON answer; an error carries the API's detail.
async function runJob(kind, data, progress) {
  const t0 = performance.now();
  const tick = (status) => { progress(`${status}… ${((performance.now() - t0) / 1000).toFixed(1)} s`); };
  tick("sending");
  const answer = await fetch(`/${kind}?async=true`, { method: "POST", body: data, headers: headers() });
  if (!answer.ok) throw new Error(await detailOf(answer));
  const { status_url: statusUrl } = await answer.json();
  for (let wait = 50; ; wait = Math.min(wait * 1.5, 500)) {
    const job = await fetch(statusUrl, { headers: headers() });
    if (!job.ok) throw new Error(await detailOf(job));
    const body = await job.json();
    if (body.status === "succeeded") return body.result;
    if (body.status === "failed") throw new Error(describe(body.error && body.error.detail));
    tick(body.status);
    await sleep(wait);
  }
}

async function run(kind) {
  const target = $(`${kind}-result`);
  const route = ROUTES[kind];
  const missing = route.needs.filter((slot) => !state.slots[slot]);
  if (missing.length) {
    const names = { image: "an image", attributes: "a picture for the attributes" };
    showError(target, `Pick ${missing.map((s) => names[s]).join(" and ")} first: click an example or drop a picture on its slot.`);
    return;
  }
  const data = new FormData();
  route.form(data, state.slots);
  if ($("model").value) data.append("model", $("model").value);
  if ($("render").value) data.append("render", $("render").value);
  const token = (state.runs[kind] = {});
  const bar = el("progress");
  const text = el("span", { className: "muted" });
  target.dataset.state = "running";
  target.replaceChildren(el("div", { className: "progress" }, bar, text));
  const button = $(`${kind}-run`);
  button.disabled = true;
  try {
    const body = await runJob(kind, data, (t) => { text.textContent = t; });
    if (state.runs[kind] !== token) return;
    SHOW[kind](target, body);
    target.append(meta(body));
    target.dataset.state = "done";
  } catch (err) {
    if (state.runs[kind] === token) showError(target, err.message);
  } finally {
    if (state.runs[kind] === token) button.disabled = false;
  }
}

function showError(target, message) {
  target.replaceChildren(el("p", { className: "error", role: "alert", textContent: message }));
  target.dataset.state = "error";
}

// --- results ---------------------------------------------------------------------------------

// A photo's answer (faces models) is the photo itself, JPEG for a JPEG upload: not pixelated.
const png = (b64, alt, type = "image/png") => {
  const img = el("img", { src: `data:${type};base64,${b64}`, alt, className: "out pixelated" });
  img.addEventListener("load", () => img.classList.toggle("pixelated", img.naturalWidth <= 128));
  return img;
};
const figure = (img, caption) => el("figure", {}, img, el("figcaption", { textContent: caption }));
const input = (slot, caption) => {
  const s = state.slots[slot];
  const img = el("img", { src: s.url, alt: s.name, className: "in pixelated" });
  return figure(img, caption);
};

function meta(body) {
  const parts = [`model ${body.model}`, `checkpoint ${body.checkpoint_sha256.slice(0, 12)}`];
  if (body.seed !== null && body.seed !== undefined) parts.push(`seed ${body.seed}`);
  parts.push(`${body.elapsed_ms.toFixed(0)} ms`);
  const node = el("div", { className: "meta", textContent: parts.join(" · ") });
  const warnings = [].concat(body.warning || [], body.warnings || [], domainWarnings(body.domain));
  return warnings.length ? el("div", {}, ...warnings.map((w) => el("p", { className: "warning", role: "status", textContent: w })), node) : node;
}

// The inputs whose reconstruction error lies above the held-out images' threshold (the
// answer's `domain`): the model is unlikely to edit them well.
const INPUT_NAMES = { image: "This image", a: "This image", attributes: "The attributes picture", b: "The attributes picture" };
function domainWarnings(domain) {
  if (!domain) return [];
  return domain.inputs.filter((_, i) => domain.out_of_domain[i]).map((name) =>
    `${INPUT_NAMES[name] || name} looks unlike the images the model was trained on (${domain.trained_on}): results may be poor.`);
}

const SHOW = {
  transfer(target, body) {
    const strength = Number($("strength").value).toFixed(2);
    target.replaceChildren(el("div", { className: "side" },
      input("image", "image"), input("attributes", "attributes"), el("span", { className: "arrow", textContent: "→" }),
      figure(png(body.image, "transfer", body.media_type), `result, strength ${strength}`)));
  },
  sample(target, body) {
    const grid = el("div", { className: "grid" }, ...body.images.map((b, i) => png(b, `sample ${i + 1}`, body.media_type)));
    target.replaceChildren(el("div", { className: "side" }, input("image", "image"), el("span", { className: "arrow", textContent: "→" }),
      el("figure", {}, grid, el("figcaption", { className: "seed", textContent: `${body.images.length} samples, seed ${body.seed}` }))));
  },
  neutralize(target, body) {
    target.replaceChildren(el("div", { className: "side" },
      input("image", "image"), el("span", { className: "arrow", textContent: "→" }), figure(png(body.image, "neutral", body.media_type), "neutral")));
  },
  interpolate(target, body) {
    clearInterval(state.frames);
    const movie = png(body.images[0], "animation");
    movie.classList.replace("out", "movie");
    // Ping-pong through the frames: a's e to b's and back.
    const order = body.images.map((_, i) => i).concat(body.images.map((_, i) => i).reverse().slice(1, -1));
    let i = 0;
    state.frames = setInterval(() => { i = (i + 1) % order.length; movie.src = `data:image/png;base64,${body.images[order[i]]}`; }, 180);
    const strip = el("div", { className: "strip" }, ...body.images.map((b, k) => png(b, `step ${k + 1}`)));
    target.replaceChildren(el("div", { className: "side" }, input("image", "from"), figure(movie, "e, moving"), input("attributes", "towards")), strip);
  },
};

// --- wiring ----------------------------------------------------------------------------------

for (const slot of Object.keys(state.slots)) bindSlot(slot);
for (const kind of Object.keys(ROUTES)) $(`${kind}-run`).addEventListener("click", () => run(kind));
$("model").addEventListener("change", modelChanged);
$("card-open").addEventListener("click", showCard);
$("strength").addEventListener("input", () => { $("strength-value").textContent = Number($("strength").value).toFixed(2); });
$("strength").addEventListener("change", () => { if (state.slots.image && state.slots.attributes) run("transfer"); });
$("sample-reseed").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 2 ** 31); run("sample"); });
activate("image");
loadModels();
