// The bulk edit progress page: asks the operation's small status route every two seconds
// while it runs and shows done/total and the refusals. Loaded as a file with the CSP nonce.
"use strict";

(() => {
  const section = document.getElementById("bulk-progress");
  if (!section || !section.hasAttribute("data-running")) return;
  const POLL_MS = 2000;
  const bar = section.querySelector("progress");
  const badge = section.querySelector(".status-badge");
  const field = (name) => section.querySelector(`[data-field="${name}"]`);
  const list = section.querySelector("[data-errors]");
  const errorsTitle = section.querySelector("[data-errors-title]");

  const show = (state) => {
    bar.max = state.total;
    bar.value = state.done;
    for (const name of ["done", "total", "failed"]) field(name).textContent = String(state[name]);
    if (badge) {
      badge.dataset.status = state.status;
      badge.textContent = state.label;
    }
    const detail = field("detail");
    detail.textContent = state.detail;
    detail.classList.toggle("hidden", !state.detail);
    errorsTitle.classList.toggle("hidden", state.errors.length === 0);
    list.replaceChildren(
      ...state.errors.map((error) => {
        const item = document.createElement("li");
        const link = document.createElement("a");
        link.href = `/files/${error.document_id}`;
        link.textContent = `Document ${error.document_id}`;
        item.append(link, `: ${error.detail}`);
        return item;
      }),
    );
    return state.status === "pending" || state.status === "running";
  };

  const poll = async () => {
    try {
      const response = await fetch(section.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok && !show(await response.json())) return;
    } catch (error) {
      // A network hiccup: the next round tries again.
    }
    window.setTimeout(poll, POLL_MS);
  };
  window.setTimeout(poll, POLL_MS);
})();
