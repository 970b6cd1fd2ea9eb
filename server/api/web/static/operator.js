// The operators' view (admin keys): queue depth, ready workers, running jobs, recent failures.

import { byId, describeError, el } from "./dom.js";

const REFRESH_MS = 5000;

function rows(tbody, entries, empty) {
  const list = entries.length ? entries : [[empty, ""]];
  tbody.replaceChildren(...list.map(([a, b]) => el("tr", {}, el("td", {}, a), el("td", {}, b))));
}

export class OperatorPanel {
  constructor() {
    this.section = byId("operator");
    this.client = null;
    this.timer = null;
  }

  /** Show and poll the panel for an admin key; hide it for any other. */
  use(client, admin) {
    clearTimeout(this.timer);
    this.client = admin ? client : null;
    this.section.hidden = !admin;
    if (admin) this.refresh();
  }

  async refresh() {
    clearTimeout(this.timer);
    const client = this.client;
    if (!client) return;
    try {
      this.render(await client.operator());
    } catch (error) {
      byId("op-depth").textContent = describeError(error);
    }
    if (client === this.client) this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
  }

  render(view) {
    byId("op-depth").textContent = String(view.queue_depth);
    byId("op-workers").textContent = String(view.workers_ready);
    byId("op-running-total").textContent = String(view.running_total);
    rows(byId("op-running"), Object.entries(view.running).map(([m, n]) => [m, String(n)]), "none running");
    rows(byId("op-failures"), Object.entries(view.failures.by_code).map(([c, n]) => [c, String(n)]), "no failures");
    rows(byId("op-worker-list"), view.workers.map((w) => [w.name, w.models.join(", ")]), "no worker ready");
  }
}
