// The API tokens page: "Copy" puts a just-created token on the clipboard. Where the Clipboard
// API is missing (plain http, old browsers) the token is selected so Ctrl+C copies it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-copy-target]")) {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copyTarget || "");
      const status = document.getElementById(button.dataset.copyStatus || "");
      if (!(input instanceof HTMLInputElement)) {
        return;
      }
      let message;
      try {
        await navigator.clipboard.writeText(input.value);
        message = "Copied to the clipboard.";
      } catch {
        input.focus();
        input.select();
        message = "Selected: press Ctrl+C (⌘C) to copy.";
      }
      if (status) {
        status.textContent = message;
      }
    });
  }
});
