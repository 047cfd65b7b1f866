// rpt's web app: live updates from the API's event stream (/api/v1/events, sent with
// the session cookie). No build step, no library. Pages work without it; with it, the
// job list and a job's page follow the queue without a reload.
"use strict";

(function () {
  const terminal = new Set(["succeeded", "failed", "cancelled"]);

  function fmtElapsed(ms) {
    if (ms < 0) ms = 0;
    let s = Math.round(ms / 1000), out = "";
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (h) out += h + "h";
    if (h || m) out += m + "m";
    return out + s + "s";
  }

  // Times in the plant's zone (the page's data-zone), as the server writes them:
  // 2026-01-31 06:00:00 EST.
  const zone = document.body.dataset.zone || undefined;
  const fmt = new Intl.DateTimeFormat("sv-SE", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZoneName: "short" });
  function when(iso) { return fmt.format(new Date(iso)); }

  function setState(text) {
    const el = document.getElementById("live-state");
    if (el) el.textContent = text;
  }

  // The job list: rows change in place; a new job's row is fetched and put on top.
  function liveList(table) {
    const report = table.dataset.liveJobs;
    const tbody = table.tBodies[0];
    const url = "/api/v1/events" + (report ? "?report=" + encodeURIComponent(report) : "");
    const es = new EventSource(url);
    es.onopen = () => setState("Live updates: on");
    es.onerror = () => setState("Live updates: reconnecting…");
    es.onmessage = async (m) => {
      const e = JSON.parse(m.data);
      let row = tbody.querySelector('tr[data-job="' + e.id + '"]');
      if (!row) {
        const res = await fetch("/jobs/" + e.id + "/row", { credentials: "same-origin" });
        if (!res.ok) return;
        const t = document.createElement("tbody");
        t.innerHTML = (await res.text()).trim();
        row = t.firstElementChild;
        if (!row || tbody.querySelector('tr[data-job="' + e.id + '"]')) return;
        tbody.insertBefore(row, tbody.firstElementChild);
        return; // fetched after the event: it shows the job as it is now
      }
      const st = row.querySelector('[data-field="status"]');
      st.textContent = e.status;
      st.className = "status s-" + e.status;
      row.querySelector('[data-field="rows"]').textContent = e.rows;
      if (e.agent) row.querySelector('[data-field="agent"]').textContent = e.agent;
      if (e.event === "running") row.dataset.started = e.at;
      if (terminal.has(e.status)) row.dataset.finished = e.at;
      if (e.status === "queued") { row.dataset.started = ""; row.dataset.finished = ""; }
      tick(row);
    };
    setInterval(() => tbody.querySelectorAll("tr[data-job]").forEach(tick), 1000);
  }

  function tick(row) {
    const s = row.dataset.started, f = row.dataset.finished;
    const cell = row.querySelector('[data-field="elapsed"]');
    if (!cell) return;
    if (!s) { cell.textContent = ""; return; }
    cell.textContent = fmtElapsed((f ? Date.parse(f) : Date.now()) - Date.parse(s));
  }

  // A job's page: events are appended; a change of status re-reads the page and swaps
  // its live parts (summary, actions, result) in place.
  function liveJob(box) {
    const id = box.dataset.liveJob;
    const es = new EventSource("/api/v1/events?job=" + id + "&after=" + box.dataset.after);
    const list = document.getElementById("events");
    let refreshing = false, again = false;
    function schedule() {
      if (refreshing) { again = true; return; }
      refreshing = true;
      refresh().finally(() => { refreshing = false; if (again) { again = false; schedule(); } });
    }
    es.onmessage = (m) => {
      const e = JSON.parse(m.data);
      if (list.querySelector('li[data-seq="' + e.seq + '"]')) return;
      const li = document.createElement("li");
      li.dataset.seq = e.seq;
      const t = document.createElement("time");
      t.dateTime = e.at;
      t.textContent = when(e.at);
      const strong = document.createElement("strong");
      strong.textContent = e.event;
      li.append(t, " ", strong, " " + e.status + (e.agent ? " on " + e.agent : "") +
        (e.rows ? " · " + e.rows + " rows" : "") + (e.by ? " · by " + e.by : "") + (e.error ? " · " + e.error : ""));
      list.append(li);
      const status = document.getElementById("status");
      status.textContent = e.status;
      status.className = "status s-" + e.status;
      document.getElementById("rows").textContent = e.rows;
      if (e.event !== "progress") schedule();
      if (terminal.has(e.status)) es.close();
    };
    async function refresh() {
      const res = await fetch(location.pathname, { credentials: "same-origin" });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      for (const part of ["summary", "actions", "result"]) {
        const now = doc.getElementById(part), here = document.getElementById(part);
        if (now && here) here.replaceWith(now);
      }
    }
  }

  // A login link (rpt server prints one) carries the token after '#', which the
  // browser never sends: fill the form from it, drop it from the address, log in.
  function loginLink() {
    const m = /^#token=(rpt_[A-Za-z0-9_-]+)$/.exec(location.hash);
    const input = document.getElementById("token");
    if (!m || !input) return;
    history.replaceState(null, "", location.pathname + location.search);
    input.value = m[1];
    input.form.submit();
  }

  document.addEventListener("DOMContentLoaded", () => {
    loginLink();
    const table = document.querySelector("[data-live-jobs]");
    if (table) liveList(table);
    const job = document.querySelector("[data-live-job]");
    if (job) liveJob(job);
  });
})();
