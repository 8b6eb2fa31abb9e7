// The article form's live preview: beside each Markdown body, the article rendered by
// the server (the same Markdown and sanitising pipeline as the archive and the email)
// as the analyst types, as the web page, the email's HTML or its plain text; a word
// count; and a warning before leaving the page with unsaved changes.
//
// Each rendering is a sandboxed document of its own (its own Content-Security-Policy):
// a hidden form posts the text into a fresh sandboxed frame, which replaces the shown
// one once loaded. A fresh frame each time keeps the page's history clean.
"use strict";

(function () {
  const DELAY_MS = 400;
  const MODES = [
    ["web", "Web page"],
    ["email", "Email (HTML)"],
    ["text", "Email (plain text)"],
  ];
  let panels = 0;
  let dirty = false;
  let leaving = false; // the form is being saved: no rendering may start now

  function words(markdown) {
    const text = markdown
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links and images: their text only
      .replace(/[#*_`>~|\\-]+/g, " ");
    const found = text.match(/[\p{L}\p{N}][\p{L}\p{N}'’.,]*/gu);
    return found ? found.length : 0;
  }

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function field(form, name, value) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }

  function headlineFor(textarea) {
    const name = textarea.name.replace(/-body$/, "-headline");
    const input = textarea.form && textarea.form.elements.namedItem(name);
    return input && input.value ? input.value : "";
  }

  function attach(textarea) {
    if (textarea.dataset.previewAttached || textarea.name.includes("__prefix__")) {
      return;
    }
    textarea.dataset.previewAttached = "1";
    const n = ++panels;
    const row = textarea.closest(".inline-related");
    const saved = row ? row.querySelector(".field-preview") : null;
    const oldFrame = saved ? saved.querySelector("iframe.article-preview") : null;

    const desk = document.createElement("div");
    desk.className = "markdown-desk";
    textarea.parentNode.insertBefore(desk, textarea);
    desk.appendChild(textarea);

    const panel = document.createElement("section");
    panel.className = "live-preview";
    panel.setAttribute("aria-labelledby", `live-preview-title-${n}`);
    const title = document.createElement("h3");
    title.id = `live-preview-title-${n}`;
    title.className = "live-preview-title";
    title.textContent = "Preview";
    panel.appendChild(title);

    const modes = document.createElement("fieldset");
    modes.className = "live-preview-modes";
    const legend = document.createElement("legend");
    legend.textContent = "Show the article as";
    modes.appendChild(legend);
    MODES.forEach(([value, label], index) => {
      const id = `live-preview-${n}-${value}`;
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = `live-preview-mode-${n}`;
      radio.value = value;
      radio.id = id;
      radio.checked = index === 0;
      radio.dataset.previewControl = "1";
      const text = document.createElement("label");
      text.htmlFor = id;
      text.textContent = label;
      modes.append(radio, text);
    });
    panel.appendChild(modes);

    const status = document.createElement("p");
    status.className = "live-preview-status";
    const count = document.createElement("output");
    count.className = "live-preview-words";
    count.setAttribute("aria-live", "polite");
    const state = document.createElement("span");
    state.className = "live-preview-state";
    status.append(count, " · ", state);
    panel.appendChild(status);

    let frame = oldFrame || document.createElement("iframe");
    frame.className = "article-preview";
    frame.setAttribute("sandbox", "");
    frame.title = "The article, rendered";
    panel.appendChild(frame);
    desk.appendChild(panel);
    if (saved) {
      saved.hidden = true;
    }

    let timer = null;
    let sent = 0;

    function showCount() {
      const n = words(textarea.value);
      count.value = `${n} word${n === 1 ? "" : "s"}`;
    }

    function render() {
      if (leaving) {
        return;
      }
      const name = `live-preview-frame-${n}-${++sent}`;
      const next = document.createElement("iframe");
      next.className = "article-preview";
      next.setAttribute("sandbox", "");
      next.name = name;
      next.title = frame.title;
      next.hidden = true;
      panel.appendChild(next);

      const form = document.createElement("form");
      form.method = "post";
      form.action = textarea.dataset.previewUrl;
      form.target = name;
      form.hidden = true;
      field(form, "csrfmiddlewaretoken", csrfToken());
      field(form, "text", textarea.value);
      field(form, "headline", headlineFor(textarea));
      field(form, "issue", textarea.dataset.previewIssue || "");
      field(form, "mode", modes.querySelector("input:checked").value);
      document.body.appendChild(form);

      const started = performance.now();
      const number = sent;
      state.textContent = "Updating…";
      next.addEventListener("load", () => {
        form.remove();
        if (number !== sent) {
          next.remove(); // a newer rendering is on its way
          return;
        }
        next.hidden = false;
        frame.remove();
        frame = next;
        panel.dataset.roundTripMs = String(Math.round(performance.now() - started));
        panel.dataset.renderings = String(number);
        state.textContent = "Up to date, not saved";
      });
      form.submit();
    }

    textarea.addEventListener("input", () => {
      showCount();
      clearTimeout(timer);
      timer = setTimeout(render, DELAY_MS);
    });
    modes.addEventListener("change", render);
    showCount();
    state.textContent = oldFrame ? "As saved" : "Type to see it rendered";
    if (!oldFrame && textarea.value) {
      render();
    }
  }

  function attachAll(root) {
    root.querySelectorAll("textarea[data-preview-url]").forEach(attach);
  }

  document.addEventListener("DOMContentLoaded", () => {
    attachAll(document);
    const form = document.getElementById("issue_form");
    if (!form) {
      return;
    }
    form.addEventListener("input", (event) => {
      if (!event.target.dataset.previewControl) {
        dirty = true;
      }
    });
    form.addEventListener("change", (event) => {
      if (!event.target.dataset.previewControl) {
        dirty = true;
      }
    });
    form.addEventListener("submit", () => {
      dirty = false;
      leaving = true;
    });
    // A new inline article ("Add another Article"): Django's admin dispatches this.
    document.addEventListener("formset:added", (event) => {
      attachAll(event.target);
      dirty = true;
    });
    window.addEventListener("beforeunload", (event) => {
      if (dirty) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  });
})();
