// The /review inbox from the keyboard: Enter confirms, j/→ skips to the next document, k/←
// goes back, 1-9 take a suggestion into the form, a takes them all. Every key only clicks or
// fills what the page offers without JavaScript. Loaded as a file with the page's CSP nonce.
"use strict";

(() => {
  const form = document.getElementById("review-form");
  if (!form) return;
  const suggestions = Array.from(document.querySelectorAll("[data-suggest-field]"));

  // A suggestion fills its field: the type or correspondent is chosen, a tag is ticked.
  const take = (button) => {
    const value = button.dataset.suggestValue;
    if (!value) return; // its entry no longer exists
    const field = button.dataset.suggestField;
    if (field === "tags") {
      const box = form.querySelector(`input[name="tags"][value="${CSS.escape(value)}"]`);
      if (box) box.checked = true;
    } else {
      const select = form.querySelector(`select[name="${field}"]`);
      if (select) select.value = value;
    }
    button.setAttribute("aria-pressed", "true");
  };
  suggestions.forEach((button) => button.addEventListener("click", () => take(button)));

  const follow = (id) => {
    const link = document.getElementById(id);
    if (link) window.location.assign(link.href);
  };

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || event.isComposing) return;
    const target = event.target;
    const typing = target instanceof HTMLElement
      && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
    if (event.key === "Enter") {
      // In a text field Enter submits the form anyway; on a button it presses that button.
      if (typing || (target instanceof HTMLElement && ["BUTTON", "A"].includes(target.tagName))) return;
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (typing) return;
    if (event.key === "j" || event.key === "ArrowRight") follow("review-next");
    else if (event.key === "k" || event.key === "ArrowLeft") follow("review-previous");
    else if (event.key === "a") suggestions.forEach(take);
    else if (/^[1-9]$/.test(event.key) && suggestions[Number(event.key) - 1]) take(suggestions[Number(event.key) - 1]);
    else return;
    event.preventDefault();
  });
})();
