// The upload page: files, folders and addresses go straight to the upload API, one row each
// with a progress bar for the bytes sent and then for the processing steps. Progress comes
// from the light status route (/files/status: status, running step, progress), asked once
// per round for all rows, not each document's whole detail once per row.
// Loaded as a file with the page's CSP nonce: no inline script, no on* attributes.
"use strict";

(() => {
  const root = document.getElementById("upload");
  if (!root) return;

  // Three at a time keeps a folder of hundreds of files from opening hundreds of connections,
  // and the first results show up while the rest are still waiting.
  const CONCURRENCY = 3;
  const POLL_MS = 1500;
  // Processing a long scan takes minutes; after a while, ask less often.
  const SLOW_POLL_MS = 5000;
  const SLOW_AFTER_MS = 60000;
  // Folders carry files no one means to file as documents.
  const IGNORED_IN_FOLDERS = new Set([".ds_store", "thumbs.db", "desktop.ini"]);

  const config = {
    uploadUrl: root.dataset.uploadUrl,
    processUrl: root.dataset.processUrl,
    statusUrl: root.dataset.statusUrl,
    // The route answers for at most this many ids; more rows are asked in several batches.
    statusLimit: Number(root.dataset.statusLimit) || 100,
    filePage: root.dataset.filePage,
    maxSize: Number(root.dataset.maxSize) || Infinity,
    maxSizeText: root.dataset.maxSizeText,
  };
  const csrfToken = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const dropZone = document.getElementById("drop-zone");
  const list = document.getElementById("upload-list");
  const empty = document.getElementById("upload-empty");
  const announcer = document.getElementById("upload-announcer");
  const rowTemplate = document.getElementById("upload-row");

  const waiting = [];
  let sending = 0;

  // --- Rows ----------------------------------------------------------------------------------

  function formatSize(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    const units = ["KB", "MB", "GB", "TB"];
    let value = bytes / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
  }

  function addRow(name, size) {
    const item = rowTemplate.content.firstElementChild.cloneNode(true);
    const row = {
      name,
      item,
      progress: item.querySelector(".upload-progress"),
      status: item.querySelector(".upload-status"),
    };
    item.querySelector(".upload-name").textContent = name;
    item.querySelector(".upload-size").textContent = size === null ? "" : formatSize(size);
    row.progress.setAttribute("aria-label", `Progress of ${name}`);
    empty.hidden = true;
    list.append(item);
    return row;
  }

  // Sets the row's state (its colour) and its status line: plain text, then an optional link.
  function show(row, state, text, link) {
    row.item.dataset.state = state;
    row.status.replaceChildren(text);
    if (link) {
      const anchor = document.createElement("a");
      anchor.href = link.href;
      anchor.textContent = link.text;
      row.status.append(" ", anchor);
    }
    if (state === "completed" || state === "duplicate" || state === "error") {
      announcer.textContent = `${row.name}: ${text}${link ? ` ${link.text}` : ""}`;
    }
  }

  function setProgress(row, fraction) {
    if (fraction === null) {
      // Without a value the bar is indeterminate: the server is busy, the amount unknown.
      row.progress.removeAttribute("value");
    } else {
      row.progress.value = Math.round(Math.min(1, Math.max(0, fraction)) * 100);
    }
  }

  // --- Answers -------------------------------------------------------------------------------

  function detailOf(body) {
    return body && typeof body.detail === "string" ? body.detail : "";
  }

  // What the API said about one file, in the row: queued (then polled), duplicate, or refused.
  function handleAnswer(row, httpStatus, body) {
    if (httpStatus >= 200 && httpStatus < 300 && body && body.status === "duplicate" && body.duplicate_of) {
      setProgress(row, 1);
      const original = body.duplicate_of;
      show(row, "duplicate", "Already uploaded:", {
        href: `${config.filePage}${original.original_file_id}`,
        text: original.original_filename || `document ${original.original_file_id}`,
      });
      return;
    }
    if (httpStatus >= 200 && httpStatus < 300 && body && body.document_id) {
      setProgress(row, 0);
      show(row, "processing", "Queued for processing.", {
        href: `${config.filePage}${body.document_id}`,
        text: "Open document",
      });
      track(row, body.document_id);
      return;
    }
    setProgress(row, 0);
    show(row, "error", refusal(httpStatus, detailOf(body)));
  }

  function refusal(httpStatus, detail) {
    switch (httpStatus) {
      case 0:
        return "The connection failed before the server answered. Check the network and try again.";
      case 400:
        return detail || "The server could not read this request.";
      case 401:
      case 403:
        return detail && httpStatus === 403 && /csrf/i.test(detail)
          ? "The page has expired. Reload it and try again."
          : "You are no longer logged in. Log in again in another tab, then retry.";
      case 408:
        return `Too slow: ${detail || "the other server did not answer in time."}`;
      case 413:
        return `Too large: ${detail || `the limit is ${config.maxSizeText}.`}`;
      case 415:
        return `Unsupported: ${detail || "this type of file cannot be processed."}`;
      case 429:
        return "Too many uploads at once. Wait a minute, then try again.";
      default:
        return detail || `The server could not take this file (HTTP ${httpStatus}). Try again later.`;
    }
  }

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch {
      // A proxy's HTML error page, for example: the HTTP status still says what happened.
      return null;
    }
  }

  // --- Processing progress -------------------------------------------------------------------

  // Documents being processed, by id: their row, and when they were sent.
  const tracked = new Map();
  let pollTimer = null;

  function track(row, documentId) {
    tracked.set(String(documentId), { row, documentId, started: Date.now() });
    schedulePoll();
  }

  function schedulePoll() {
    if (pollTimer !== null || !tracked.size) return;
    const newest = Math.max(...Array.from(tracked.values(), (entry) => entry.started));
    const delay = Date.now() - newest > SLOW_AFTER_MS ? SLOW_POLL_MS : POLL_MS;
    pollTimer = window.setTimeout(pollAll, delay);
  }

  async function askStatus(ids) {
    try {
      const response = await fetch(`${config.statusUrl}?ids=${ids.join(",")}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      // A lapsed session answers with the login page: no answer this round.
      if (!response.ok || !(response.headers.get("Content-Type") || "").includes("json")) return null;
      const body = parseJson(await response.text());
      return body && Array.isArray(body.documents) ? body.documents : null;
    } catch {
      // A dropped connection for a moment is no reason to give up on the documents.
      return null;
    }
  }

  async function pollAll() {
    pollTimer = null;
    const ids = Array.from(tracked.keys());
    for (let start = 0; start < ids.length; start += config.statusLimit) {
      const batch = ids.slice(start, start + config.statusLimit);
      const answers = await askStatus(batch);
      if (!answers) continue;
      const answered = new Set(answers.map((item) => String(item.id)));
      for (const id of batch) {
        if (answered.has(id)) continue;
        // Not among the documents this person may see any more: deleted in the meantime.
        show(tracked.get(id).row, "error", "This document is no longer there.");
        tracked.delete(id);
      }
      answers.forEach(showProgress);
    }
    schedulePoll();
  }

  function showProgress(item) {
    const id = String(item.id);
    const entry = tracked.get(id);
    if (!entry) return;
    const { row } = entry;
    const link = { href: `${config.filePage}${id}`, text: "Open document" };
    setProgress(row, Number(item.progress) || 0);
    switch (item.status) {
      case "completed":
        setProgress(row, 1);
        show(row, "completed", "Done.", link);
        tracked.delete(id);
        return;
      case "failed":
        show(row, "error", `Failed: ${item.error || "processing failed."}`, link);
        tracked.delete(id);
        return;
      case "duplicate":
        setProgress(row, 1);
        show(row, "duplicate", "An exact copy of a document uploaded before.", link);
        tracked.delete(id);
        return;
      case "processing":
        show(row, "processing", item.step ? `Processing: ${item.step.replace(/_/g, " ")}…` : "Processing…", link);
        return;
      default:
        show(row, "processing", "Queued, waiting for a worker…", link);
    }
  }

  // --- Sending -------------------------------------------------------------------------------

  function enqueue(file, displayName) {
    const row = addRow(displayName, file.size);
    if (file.size > config.maxSize) {
      // Refused here so a file that would be refused anyway is not sent first.
      show(row, "error", `Too large: the limit is ${config.maxSizeText}.`);
      return;
    }
    show(row, "queued", "Waiting to upload…");
    waiting.push({ file, row });
    pump();
  }

  function pump() {
    while (sending < CONCURRENCY && waiting.length) {
      const job = waiting.shift();
      sending += 1;
      send(job).finally(() => {
        sending -= 1;
        pump();
      });
    }
  }

  function send({ file, row }) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      const data = new FormData();
      data.append("file", file, file.name);
      xhr.open("POST", config.uploadUrl);
      xhr.setRequestHeader("X-CSRFToken", csrfToken);
      xhr.setRequestHeader("Accept", "application/json");
      // fetch() cannot report upload progress; XHR's upload events can.
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) setProgress(row, event.loaded / event.total);
      };
      xhr.upload.onload = () => {
        setProgress(row, null);
        show(row, "uploading", "Uploaded; the server is checking the file…");
      };
      xhr.onload = () => {
        handleAnswer(row, xhr.status, parseJson(xhr.responseText));
        resolve();
      };
      xhr.onerror = () => {
        handleAnswer(row, 0, null);
        resolve();
      };
      show(row, "uploading", "Uploading…");
      xhr.send(data);
    });
  }

  // --- Folders (drag and drop) ---------------------------------------------------------------

  function fileOf(entry) {
    return new Promise((resolve, reject) => entry.file(resolve, reject));
  }

  // readEntries answers in batches (about 100 in Chromium) until it answers an empty one.
  async function childrenOf(directory) {
    const reader = directory.createReader();
    const children = [];
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) return children;
      children.push(...batch);
    }
  }

  async function walk(entry, inFolder) {
    if (entry.isFile) {
      if (inFolder && (entry.name.startsWith(".") || IGNORED_IN_FOLDERS.has(entry.name.toLowerCase()))) return;
      try {
        const file = await fileOf(entry);
        enqueue(file, entry.fullPath.replace(/^\//, ""));
      } catch {
        show(addRow(entry.fullPath.replace(/^\//, ""), null), "error", "The browser could not read this file.");
      }
    } else if (entry.isDirectory) {
      for (const child of await childrenOf(entry)) await walk(child, true);
    }
  }

  function dropped(transfer) {
    const items = Array.from(transfer.items || []);
    if (items.length && typeof items[0].webkitGetAsEntry === "function") {
      // Entries must be taken now: the drop's item list is emptied once the event ends.
      // A file with no entry (dragged from some applications, or made by a script) is
      // taken as it is.
      const taken = items
        .filter((item) => item.kind === "file")
        .map((item) => ({ entry: item.webkitGetAsEntry(), file: item.getAsFile() }));
      for (const { entry, file } of taken) {
        if (entry) walk(entry, false);
        else if (file) enqueue(file, file.name);
      }
      return;
    }
    Array.from(transfer.files || []).forEach((file) => enqueue(file, file.name));
  }

  function carriesFiles(event) {
    return event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  }

  // The whole page takes the drop, so a file that misses the zone is uploaded instead of
  // being opened by the browser in place of this page (and its running uploads).
  let depth = 0;
  document.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    depth += 1;
    dropZone.dataset.dragover = "";
  });
  document.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) delete dropZone.dataset.dragover;
  });
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth = 0;
    delete dropZone.dataset.dragover;
    dropped(event.dataTransfer);
  });

  // --- Pickers and the address form ----------------------------------------------------------

  for (const input of [document.getElementById("upload-files"), document.getElementById("upload-folder")]) {
    input.addEventListener("change", () => {
      for (const file of Array.from(input.files)) {
        const name = file.webkitRelativePath || file.name;
        if (file.webkitRelativePath && (file.name.startsWith(".") || IGNORED_IN_FOLDERS.has(file.name.toLowerCase()))) {
          continue;
        }
        enqueue(file, name);
      }
      // Cleared so that choosing the same files again sends them again.
      input.value = "";
    });
  }

  // Without the script the form would post the files and show the API's JSON; with it, the
  // files go through the rows above.
  document.getElementById("upload-form").addEventListener("submit", (event) => event.preventDefault());

  const urlForm = document.getElementById("url-form");
  urlForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const url = urlForm.elements.url.value.trim();
    const filename = urlForm.elements.filename.value.trim();
    const row = addRow(filename || url, null);
    setProgress(row, null);
    show(row, "uploading", "Fetching the file…");
    urlForm.reset();
    let response;
    try {
      response = await fetch(config.processUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
        body: JSON.stringify(filename ? { url, filename } : { url }),
      });
    } catch {
      handleAnswer(row, 0, null);
      return;
    }
    handleAnswer(row, response.status, parseJson(await response.text()));
  });

  // Leaving the page would cut the uploads still running.
  window.addEventListener("beforeunload", (event) => {
    if (sending || waiting.length) event.preventDefault();
  });
})();
