// The playground: key, Generate form, the watched task, and the Tasks and Operators panels.

import { Client } from "./api.js";
import { checkImage, checkVideo, countMessage, describeImage, describeVideo } from "./checks.js";
import { byId, describeError, el } from "./dom.js";
import { OperatorPanel } from "./operator.js";
import { TasksTable } from "./tasks.js";

const KEY_STORAGE = "paddock.apiKey";
const MODEL_STORAGE = "paddock.model";
const POLL_MS = 500;
const SAMPLE_URL = "/static/sample.jpg";
// Which file input holds each media type, in the order the media list is sent.
const INPUTS = { video: "source-video", first_frame: "first-frame", reference_image: "references" };
const MEDIA_ORDER = ["video", "first_frame", "reference_image"];

const state = { client: null, models: new Map(), watching: null };
const tasks = new TasksTable(showError);
const operator = new OperatorPanel();

function showError(message) {
  byId("form-error").textContent = message;
}

function currentModel() {
  return state.models.get(byId("model").value) || null;
}

function fillSelect(select, choices, chosen) {
  select.replaceChildren(...choices.map((c) => el("option", { value: c }, c)));
  if (chosen !== undefined && choices.map(String).includes(String(chosen))) select.value = String(chosen);
}

// -- key -------------------------------------------------------------------------------------

/** A `#key=...` link (printed by `paddock serve`) fills the key in; the fragment never reaches a server. */
function keyFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const key = params.get("key");
  if (key) history.replaceState(null, "", location.pathname + location.search);
  return key;
}

async function useKey(key) {
  localStorage.setItem(KEY_STORAGE, key);
  const client = new Client(key);
  state.client = client;
  operator.use(null, false); // nothing of the previous key stays on screen
  showError("");
  const help = byId("model-help");
  try {
    const catalogue = await client.models();
    if (state.client !== client) return; // another key was entered meanwhile
    state.models = new Map(catalogue.models.map((m) => [m.name, m]));
    const names = [...state.models.keys()];
    const remembered = localStorage.getItem(MODEL_STORAGE);
    const preferred = names.includes(remembered) ? remembered : names.find((n) => n.endsWith("-i2v")) || names[0];
    fillSelect(byId("model"), names, preferred);
    help.textContent = `${names.length} models for this key.`;
    showModel();
    operator.use(client, catalogue.admin);
    tasks.use(client);
  } catch (error) {
    if (state.client !== client) return;
    state.models = new Map();
    byId("model").replaceChildren();
    help.textContent = describeError(error);
    tasks.use(null);
  }
}

// -- the form --------------------------------------------------------------------------------

function mediaOf(model, type) {
  return model.media.find((m) => m.type === type) || null;
}

function showModel() {
  const model = currentModel();
  if (!model) return;
  localStorage.setItem(MODEL_STORAGE, model.name);
  const p = model.parameters;
  const frame = mediaOf(model, "first_frame");
  const video = mediaOf(model, "video");
  const refs = mediaOf(model, "reference_image");
  byId("first-frame-field").hidden = !frame;
  byId("video-field").hidden = !video;
  byId("references-field").hidden = !refs;
  if (frame) byId("first-frame-help").textContent = describeImage(frame.rule);
  if (video) byId("video-help").textContent = describeVideo(video.rule);
  if (refs) byId("references-help").textContent = `${refs.min} to ${refs.max} images. ${describeImage(refs.rule)}`;
  fillSelect(byId("resolution"), p.resolution.choices, byId("resolution").value || p.resolution.default);
  byId("duration-field").hidden = !p.duration;
  if (p.duration) {
    const seconds = [];
    for (let s = p.duration.min; s <= p.duration.max; s += 1) seconds.push(s);
    fillSelect(byId("duration"), seconds, byId("duration").value || p.duration.default);
  }
  byId("ratio-field").hidden = !p.ratio;
  if (p.ratio) fillSelect(byId("ratio"), p.ratio.choices, byId("ratio").value || p.ratio.default);
  byId("audio-field").hidden = !p.audio_setting;
  if (p.audio_setting) fillSelect(byId("audio-setting"), p.audio_setting.choices, p.audio_setting.default);
  byId("prompt").required = model.prompt_required;
  showPreviews();
}

function showPreviews() {
  const model = currentModel();
  const items = [];
  for (const type of ["first_frame", "reference_image"]) {
    if (!model || !mediaOf(model, type)) continue;
    for (const file of byId(INPUTS[type]).files) {
      const url = URL.createObjectURL(file);
      const img = el("img", { src: url, alt: `${type.replace("_", " ")}: ${file.name}` });
      img.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
      items.push(el("figure", {}, img, el("figcaption", {}, file.name)));
    }
  }
  byId("previews").replaceChildren(...items);
}

async function loadSample() {
  const blob = await (await fetch(SAMPLE_URL)).blob();
  const files = new DataTransfer();
  files.items.add(new File([blob], "sample.jpg", { type: "image/jpeg" }));
  const input = byId("first-frame");
  input.files = files.files;
  input.dispatchEvent(new Event("change", { bubbles: true }));
}

/** The chosen files in the order they are sent, each with its media spec and its input. */
function chosenMedia(model) {
  const chosen = [];
  for (const type of MEDIA_ORDER) {
    const spec = mediaOf(model, type);
    if (!spec) continue;
    const input = byId(INPUTS[type]);
    for (const file of input.files) chosen.push({ type, file, spec, input });
  }
  return chosen;
}

/** The first broken rule, in the API's order and words ({message, input}), or null. */
async function firstBrokenRule(model, chosen) {
  if (model.prompt_required && !byId("prompt").value.trim()) {
    return { message: `input.prompt is required for ${model.family} models.`, input: byId("prompt") };
  }
  for (const spec of model.media) {
    const count = chosen.filter((c) => c.type === spec.type).length;
    const message = countMessage(model.family, spec.type, spec.min, spec.max, count);
    if (message) return { message, input: byId(INPUTS[spec.type]) };
  }
  for (const [index, item] of chosen.entries()) {
    const where = `input.media[${index}] (${item.type})`;
    const check = item.spec.rule.kind === "video" ? checkVideo : checkImage;
    const message = await check(item.file, item.spec.rule, where);
    if (message) return { message, input: item.input };
  }
  return null;
}

function parameters(model) {
  const p = model.parameters;
  const params = { resolution: byId("resolution").value, watermark: byId("watermark").checked };
  if (p.duration) params.duration = Number(byId("duration").value);
  if (p.ratio) params.ratio = byId("ratio").value;
  if (p.audio_setting) params.audio_setting = byId("audio-setting").value;
  const seed = byId("seed").value.trim();
  if (seed !== "") params.seed = Number(seed);
  return params;
}

async function generate(event) {
  event.preventDefault();
  const model = currentModel();
  if (!state.client || !model) {
    showError(state.client ? byId("model-help").textContent : "InvalidApiKey: No API-key provided.");
    byId("api-key").focus();
    return;
  }
  for (const input of document.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const chosen = chosenMedia(model);
  const broken = await firstBrokenRule(model, chosen);
  if (broken) {
    showError(`InvalidParameter: ${broken.message}`);
    broken.input.setAttribute("aria-invalid", "true");
    broken.input.focus();
    return;
  }
  showError("");
  const button = byId("generate-button");
  button.disabled = true;
  try {
    setStatus(chosen.length ? "Uploading…" : "Submitting…");
    const media = [];
    for (const item of chosen) media.push({ type: item.type, url: await state.client.upload(item.file, model.name) });
    const body = { model: model.name, input: { prompt: byId("prompt").value, media }, parameters: parameters(model) };
    const created = await state.client.create(model.endpoint, body, { oss: media.length > 0 });
    watch(created.output.task_id);
    tasks.refresh();
  } catch (error) {
    setStatus("Not submitted.");
    showError(describeError(error));
  } finally {
    button.disabled = false;
  }
}

// -- watching one task -------------------------------------------------------------------------

function setStatus(...parts) {
  byId("task-status").replaceChildren(...parts);
}

function showProgress(progress) {
  const bar = byId("task-progress");
  bar.hidden = !progress;
  if (progress) {
    bar.max = progress.total_steps;
    bar.value = progress.step;
  }
}

function watch(taskId) {
  state.watching = taskId;
  byId("result").hidden = true;
  byId("result-video").removeAttribute("src");
  showProgress(null);
  setStatus(el("strong", {}, "PENDING"), ` task ${taskId}`);
  poll(taskId, state.client);
}

async function poll(taskId, client) {
  if (state.watching !== taskId) return;
  let output;
  try {
    output = (await client.task(taskId)).output;
  } catch (error) {
    setStatus(`Could not read task ${taskId}: ${describeError(error)}`);
    setTimeout(() => poll(taskId, client), POLL_MS * 4);
    return;
  }
  if (state.watching !== taskId) return;
  const status = output.task_status;
  const progress = output.progress || null;
  if (status === "PENDING" || status === "RUNNING") {
    const step = progress ? ` step ${progress.step} of ${progress.total_steps}` : "";
    setStatus(el("strong", {}, status), step, ` task ${taskId}`);
    showProgress(status === "RUNNING" ? progress : null);
    setTimeout(() => poll(taskId, client), POLL_MS);
    return;
  }
  showProgress(null);
  if (status === "SUCCEEDED") {
    setStatus(el("strong", {}, "SUCCEEDED"), ` task ${taskId}`);
    byId("result-video").src = output.video_url;
    byId("download-link").href = output.video_url;
    byId("result").hidden = false;
  } else if (status === "FAILED") {
    setStatus(el("strong", {}, "FAILED"), ` ${output.code}: ${output.message}`);
  } else {
    setStatus(el("strong", {}, status), ` task ${taskId}`);
  }
  tasks.refresh();
}

// -- start -------------------------------------------------------------------------------------

function start() {
  const keyInput = byId("api-key");
  const key = keyFromFragment() || localStorage.getItem(KEY_STORAGE) || "";
  keyInput.value = key;
  byId("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = keyInput.value.trim();
    if (value) useKey(value);
  });
  byId("model").addEventListener("change", showModel);
  byId("generate-form").addEventListener("submit", generate);
  byId("sample-button").addEventListener("click", loadSample);
  for (const id of Object.values(INPUTS)) byId(id).addEventListener("change", showPreviews);
  if (key) useKey(key);
}

start();
