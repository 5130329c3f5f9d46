// The /files list, as a table or a grid: live status of documents in progress (from the light
// /files/status route, the one the upload page polls too), the queue banner, select-all, and a
// confirmation before a bulk move to the trash. Loaded as a file with the page's CSP nonce.
"use strict";

(() => {
  // The table or the grid, whichever the page shows: both mark each document and its badge.
  const table = document.querySelector("[data-status-url]");
  const banner = document.getElementById("queue-banner");
  const form = document.getElementById("bulk-form");
  const POLL_MS = 2000;

  // The trash button of the bulk form asks first; app.js does this for whole forms only.
  if (form) {
    form.addEventListener("submit", (event) => {
      const button = event.submitter;
      if (button && button.dataset.confirmAction && !window.confirm(button.dataset.confirmAction)) {
        event.preventDefault();
      }
    });
  }

  const selectAll = document.getElementById("select-all");
  if (selectAll && form) {
    selectAll.classList.remove("hidden");
    const boxes = () => Array.from(form.querySelectorAll('input[name="ids"]'));
    selectAll.addEventListener("change", () => {
      boxes().forEach((box) => { box.checked = selectAll.checked; });
    });
    form.addEventListener("change", (event) => {
      if (event.target !== selectAll) selectAll.checked = boxes().every((box) => box.checked);
    });
  }

  if (!table) return;
  const inProgress = new Set((table.dataset.inProgress || "").split(","));

  const pendingIds = () =>
    Array.from(table.querySelectorAll("[data-document-id]"))
      .filter((row) => inProgress.has(row.querySelector(".status-badge").dataset.status))
      .map((row) => row.dataset.documentId);

  const showQueue = (queue) => {
    if (!banner || !queue) return;
    banner.querySelector('[data-queue="pending"]').textContent = queue.pending;
    banner.querySelector('[data-queue="processing"]').textContent = queue.processing;
    banner.classList.toggle("hidden", !queue.pending && !queue.processing);
  };

  const poll = async () => {
    const ids = pendingIds();
    if (!ids.length) return false;
    // A hidden tab asks nothing; it catches up when it is shown again.
    if (document.visibilityState === "hidden") return true;
    try {
      const response = await fetch(`${table.dataset.statusUrl}?ids=${ids.join(",")}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      // A lapsed session answers with the login page: stop quietly, a reload will log in.
      if (!response.ok || !(response.headers.get("Content-Type") || "").includes("json")) return false;
      const answer = await response.json();
      for (const item of answer.documents) {
        const badge = table.querySelector(`[data-document-id="${item.id}"] .status-badge`);
        if (!badge) continue;
        // The badge's colour follows data-status (static/src/app.css); a running step is named.
        const text = item.step ? `${item.label}: ${item.step.replace(/_/g, " ")}` : item.label;
        const picture = badge.closest("[data-document-id]").querySelector(".thumbnail img");
        if (picture && item.status !== badge.dataset.status && !inProgress.has(item.status)) {
          // Finished: ask for its picture again, past the placeholder the browser keeps.
          picture.src = `${picture.src.split("?")[0]}?v=${Date.now()}`;
        }
        badge.dataset.status = item.status;
        if (badge.textContent !== text) badge.textContent = text;
      }
      showQueue(answer.queue);
    } catch (error) {
      // The server may be restarting; keep trying at the same pace.
    }
    return true;
  };

  const loop = async () => {
    if (await poll()) window.setTimeout(loop, POLL_MS);
  };
  window.setTimeout(loop, POLL_MS);
})();
