// The dynstereo web page: submit a stereo video, watch the jobs, look at a job's frames, play its depth
// video and download its results. It is a client of the public JSON API (openapi.yaml) and of nothing else,
// so everything it shows a script can do too. No framework and no build step: this file is served as it is.
"use strict";

const KEY_STORAGE = "dynstereo.apiKey";
const UNFINISHED = new Set(["queued", "running"]);
// How often views refresh: often while something runs, seldom when nothing does or the tab is hidden.
const POLL_ACTIVE_MS = 1500;
const POLL_IDLE_MS = 15000;
const POLL_HIDDEN_MS = 30000;
// Signed URLs are asked for with this lifetime and renewed when less than a minute of it is left.
const SIGNED_LIFETIME_S = 3600;

const state = {
  /** null until known; true when the server has API keys, false when it is open. */
  keyed: null,
  key: localStorage.getItem(KEY_STORAGE),
  /** path -> {url, expires} of signed result URLs. */
  signed: new Map(),
  /** job id -> its JSON, for finished jobs (which no longer change) in the list. */
  finishedJobs: new Map(),
  /** The view's refresh loop; replaced whenever the view changes. */
  poller: null,
  /** The job shown in the job view and where its scrubber stands. */
  job: null,
  followNewest: true,
  shownFrame: null,
};

const $ = (id) => document.getElementById(id);

/** An error answer of the API, as it words it: `{"error": {"code", "message"}}` and the HTTP status. */
class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  get text() {
    return `${this.message} (${this.code}, HTTP ${this.status})`;
  }
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    // Not JSON: a proxy's own page (nginx's 413 or 502), worded by its status line.
  }
  const e = body && body.error;
  return e ? new APIError(response.status, e.code, e.message)
    : new APIError(response.status, `http_${response.status}`, `${response.status} ${response.statusText}`.trim());
}

function authHeaders(headers = {}) {
  const h = new Headers(headers);
  if (state.keyed && state.key) h.set("Authorization", `Bearer ${state.key}`);
  return h;
}

/** A JSON call; throws APIError for an error answer. 204 gives null. */
async function api(method, path, body) {
  const headers = authHeaders(body === undefined ? {} : { "Content-Type": "application/json" });
  const response = await fetch(path, { method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) throw await errorFrom(response);
  return response.status === 204 ? null : response.json();
}

function showError(element, error) {
  if (!error) {
    element.hidden = true;
    element.textContent = "";
    return;
  }
  element.hidden = false;
  element.textContent = error instanceof APIError ? error.text : String(error.message || error);
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

function formatTime(text) {
  return text ? new Date(text).toLocaleString() : "—";
}

function formatBytes(bytes) {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

function statusBadge(status) {
  return el("span", { class: `status ${status}` }, status);
}

function etaText(job) {
  if (isFinished(job)) return "—";
  if (job.status === "queued") return "waiting for a worker";
  const eta = progressOf(job).eta;
  return eta === null ? "measuring…" : formatSeconds(eta);
}

function progressOf(job) {
  const p = job.progress || {};
  return {
    framesDone: p.frames_done ?? 0,
    framesTotal: p.frames_total ?? 0,
    windowsDone: p.windows_done ?? null,
    windowsTotal: p.windows_total ?? null,
    itersDone: p.iterations_done ?? null,
    itersTotal: p.iterations_total ?? null,
    eta: p.eta_seconds ?? null,
  };
}

// MARK: - Refresh loops

/** Runs `step` now and again after the delay it returns (null: stop), until stopped. */
class Poller {
  constructor(step) {
    this.step = step;
    this.timer = null;
    this.stopped = false;
  }
  start() {
    this.run();
    return this;
  }
  async run() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    let delay = POLL_IDLE_MS;
    try {
      delay = await this.step();
    } catch (error) {
      console.warn(error);
    }
    if (this.stopped || delay === null) return;
    this.timer = setTimeout(() => this.run(), document.hidden ? Math.max(delay, POLL_HIDDEN_MS) : delay);
  }
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && state.poller && !state.poller.stopped) state.poller.run();
});

// MARK: - Keys and signed URLs

function renderAccess() {
  const access = $("access");
  access.replaceChildren();
  if (state.keyed === false) {
    access.append("Open server: no API key is needed (anyone who can reach it can use it).");
  } else if (state.keyed && state.key) {
    access.append(`API key …${state.key.slice(-4)}`,
      el("button", { type: "button", id: "forget-key", onclick: forgetKey }, "Forget key"));
  } else if (state.keyed) {
    access.append("This server needs an API key.");
  }
}

function forgetKey() {
  localStorage.removeItem(KEY_STORAGE);
  state.key = null;
  state.signed.clear();
  state.finishedJobs.clear();
  route();
}

/** Learns whether the server has keys: an open server answers a job route without one. */
async function detectAccess() {
  const response = await fetch("/jobs?limit=1", { cache: "no-store" });
  if (response.ok) state.keyed = false;
  else if (response.status === 401) state.keyed = true;
  else throw await errorFrom(response);
  renderAccess();
}

/** Whether the stored key opens the server; shows the key form with the API's words when it does not. */
async function checkKey() {
  if (!state.keyed) return true;
  if (state.key) {
    try {
      await api("GET", "/jobs?limit=1");
      return true;
    } catch (error) {
      if (!(error instanceof APIError) || (error.status !== 401 && error.status !== 403)) throw error;
      showError($("key-error"), error);
    }
  }
  showOnly("key-panel");
  $("key-input").focus();
  return false;
}

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  state.key = $("key-input").value.trim();
  localStorage.setItem(KEY_STORAGE, state.key);
  showError($("key-error"), null);
  state.signed.clear();
  renderAccess();
  route();
});

/**
 * URLs a browser element can load for `paths` of job `id` (a `<video src>`, an `<img src>` or a link cannot
 * send the Bearer header): on an open server the plain paths, on a keyed one signed URLs, asked for in one
 * request for every path not signed yet or close to its expiry.
 */
async function resultURLs(id, paths) {
  const base = `/jobs/${id}/`;
  const result = new Map();
  if (!state.keyed) {
    // A frame's name may hold characters a URL escapes (a space, '#', '?'); the server decodes each segment.
    for (const path of paths) result.set(path, base + path.split("/").map(encodeURIComponent).join("/"));
    return result;
  }
  const now = Date.now() / 1000;
  const missing = paths.filter((path) => {
    const entry = state.signed.get(base + path);
    return !entry || entry.expires - now < 60;
  });
  for (let start = 0; start < missing.length; start += 1000) {
    const chunk = missing.slice(start, start + 1000);
    const answer = await api("POST", `${base}signed-urls`, { paths: chunk, expires_in: SIGNED_LIFETIME_S });
    for (const path of chunk) {
      if (answer.urls && answer.urls[path]) state.signed.set(base + path, { url: answer.urls[path], expires: answer.expires });
    }
  }
  for (const path of paths) {
    const entry = state.signed.get(base + path);
    if (entry) result.set(path, entry.url);
  }
  return result;
}

// MARK: - Views

const VIEWS = ["key-panel", "view-new", "view-jobs", "view-job"];

function showOnly(id) {
  for (const view of VIEWS) $(view).hidden = view !== id;
  $("nav-jobs").classList.toggle("current", id === "view-jobs");
  $("nav-new").classList.toggle("current", id === "view-new");
}

async function route() {
  if (state.poller) state.poller.stop();
  state.poller = null;
  try {
    if (state.keyed === null) await detectAccess();
    renderAccess();
    if (!(await checkKey())) return;
  } catch (error) {
    $("access").textContent = `The server does not answer: ${error instanceof APIError ? error.text : error.message}`;
    setTimeout(route, POLL_IDLE_MS);
    return;
  }
  const hash = location.hash || "#/";
  const job = hash.match(/^#\/jobs\/([0-9a-fA-F-]{36})$/);
  if (hash === "#/new") {
    showOnly("view-new");
  } else if (job) {
    showOnly("view-job");
    openJob(job[1].toLowerCase());
  } else {
    showOnly("view-jobs");
    state.poller = new Poller(refreshJobs).start();
  }
}

window.addEventListener("hashchange", route);

// MARK: - Submit

const PARAMETERS = ["iters", "kernel_size", "max_size", "start_frame", "frame_step", "frame_count", "fps", "focal_px", "baseline_m"];

for (const radio of document.querySelectorAll("input[name=input-kind]")) {
  radio.addEventListener("change", () => {
    const stereo = document.querySelector("input[name=input-kind]:checked").value === "stereo";
    $("pair-inputs").hidden = stereo;
    $("stereo-inputs").hidden = !stereo;
  });
}

/** A random Idempotency-Key, so that a retried upload can never queue the same video twice. */
function idempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

$("submit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData();
  const stereo = document.querySelector("input[name=input-kind]:checked").value === "stereo";
  // What is missing or wrong is for the API to say, in its own words.
  if (stereo) {
    if ($("stereo").files[0]) form.append("stereo", $("stereo").files[0]);
    form.append("layout", $("layout").value);
  } else {
    if ($("left").files[0]) form.append("left", $("left").files[0]);
    if ($("right").files[0]) form.append("right", $("right").files[0]);
  }
  for (const name of PARAMETERS) {
    const value = $(name).value.trim();
    if (value !== "") form.append(name, value);
  }
  const button = $("submit-button");
  const bar = $("upload-progress");
  const status = $("upload-status");
  showError($("submit-error"), null);
  button.disabled = true;
  bar.hidden = false;
  bar.value = 0;
  status.textContent = "uploading…";

  // XMLHttpRequest, not fetch: only it reports upload progress.
  const request = new XMLHttpRequest();
  request.open("POST", "/jobs");
  authHeaders({ "Idempotency-Key": idempotencyKey() }).forEach((value, name) => request.setRequestHeader(name, value));
  request.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    bar.value = e.loaded / e.total;
    status.textContent = `${formatBytes(e.loaded)} of ${formatBytes(e.total)} sent (${Math.floor((100 * e.loaded) / e.total)} %)`;
  });
  request.upload.addEventListener("load", () => {
    bar.value = 1;
    status.textContent = "uploaded; the server is checking the frames…";
  });
  const done = () => {
    button.disabled = false;
  };
  request.addEventListener("load", async () => {
    done();
    const response = new Response(request.responseText, { status: request.status, statusText: request.statusText });
    if (request.status === 200 || request.status === 202) {
      const job = await response.json();
      status.textContent = request.status === 202 ? "queued" : "this upload had been queued already";
      location.hash = `#/jobs/${job.id}`;
    } else {
      bar.hidden = true;
      status.textContent = "";
      showError($("submit-error"), await errorFrom(response));
    }
  });
  request.addEventListener("error", () => {
    done();
    bar.hidden = true;
    status.textContent = "";
    showError($("submit-error"), new Error("The upload did not reach the server, or the server closed the connection before it answered."));
  });
  request.send(form);
});

// MARK: - Jobs

function isFinished(job) {
  return !UNFINISHED.has(job.status);
}

async function refreshJobs() {
  let page;
  try {
    page = await api("GET", "/jobs?limit=50");
    showError($("jobs-error"), null);
  } catch (error) {
    showError($("jobs-error"), error);
    return POLL_IDLE_MS;
  }
  const jobs = page.jobs || [];
  // Where a list leaves the window counts and the ETA out (null), each job's own JSON has them (fetched
  // once for a finished job, which changes no more).
  const details = await Promise.all(jobs.map(async (job) => {
    if (job.progress && job.progress.windows_total != null) return job;
    if (isFinished(job) && state.finishedJobs.has(job.id)) return state.finishedJobs.get(job.id);
    try {
      const detail = await api("GET", `/jobs/${job.id}`);
      if (isFinished(detail)) state.finishedJobs.set(detail.id, detail);
      return detail;
    } catch (_) {
      return job;
    }
  }));
  const body = $("jobs-table").tBodies[0];
  body.replaceChildren(...details.map(jobRow));
  $("jobs-empty").hidden = jobs.length > 0;
  $("jobs-table").hidden = jobs.length === 0;
  const active = details.some((job) => !isFinished(job));
  $("jobs-refresh").textContent = active ? "refreshing every few seconds while jobs run" : "nothing runs; refreshing every 15 s";
  return active ? POLL_ACTIVE_MS : POLL_IDLE_MS;
}

function jobRow(job) {
  const p = progressOf(job);
  const link = el("a", { href: `#/jobs/${job.id}`, title: job.id }, el("code", {}, job.id.slice(0, 8)));
  const windows = p.windowsTotal === null ? "—" : `${p.windowsDone} / ${p.windowsTotal}`;
  const eta = etaText(job);
  const actions = el("td", { class: "actions-cell" });
  if (!isFinished(job)) actions.append(el("button", { type: "button", class: "cancel", onclick: () => cancelJob(job.id) }, "Cancel"));
  actions.append(deleteButton(job.id, () => state.poller && state.poller.run()));
  return el("tr", { "data-job": job.id },
    el("td", {}, link), el("td", {}, statusBadge(job.status)),
    el("td", { class: "num" }, `${p.framesDone} / ${p.framesTotal}`), el("td", { class: "num" }, windows),
    el("td", { class: "num" }, eta), el("td", {}, formatTime(job.created_at)), actions);
}

async function cancelJob(id) {
  try {
    await api("POST", `/jobs/${id}/cancel`);
  } catch (error) {
    alertError(error);
  }
  if (state.poller) state.poller.run();
}

/** A delete button that asks once more on the button itself (no modal dialog), for five seconds. */
function deleteButton(id, after) {
  const button = el("button", { type: "button", class: "danger delete" }, "Delete");
  let armed = null;
  button.addEventListener("click", async () => {
    if (!armed) {
      button.textContent = "Delete for good?";
      armed = setTimeout(() => {
        armed = null;
        button.textContent = "Delete";
      }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    try {
      await api("DELETE", `/jobs/${id}`);
      state.finishedJobs.delete(id);
    } catch (error) {
      alertError(error);
    }
    after();
  });
  return button;
}

function alertError(error) {
  const box = $("view-job").hidden ? $("jobs-error") : $("job-error-box");
  showError(box, error);
}

// MARK: - A job

function openJob(id) {
  state.job = null;
  state.followNewest = true;
  state.shownFrame = null;
  $("job-id").textContent = id;
  $("job-status").replaceChildren();
  $("job-summary").replaceChildren();
  $("windows-table").tBodies[0].replaceChildren();
  $("downloads").replaceChildren();
  $("frame-downloads").replaceChildren();
  $("video-box").hidden = true;
  $("job-video").removeAttribute("src");
  const image = $("preview-image");
  image.hidden = true;
  image.removeAttribute("src");
  image.className = "";
  delete image.dataset.scale;
  $("preview-caption").textContent = "No frame is stored yet.";
  showError($("job-error-box"), null);
  const cancel = $("job-cancel");
  cancel.onclick = () => cancelJob(id);
  const old = $("job-delete");
  old.replaceWith(Object.assign(deleteButton(id, () => { location.hash = "#/"; }), { id: "job-delete" }));
  state.poller = new Poller(() => refreshJob(id)).start();
}

async function refreshJob(id) {
  let job;
  try {
    job = await api("GET", `/jobs/${id}`);
  } catch (error) {
    showError($("job-error-box"), error);
    return error instanceof APIError && error.status === 404 ? null : POLL_IDLE_MS;
  }
  const wasFinished = state.job && state.job.id === id && isFinished(state.job);
  state.job = job;
  await renderJob(job);
  // A finished job changes no more: one last render, then the loop stops.
  return isFinished(job) && wasFinished ? null : POLL_ACTIVE_MS;
}

/** The input frame indices whose files are stored: the job's `frames_ready` ranges (every frame once succeeded). */
function readyFrames(job) {
  const p = progressOf(job);
  if (job.status === "succeeded" && job.results !== "expired") return [[0, p.framesTotal]];
  const ranges = (job.frames_ready && Array.isArray(job.frames_ready.ranges)) ? job.frames_ready.ranges : [];
  return ranges.filter((r) => Array.isArray(r) && r.length === 2);
}

function isReady(ranges, index) {
  return ranges.some(([first, end]) => index >= first && index < end);
}

/**
 * The name of input frame `index` (its result files' NNNN): from `frames_ready.names`, which a job's own
 * JSON gives whenever its frames have names of their own (a tar's members, `img_17`); from the list of result
 * files of a succeeded job stored before windows; else the index in the source video (start_frame + index ×
 * frame_step, 4 digits), which is how frames from videos (and tars named so) are named.
 */
function frameName(job, index) {
  const ready = job.frames_ready || {};
  if (Array.isArray(ready.names) && typeof ready.names[index] === "string") return ready.names[index];
  const results = job.urls && Array.isArray(job.urls.results) ? job.urls.results : null;
  if (results) {
    const names = results.map((url) => url.match(/\/disparity\/([^/]+)\.png$/)).filter(Boolean).map((m) => m[1]);
    if (names.length === progressOf(job).framesTotal && names[index]) return names[index];
  }
  const parameters = job.parameters || {};
  const source = (parameters.start_frame || 0) + index * (parameters.frame_step || 1);
  return String(source).padStart(4, "0");
}

/** The whole-video downloads of a job: those its results list names, or every kind when it lists none. */
function videoDownloads(job) {
  if (job.status !== "succeeded" || job.results === "expired") return [];
  const kinds = ["video.mp4", "color.mp4", "disparity.npy", "result.tar"];
  const results = job.urls && Array.isArray(job.urls.results) ? job.urls.results : null;
  if (!results) return kinds;
  return kinds.filter((kind) => kind === "result.tar" || results.some((url) => url.endsWith(`/${kind}`)));
}

/**
 * The chosen frame's own files: the kinds `frames_ready.url_templates` names (what is stored while the job
 * runs, the rest once it has succeeded, only those its `outputs` asked for); for a job stored before windows,
 * which gives no templates, the files its results list.
 */
function frameDownloads(job, name) {
  const templates = job.frames_ready && job.frames_ready.url_templates;
  if (templates && typeof templates === "object" && Object.keys(templates).length > 0) {
    const prefix = `/jobs/${job.id}/`;
    return ["disparity", "depth", "color", "video", "points"]
      .filter((kind) => typeof templates[kind] === "string" && templates[kind].startsWith(prefix))
      .map((kind) => templates[kind].slice(prefix.length).replace("{name}", name));
  }
  const calibrated = job.parameters && job.parameters.focal_px != null && job.parameters.baseline_m != null;
  const paths = [`disparity/${name}.png`];
  if (calibrated) paths.push(`depth/${name}.png`);
  if (job.status === "succeeded") {
    paths.push(`color/${name}.png`, `video/${name}.png`);
    if (calibrated) paths.push(`points/${name}.ply`);
  }
  const results = job.urls && Array.isArray(job.urls.results) ? job.urls.results : null;
  // Where the results are listed, only the files that exist (a job's `outputs` may leave kinds out).
  return results && job.status === "succeeded" ? paths.filter((path) => results.some((url) => url.endsWith(`/${path}`))) : paths;
}

async function renderJob(job) {
  const p = progressOf(job);
  $("job-status").replaceChildren(statusBadge(job.status));
  const facts = [
    ["Submitted", formatTime(job.created_at)], ["Started", formatTime(job.started_at)], ["Finished", formatTime(job.finished_at)],
    ["Frames stored", `${p.framesDone} / ${p.framesTotal}`],
    ["Windows stored", p.windowsTotal === null ? "—" : `${p.windowsDone} / ${p.windowsTotal}`],
    ["Iterations", p.itersTotal === null ? "—" : `${p.itersDone} / ${p.itersTotal}`],
    ["ETA", etaText(job)],
    ["Attempt", job.attempt ?? "—"],
  ];
  for (const [name, value] of Object.entries(job.parameters || {})) {
    if (value !== null && value !== undefined) facts.push([`parameter ${name}`, Array.isArray(value) ? value.join(", ") : String(value)]);
  }
  $("job-summary").replaceChildren(...facts.map(([name, value]) => el("div", {}, el("span", {}, name), String(value))));
  const bar = $("job-progress");
  bar.value = p.windowsTotal ? p.windowsDone / (p.windowsTotal + 1) + (job.status === "succeeded" ? 1 / (p.windowsTotal + 1) : 0)
    : p.framesTotal ? p.framesDone / p.framesTotal : 0;
  $("job-cancel").hidden = isFinished(job);
  if (job.error) showError($("job-error-box"), new APIError("job", job.error.code, job.error.message));
  else showError($("job-error-box"), null);
  if (job.error) $("job-error-box").textContent = `The job failed: ${job.error.message} (${job.error.code})`;
  if (job.results === "expired") {
    $("job-error-box").hidden = false;
    $("job-error-box").textContent = `Retention deleted this job's inputs and results at ${formatTime(job.results_expired_at)}.`;
  }

  const windows = Array.isArray(job.windows) ? job.windows : [];
  $("windows-table").tBodies[0].replaceChildren(...windows.map((w) => el("tr", {},
    el("td", { class: "num" }, w.index), el("td", { class: "num" }, `${w.first_frame}–${w.first_frame + w.frames - 1}`),
    el("td", {}, statusBadge(w.status)), el("td", { class: "num" }, w.attempt ?? "—"),
    el("td", {}, w.worker ?? (state.keyed ? "(hidden from keyed clients)" : "—")))));

  const downloads = videoDownloads(job);
  const urls = await resultURLs(job.id, downloads);
  $("downloads").replaceChildren(...downloads.map((path) => el("li", {}, el("a", { href: urls.get(path), download: "" }, path))));
  if (downloads.length === 0) $("downloads").append(el("li", { class: "help" }, isFinished(job) ? "No whole-video files." : "disparity.npy, result.tar and the MP4s exist once the job has succeeded."));

  await renderVideo(job, downloads.includes("video.mp4") ? urls.get("video.mp4") : null);
  await renderScrubber(job);
}

async function renderVideo(job, url) {
  const video = $("job-video");
  if (!url) {
    $("video-box").hidden = true;
    return;
  }
  $("video-box").hidden = false;
  if (video.dataset.job === job.id) return;
  video.dataset.job = job.id;
  video.onloadedmetadata = () => {
    $("video-note").textContent = `${video.videoWidth}×${video.videoHeight}, ${video.duration.toFixed(2)} s: the left view beside its colour-mapped disparity.`;
  };
  video.onerror = () => {
    $("video-note").textContent = "video.mp4 could not be played here; the frames below show the same.";
  };
  video.src = url;
}

// The scrubber: a slider over the job's frames and the preview of the chosen one, following the newest
// stored frame until the user moves it.
const slider = $("frame-slider");
let scrubTimer = null;
slider.addEventListener("input", () => {
  state.followNewest = false;
  clearTimeout(scrubTimer);
  if (state.job) updateFrameLabel(state.job, Number(slider.value));
  scrubTimer = setTimeout(() => state.job && showFrame(state.job, Number(slider.value)), 120);
});

function updateFrameLabel(job, index) {
  const total = progressOf(job).framesTotal;
  $("frame-label").textContent = total ? `frame ${index + 1} of ${total} (${frameName(job, index)})` : "";
}

async function renderScrubber(job) {
  const total = progressOf(job).framesTotal;
  const ranges = readyFrames(job);
  slider.max = String(Math.max(0, total - 1));
  slider.disabled = total === 0;
  let index = Number(slider.value);
  if (state.followNewest && ranges.length > 0) index = ranges[ranges.length - 1][1] - 1;
  slider.value = String(index);
  updateFrameLabel(job, index);
  await showFrame(job, index);
}

async function showFrame(job, index) {
  const image = $("preview-image");
  const caption = $("preview-caption");
  const ranges = readyFrames(job);
  const name = frameName(job, index);
  if (!isReady(ranges, index) || job.results === "expired") {
    image.hidden = true;
    caption.textContent = job.results === "expired" ? "The results were deleted by retention."
      : `Frame ${name} is not stored yet: its window has not finished.`;
    $("frame-downloads").replaceChildren();
    return;
  }
  const final = job.status === "succeeded";
  const key = `${job.id}/${name}/${final ? "final" : progressOf(job).framesDone}`;
  const links = frameDownloads(job, name);
  // Signed URLs for the previews around this frame too, so that scrubbing asks for them in batches.
  const previews = [];
  for (let i = Math.max(0, index - 32); i < index + 32; i++) if (isReady(ranges, i)) previews.push(`preview/${frameName(job, i)}.png`);
  const urls = await resultURLs(job.id, [...new Set([...previews, ...links])]);
  $("frame-downloads").replaceChildren("This frame: ", ...links.map((path) => el("a", { href: urls.get(path), download: "" }, path)));
  if (state.shownFrame === key) return;
  state.shownFrame = key;
  const source = urls.get(`preview/${name}.png`);
  // A provisional preview changes as windows are stored: its URL names how many frames it was drawn from.
  const url = final ? source : `${source}${source.includes("?") ? "&" : "?"}frames=${progressOf(job).framesDone}`;
  image.onload = () => {
    image.hidden = false;
    image.className = final ? "final" : "provisional";
    image.dataset.scale = final ? "final" : "provisional";
    image.dataset.frame = name;
    caption.textContent = final
      ? `Frame ${name}: disparity on the video's final colour scale (dark far, bright near).`
      : `Frame ${name}: provisional colour scale, from the frames stored so far; it is final once the job has succeeded.`;
  };
  image.onerror = () => {
    caption.textContent = `The preview of frame ${name} could not be loaded.`;
  };
  image.src = url;
}

route();
