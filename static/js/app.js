// Progressive enhancement for every page. Loaded as a file with the page's CSP nonce, in the
// head and not deferred, so the "js" class is set before the first paint:
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

// Disclosure buttons (<button data-disclosure aria-controls="id">): the header's "Menu" and
// the files list's "Filters" on narrow screens. CSS hides the controlled element on a phone
// until it is "is-open"; without the script nothing is hidden.
document.addEventListener("click", (event) => {
  const toggle = event.target instanceof Element && event.target.closest("button[data-disclosure]");
  const target = toggle && document.getElementById(toggle.getAttribute("aria-controls") || "");
  if (!target) {
    return;
  }
  const open = target.classList.toggle("is-open");
  toggle.setAttribute("aria-expanded", String(open));
});
