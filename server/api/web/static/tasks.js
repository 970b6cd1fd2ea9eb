// The Tasks table: the key's recent tasks from the list API, refreshed while any is unfinished.

import { byId, describeError, el, localTime } from "./dom.js";

const PAGE_SIZE = 20;
const REFRESH_MS = 2000;
const UNFINISHED = new Set(["PENDING", "RUNNING"]);

export class TasksTable {
  constructor(onError) {
    this.client = null;
    this.body = byId("tasks-table").querySelector("tbody");
    this.empty = byId("tasks-empty");
    this.onError = onError;
    this.videoUrls = new Map(); // task id -> video_url, fetched once per SUCCEEDED task
    this.timer = null;
    this.loading = false;
    this.again = false;
  }

  /** Show `client`'s tasks (none for null): the previous key's rows go at once. */
  use(client) {
    this.client = client;
    this.videoUrls.clear();
    this.render([]);
    this.refresh();
  }

  /** Reload now; keep reloading every REFRESH_MS while a listed task is PENDING or RUNNING. */
  async refresh() {
    if (this.loading) {
      this.again = true; // one reload at a time: the one in flight is followed by one more
      return;
    }
    clearTimeout(this.timer);
    const client = this.client;
    if (!client) return;
    this.loading = true;
    let tasks = null;
    try {
      tasks = (await client.list(PAGE_SIZE)).data;
      await this.fetchVideoUrls(client, tasks);
    } catch (error) {
      this.onError(describeError(error));
    } finally {
      this.loading = false;
    }
    if (this.again) {
      this.again = false;
      this.refresh();
      return;
    }
    if (client !== this.client) return; // the key changed meanwhile
    if (tasks) this.render(tasks);
    if (tasks && tasks.some((t) => UNFINISHED.has(t.status))) {
      this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
    }
  }

  async fetchVideoUrls(client, tasks) {
    const missing = tasks.filter((t) => t.status === "SUCCEEDED" && !this.videoUrls.has(t.task_id));
    await Promise.all(
      missing.map(async (t) => {
        try {
          const url = (await client.task(t.task_id)).output.video_url;
          if (url) this.videoUrls.set(t.task_id, url);
        } catch {
          // Shown without a link this time; the next refresh tries again.
        }
      }),
    );
  }

  render(tasks) {
    this.body.replaceChildren(...tasks.map((t) => this.row(t)));
    this.empty.hidden = tasks.length > 0;
  }

  row(task) {
    const id = task.task_id;
    return el(
      "tr",
      { "data-task-id": id, "data-status": task.status },
      el("td", {}, el("code", { title: id }, id.slice(0, 8))),
      el("td", {}, el("span", { class: `badge ${task.status.toLowerCase()}` }, task.status)),
      el("td", {}, task.model_name),
      el("td", {}, localTime(task.gmt_create)),
      el("td", {}, localTime(task.end_time)),
      el("td", {}, this.result(task)),
      el("td", {}, this.action(task)),
    );
  }

  result(task) {
    const url = this.videoUrls.get(task.task_id);
    if (task.status === "SUCCEEDED" && url) {
      return el("a", { href: url, target: "_blank", rel: "noopener", "aria-label": `Video of task ${task.task_id}` }, "Video");
    }
    return task.status === "SUCCEEDED" ? "…" : "–";
  }

  action(task) {
    if (task.status !== "PENDING") return null;
    const button = el("button", { type: "button", class: "secondary", "aria-label": `Cancel task ${task.task_id}` }, "Cancel");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await this.client.cancel(task.task_id);
      } catch (error) {
        this.onError(describeError(error));
      }
      this.refresh();
    });
    return button;
  }
}
