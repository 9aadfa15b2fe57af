/**
 * DOM helpers. Every piece of record content reaches the page as a text node (never as HTML), so
 * a record holding "<script>" or markup is shown as the characters it is.
 */

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.append(child);
    else el.append(document.createTextNode(String(child)));
  }
}

let idCounter = 0;
export function uid(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** Say something to screen readers (polite), e.g. "42 prescriptions shown". */
export function announce(text) {
  const region = document.getElementById("status");
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = text;
  }, 30);
}

/** A labelled form field with a hint and an error slot wired by aria-describedby. */
export function field({ label, name, type = "text", hint, autocomplete, value, required = true, inputmode, autocapitalize, spellcheck }) {
  const id = uid(name);
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  const input = h("input", {
    id,
    name,
    type,
    autocomplete,
    required,
    inputmode,
    autocapitalize,
    spellcheck: spellcheck === undefined ? undefined : String(spellcheck),
    "aria-describedby": [hintId, errorId].filter(Boolean).join(" "),
  });
  if (value) input.value = value;
  const error = h("p", { id: errorId, class: "field-error", hidden: true });
  const wrapper = h("div", { class: "field" }, h("label", { for: id }, label), hint ? h("p", { id: hintId, class: "hint" }, hint) : null, input, error);
  return {
    wrapper,
    input,
    setError(message) {
      if (message) {
        error.textContent = message;
        error.hidden = false;
        input.setAttribute("aria-invalid", "true");
      } else {
        error.textContent = "";
        error.hidden = true;
        input.removeAttribute("aria-invalid");
      }
    },
  };
}

/** A message box at the top of a form; role=alert so it is read out when it appears. */
export function messageBox() {
  const box = h("div", { class: "message", role: "alert", hidden: true });
  return {
    el: box,
    show(text, kind = "error") {
      box.className = `message message-${kind}`;
      box.textContent = text;
      box.hidden = false;
    },
    clear() {
      box.textContent = "";
      box.hidden = true;
    },
  };
}

const DATE_FORMAT = new Intl.DateTimeFormat("en-US", { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
const DATE_TIME_FORMAT = new Intl.DateTimeFormat("en-US", { year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });

/** "2026-01-02" → "Jan 2, 2026"; other strings unchanged. */
export function formatDate(value) {
  if (typeof value !== "string") return value === null || value === undefined ? "" : String(value);
  const m = /^(\d{4})-(\d{2})-(\d{2})(T(\d{2}):(\d{2})(:(\d{2}))?)?/.exec(value);
  if (!m) return value;
  const date = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  if (Number.isNaN(date.getTime())) return value;
  const day = DATE_FORMAT.format(date);
  return m[4] ? `${day}, ${m[5]}:${m[6]}` : day;
}

export function formatDateTime(date) {
  return DATE_TIME_FORMAT.format(date);
}

/** Save bytes or text as a file the patient downloads (made in the browser, never uploaded). */
export function download(filename, content, type) {
  const blob = content instanceof Blob ? content : new Blob([content], { type });
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename, class: "visually-hidden" });
  document.body.append(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10000);
}
