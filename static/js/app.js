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

// The header's "Menu" button on narrow screens: CSS hides the menu until it is "is-open".
document.addEventListener("DOMContentLoaded", () => {
  const toggle = document.querySelector(".nav-toggle");
  const nav = toggle && document.getElementById(toggle.getAttribute("aria-controls") || "");
  if (!toggle || !nav) {
    return;
  }
  toggle.addEventListener("click", () => {
    const open = nav.classList.toggle("is-open");
    toggle.setAttribute("aria-expanded", String(open));
  });
});
