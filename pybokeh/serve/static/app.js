// pybokeh serve: the page.  Talks to the JSON/image API in pybokeh/serve/app.py.
"use strict";

const F_STOPS = [1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.5, 2.8, 3.2, 3.5, 4.0, 4.5, 5.0, 5.6, 6.3, 7.1, 8.0, 9.0,
                 10, 11, 13, 14, 16, 18, 20, 22];
const $ = (id) => document.getElementById(id);
const view = $("view");

let config = { max_upload_bytes: Infinity };
let photo = null;        // the server's description of the open photo
let focus = null;        // {x, y} in full-resolution pixels, and {value} while it is the automatic subject focus
let previewUrl = null;
let depthUrl = null;
let inflight = false;    // one preview request at a time; the latest settings win
let pending = false;
let previews = 0;        // previews shown since the page loaded (the tests wait on it)

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

async function answerError(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (e) { /* not JSON */ }
  return `the server answered ${response.status} ${response.statusText}`;
}

async function call(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (e) {
    throw new Error("the server did not answer: is pybokeh serve still running?");
  }
  if (!response.ok) throw new Error(await answerError(response));
  return response;
}

function settings() {
  const blades = Number($("blades").value);
  return {
    x: focus.x, y: focus.y, focus: focus.value === undefined ? null : focus.value,
    f_number: F_STOPS[Number($("f-number").value)],
    blades: blades === 2 ? 0 : blades,
    rotation_deg: Number($("rotation").value),
    highlight_boost: Number($("highlights").value),
    focus_range: Number($("focus-range").value) / 100,
  };
}

function showOutputs() {
  const blades = Number($("blades").value);
  $("f-number-out").textContent = `f/${F_STOPS[Number($("f-number").value)]}`;
  $("blades-out").textContent = blades === 2 ? "round" : String(blades);
  $("rotation").disabled = blades === 2;
  $("rotation-out").textContent = `${$("rotation").value}°`;
  $("highlights-out").textContent = $("highlights").value;
  $("focus-range-out").textContent = `${$("focus-range").value}%`;
}

function placeMarker() {
  if (!photo || !focus) return;
  const marker = $("marker");
  marker.style.left = `${((focus.x + 0.5) / photo.width) * 100}%`;
  marker.style.top = `${((focus.y + 0.5) / photo.height) * 100}%`;
  marker.hidden = false;
}

function showImage() {
  const url = $("depth-view").checked ? depthUrl : previewUrl;
  if (url && view.src !== url) view.src = url;
}

async function requestPreview() {
  if (!photo || !focus || !photo.focus) return;
  if (inflight) { pending = true; return; }
  inflight = true;
  pending = false;
  $("busy").hidden = false;
  const started = performance.now();
  try {
    const response = await call(`/api/photos/${photo.id}/preview`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(settings()),
    });
    const blob = await response.blob();
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(blob);
    if (!$("depth-view").checked) {
      view.src = previewUrl;
      await view.decode().catch(() => {});
    }
    previews += 1;
    document.body.dataset.previews = String(previews);
    const total = Math.round(performance.now() - started);
    const size = (response.headers.get("X-Preview-Size") || "").replace("x", "×");
    $("timing").textContent = `Preview ${size}: rendered in ${response.headers.get("X-Render-Ms")} ms, ` +
      `shown after ${total} ms. ` +
      `Focus at normalised disparity ${response.headers.get("X-Focus")}.`;
  } catch (e) {
    showError(e.message);
  } finally {
    inflight = false;
    $("busy").hidden = true;
    if (pending) requestPreview();
  }
}

function closePhoto() {
  if (!photo) return;
  fetch(`/api/photos/${photo.id}`, { method: "DELETE", keepalive: true }).catch(() => {});
}

async function loadDepthView() {
  if (depthUrl) URL.revokeObjectURL(depthUrl);
  depthUrl = null;
  if (!photo.focus) return;
  const response = await call(`/api/photos/${photo.id}/depth.png`);
  depthUrl = URL.createObjectURL(await response.blob());
  showImage();
}

function applyPhoto(described) {
  photo = described;
  $("depth-source").textContent = photo.depth.text;
  $("depth-source").dataset.source = photo.depth.source;
  $("frame").style.setProperty("--aspect", String(photo.width / photo.height));
  const hasDepth = Boolean(photo.focus);
  $("lens").disabled = !hasDepth;
  $("export").disabled = !hasDepth;
  $("depth-tools").disabled = false;
  $("depth-view").disabled = !hasDepth;
  if (hasDepth) {
    focus = { x: photo.focus.x, y: photo.focus.y, value: photo.focus.value };
    $("focus-range").value = String(Math.round(photo.focus.focus_range * 100));
    showOutputs();
    placeMarker();
  } else {
    $("marker").hidden = true;
  }
}

async function openPhoto(file) {
  if (!file) return;
  clearError();
  if (file.size > config.max_upload_bytes) {
    showError(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB, over the upload limit of ` +
              `${(config.max_upload_bytes / 2 ** 20).toFixed(0)} MB`);
    return;
  }
  $("photo-name").textContent = `reading ${file.name}… (estimating depth can take a few seconds)`;
  document.body.dataset.state = "loading";
  try {
    const response = await call("/api/photos", {
      method: "POST", body: file,
      headers: { "Content-Type": "application/octet-stream", "X-Filename": encodeURIComponent(file.name) },
    });
    const described = await response.json();
    closePhoto();
    applyPhoto(described);
    $("photo-name").textContent = `${photo.name}: ${photo.width}×${photo.height}`;
    const original = await call(`/api/photos/${photo.id}/photo.jpg`);
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(await original.blob());
    $("depth-view").checked = false;
    view.src = previewUrl;
    await view.decode().catch(() => {});
    $("placeholder").hidden = true;
    $("frame").hidden = false;
    $("stage").classList.add("has-photo");
    placeMarker();
    await loadDepthView();
    document.body.dataset.state = "ready";
    await requestPreview();
  } catch (e) {
    document.body.dataset.state = "error";
    $("photo-name").textContent = photo ? `${photo.name}: ${photo.width}×${photo.height}` : "";
    showError(e.message);
  }
}

async function openDepth(file) {
  if (!file || !photo) return;
  clearError();
  try {
    const kind = $("depth-kind").value;
    const response = await call(`/api/photos/${photo.id}/depth?kind=${kind}`, {
      method: "POST", body: file,
      headers: { "Content-Type": "application/octet-stream", "X-Filename": encodeURIComponent(file.name) },
    });
    applyPhoto(await response.json());
    await loadDepthView();
    await requestPreview();
  } catch (e) {
    showError(e.message);
  } finally {
    $("depth-file").value = "";
  }
}

function clickFocus(event) {
  if (!photo || !photo.focus) return;
  const box = view.getBoundingClientRect();
  const fx = (event.clientX - box.left) / box.width;
  const fy = (event.clientY - box.top) / box.height;
  focus = {
    x: Math.min(photo.width - 1, Math.max(0, Math.floor(fx * photo.width))),
    y: Math.min(photo.height - 1, Math.max(0, Math.floor(fy * photo.height))),
  };
  placeMarker();
  requestPreview();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function download() {
  if (!photo || !focus) return;
  clearError();
  const button = $("download");
  const bar = $("progress");
  const text = $("progress-text");
  button.disabled = true;
  bar.hidden = false;
  bar.value = 0;
  try {
    const body = { ...settings(), format: $("format").value };
    const started = await call(`/api/photos/${photo.id}/render`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const job = (await started.json()).job;
    const megapixels = (photo.width * photo.height / 1e6).toFixed(1);
    for (;;) {
      const status = await (await call(`/api/jobs/${job}`)).json();
      if (status.state === "error") throw new Error(`the full-resolution render failed: ${status.error}`);
      if (status.state === "done") break;
      if (status.state === "queued") {
        text.textContent = "waiting for another render to finish…";
      } else {
        // The renderer reports no progress of its own: the bar follows the time it is expected to take.
        const expected = Math.max(status.expected_s, 0.1);
        bar.value = Math.min(0.95, status.rendering_s / expected);
        text.textContent = status.state === "encoding" ? "writing the file…" :
          `rendering ${megapixels} MP… ${status.rendering_s.toFixed(1)} s of about ${expected.toFixed(1)} s`;
      }
      await sleep(250);
    }
    bar.value = 1;
    text.textContent = "done";
    const link = document.createElement("a");
    link.href = `/api/jobs/${job}/download`;
    link.download = "";
    document.body.appendChild(link);
    link.click();
    link.remove();
  } catch (e) {
    text.textContent = "";
    bar.hidden = true;
    showError(e.message);
  } finally {
    button.disabled = false;
  }
}

function setUp() {
  fetch("/api/config").then((r) => r.json()).then((c) => { config = c; }).catch(() => {});
  $("photo-file").addEventListener("change", (e) => {
    openPhoto(e.target.files[0]);
    e.target.value = "";
  });
  $("depth-file").addEventListener("change", (e) => openDepth(e.target.files[0]));
  view.addEventListener("click", clickFocus);
  for (const id of ["f-number", "blades", "rotation", "highlights", "focus-range"]) {
    $(id).addEventListener("input", () => { showOutputs(); requestPreview(); });
  }
  $("depth-view").addEventListener("change", showImage);
  $("download").addEventListener("click", download);
  // Drag and drop anywhere on the page opens the photo.
  let depth = 0;
  document.addEventListener("dragenter", (e) => {
    e.preventDefault();
    depth += 1;
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) document.body.classList.remove("dragging");
  });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) openPhoto(file);
  });
  window.addEventListener("pagehide", closePhoto);
  showOutputs();
  document.body.dataset.state = "empty";
}

setUp();
