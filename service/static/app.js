// The page calls the same public API as any client: JSON answers, images as base64 PNG.
"use strict";

const $ = (id) => document.getElementById(id);

function headers() {
  const h = { Accept: "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

async function loadModels() {
  try {
    const answer = await fetch("/models");
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.detail);
    for (const m of body.models) {
      const label = `${m.name}: ${m.method || m.variant}, ${m.resolution}px`;
      const option = new Option(label, m.name, false, m.name === body.default);
      $("model").add(option);
    }
    $("ready").textContent = body.models.length ? "" : "no worker is serving models yet";
  } catch (err) {
    $("ready").textContent = `models unavailable: ${err.message}`;
  }
}

function describe(detail) {
  if (Array.isArray(detail)) return detail.map((e) => `${e.loc.slice(1).join(".")}: ${e.msg}`).join("; ");
  return String(detail);
}

function show(target, images, body) {
  target.replaceChildren();
  for (const b64 of images) {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    img.alt = "result";
    target.append(img);
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `model ${body.model} · checkpoint ${body.checkpoint_sha256.slice(0, 12)}` +
    (body.seed !== null && body.seed !== undefined ? ` · seed ${body.seed}` : "") +
    ` · ${body.elapsed_ms.toFixed(1)} ms`;
  target.append(meta);
}

function bind(formId, route, resultId, imagesOf) {
  const form = $(formId);
  const target = $(resultId);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    if ($("model").value) data.set("model", $("model").value);
    for (const [k, v] of [...data.entries()]) if (v === "") data.delete(k);
    target.replaceChildren(Object.assign(document.createElement("div"), { className: "muted", textContent: "working…" }));
    form.querySelector("button").disabled = true;
    try {
      const answer = await fetch(route, { method: "POST", body: data, headers: headers() });
      const body = await answer.json();
      if (!answer.ok) throw new Error(`${answer.status}: ${describe(body.detail)}`);
      show(target, imagesOf(body), body);
      target.dataset.state = "done";
    } catch (err) {
      target.replaceChildren(Object.assign(document.createElement("div"), { className: "error", textContent: err.message }));
      target.dataset.state = "error";
    } finally {
      form.querySelector("button").disabled = false;
    }
  });
}

bind("transfer-form", "/transfer", "transfer-result", (b) => [b.image]);
bind("sample-form", "/sample", "sample-result", (b) => b.images);
bind("neutralize-form", "/neutralize", "neutralize-result", (b) => [b.image]);
bind("interpolate-form", "/interpolate", "interpolate-result", (b) => b.images);
loadModels();
