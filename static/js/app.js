// Progressive enhancement for every page. Loaded as a file with the page's CSP nonce:
// pages carry no inline scripts or on* handlers, so a strict Content-Security-Policy holds.
"use strict";

document.documentElement.classList.add("js");

// <form data-confirm="Delete this document?"> asks before it submits.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
