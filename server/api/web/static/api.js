// The public DashScope API of this server, called with the user's key: the calls the SDK makes.

const API = "/api/v1";
const CREATE_PATHS = {
  "video-generation": `${API}/services/aigc/video-generation/video-synthesis`,
  image2video: `${API}/services/aigc/image2video/video-synthesis`,
};

/** A DashScope error answer: `code` and `message` as the server sent them. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function answer(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const code = body && body.code ? body.code : `HTTP ${response.status}`;
    const message = body && body.message ? body.message : response.statusText;
    throw new ApiError(response.status, code, message);
  }
  return body;
}

/** A file name an upload key may carry: letters, digits, dot, dash and underscore. */
function safeName(name) {
  const cleaned = (name || "file").replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[._]+/, "");
  return cleaned || "file";
}

export class Client {
  constructor(key) {
    this.key = key;
  }

  async call(method, path, { body, headers = {} } = {}) {
    const init = { method, headers: { Authorization: `Bearer ${this.key}`, ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return answer(await fetch(path, init));
  }

  /** The models this key may use, with their parameters and media rules. */
  models() {
    return this.call("GET", "/web/models");
  }

  /** The operators' snapshot (admin keys only). */
  operator() {
    return this.call("GET", "/web/operator");
  }

  /** Submit a task; `oss` adds the header that lets the server resolve oss:// uploads. */
  create(endpoint, body, { oss = false } = {}) {
    const headers = { "X-DashScope-Async": "enable" };
    if (oss) headers["X-DashScope-OssResourceResolve"] = "enable";
    return this.call("POST", CREATE_PATHS[endpoint] || CREATE_PATHS["video-generation"], { body, headers });
  }

  task(taskId) {
    return this.call("GET", `${API}/tasks/${encodeURIComponent(taskId)}`);
  }

  list(pageSize) {
    return this.call("GET", `${API}/tasks?page_no=1&page_size=${pageSize}`);
  }

  cancel(taskId) {
    return this.call("POST", `${API}/tasks/${encodeURIComponent(taskId)}/cancel`);
  }

  /**
   * The SDK's temporary upload (API.md §5): getPolicy, then the signed multipart form to the
   * policy's upload host (no Authorization there: the signature is the credential).
   * Returns the oss:// URL to send as the media URL.
   */
  async upload(file, model) {
    const policy = (await this.call("GET", `${API}/uploads?action=getPolicy&model=${encodeURIComponent(model)}`)).data;
    const key = `${policy.upload_dir}/${safeName(file.name)}`;
    const form = new FormData();
    form.append("OSSAccessKeyId", policy.oss_access_key_id);
    form.append("Signature", policy.signature);
    form.append("policy", policy.policy);
    form.append("key", key);
    form.append("x-oss-object-acl", policy.x_oss_object_acl);
    form.append("x-oss-forbid-overwrite", policy.x_oss_forbid_overwrite);
    form.append("success_action_status", "200");
    form.append("x-oss-content-type", file.type || "application/octet-stream");
    form.append("file", file, safeName(file.name));
    await answer(await fetch(policy.upload_host, { method: "POST", body: form }));
    return `oss://${key}`;
  }
}
