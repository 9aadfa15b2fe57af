/**
 * The prescription history: search, sort, filter (drug, prescriber, status, date range) and
 * paging, all in the browser over the decrypted rows.
 */

import { announce, formatDate, h, uid } from "./ui.js";
import { cellText } from "./document.js";
import { parseDay } from "./refills.js";

const PAGE_SIZE = 25;
const COLUMN_ROLES = ["fill_date", "drug_name", "quantity", "days_supply", "refills_left", "prescriber", "status", "rx_number"];
const NUMERIC = new Set(["integer", "decimal"]);

function columnsOf(section) {
  const byId = new Map(section.fields.map((f) => [f.id, f]));
  const chosen = COLUMN_ROLES.filter((r) => section.has(r)).map((r) => byId.get(section.byRole.get(r)));
  return chosen.length >= 2 ? chosen : section.fields.slice(0, 8);
}

function drugText(section, row) {
  const parts = [section.value(row, "drug_name"), section.value(row, "strength"), section.value(row, "dosage_form")];
  return parts.filter((p) => p !== null && p !== undefined && p !== "").join(" ");
}

function prescriberText(section, row) {
  const last = section.value(row, "prescriber");
  const first = section.value(row, "prescriber_given_name");
  return [first, last].filter(Boolean).join(" ");
}

function distinct(values) {
  return [...new Set(values.filter((v) => v))].sort((a, b) => a.localeCompare(b));
}

/** Build the history view for a section; returns {el, filter(state) for benchmarks, teardown}. */
export function historyView(section) {
  const columns = columnsOf(section);
  const items = section.rows.map((row, index) => {
    const search = section.fields.map((f) => cellText(row[f.id])).join(" \u0000 ").toLowerCase();
    return {
      row,
      index,
      search,
      drug: drugText(section, row),
      prescriber: prescriberText(section, row),
      status: cellText(section.value(row, "status")),
      day: parseDay(section.value(row, "fill_date")),
    };
  });
  const state = { query: "", drug: "", prescriber: "", status: "", from: null, to: null, sort: section.has("fill_date") ? "fill_date" : columns[0].id, dir: -1, page: 0, printing: false };
  if (state.sort === "fill_date") state.sort = section.byRole.get("fill_date");

  const searchId = uid("search");
  const search = h("input", { id: searchId, type: "search", name: "search", autocomplete: "off", "aria-controls": "history-table" });
  const select = (label, name, options) => {
    const id = uid(name);
    const el = h("select", { id, name }, h("option", { value: "" }, "All"), options.map((o) => h("option", { value: o }, o)));
    return { el, wrapper: h("div", { class: "field" }, h("label", { for: id }, label), el) };
  };
  const drugs = select("Drug", "drug", distinct(items.map((i) => i.drug)));
  const prescribers = select("Prescriber", "prescriber", distinct(items.map((i) => i.prescriber)));
  const statuses = select("Status", "status", distinct(items.map((i) => i.status)));
  const dateInput = (label, name) => {
    const id = uid(name);
    const el = h("input", { id, name, type: "date" });
    return { el, wrapper: h("div", { class: "field" }, h("label", { for: id }, label), el) };
  };
  const from = dateInput("Filled from", "from");
  const to = dateInput("Filled to", "to");
  const clear = h("button", { type: "button", class: "secondary" }, "Clear filters");
  const controls = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Search and filter prescriptions" },
    h("div", { class: "field field-wide" }, h("label", { for: searchId }, "Search"), h("p", { class: "hint", id: `${searchId}-hint` }, "Drug, prescriber, Rx number, directions …"), search),
    section.has("drug_name") ? drugs.wrapper : null,
    section.has("prescriber") ? prescribers.wrapper : null,
    section.has("status") ? statuses.wrapper : null,
    section.has("fill_date") ? [from.wrapper, to.wrapper] : null,
    h("div", { class: "field field-actions" }, clear),
  );
  search.setAttribute("aria-describedby", `${searchId}-hint`);
  controls.addEventListener("submit", (e) => e.preventDefault());

  const summary = h("p", { class: "summary", id: uid("summary") });
  const headRow = h("tr");
  const sortButtons = new Map();
  for (const col of columns) {
    const button = h("button", { type: "button", class: "sort" }, col.label, h("span", { class: "sort-mark", "aria-hidden": "true" }));
    button.addEventListener("click", () => {
      if (state.sort === col.id) state.dir = -state.dir;
      else {
        state.sort = col.id;
        state.dir = col.type === "date" || col.type === "datetime" ? -1 : 1;
      }
      state.page = 0;
      render();
    });
    sortButtons.set(col.id, button);
    headRow.append(h("th", { scope: "col", "data-col": col.id }, button));
  }
  const tbody = h("tbody");
  const table = h(
    "table",
    { id: "history-table", class: "history" },
    h("caption", { class: "visually-hidden" }, `${section.label}: sortable by column; use the buttons in the column headers`),
    h("thead", {}, headRow),
    tbody,
  );
  const prev = h("button", { type: "button", class: "secondary" }, "Previous page");
  const next = h("button", { type: "button", class: "secondary" }, "Next page");
  const pageInfo = h("span", { class: "page-info" });
  const pager = h("nav", { class: "pager", "aria-label": "Prescription pages" }, prev, pageInfo, next);

  let filtered = items;

  function applyFilters() {
    const q = state.query.trim().toLowerCase();
    const words = q ? q.split(/\s+/) : [];
    filtered = items.filter(
      (i) =>
        (!state.drug || i.drug === state.drug) &&
        (!state.prescriber || i.prescriber === state.prescriber) &&
        (!state.status || i.status === state.status) &&
        (state.from === null || (i.day !== null && i.day >= state.from)) &&
        (state.to === null || (i.day !== null && i.day <= state.to)) &&
        words.every((w) => i.search.includes(w)),
    );
    const col = columns.find((c) => c.id === state.sort) ?? section.fields.find((f) => f.id === state.sort);
    const numeric = col && NUMERIC.has(col.type);
    const key = (i) => {
      const v = i.row[state.sort];
      if (v === null || v === undefined || v === "") return null;
      return numeric ? Number(v) : String(v).toLowerCase();
    };
    const dir = state.dir;
    filtered = filtered
      .map((i) => [key(i), i])
      .sort((a, b) => {
        if (a[0] === b[0]) return a[1].index - b[1].index;
        if (a[0] === null) return 1;
        if (b[0] === null) return -1;
        return (a[0] < b[0] ? -1 : 1) * dir;
      })
      .map((pair) => pair[1]);
    return filtered;
  }

  function renderRows(list) {
    const rows = list.map((i) =>
      h(
        "tr",
        {},
        columns.map((col, n) => {
          let text = cellText(i.row[col.id]);
          if (col.role === "drug_name") text = i.drug || text;
          if (col.role === "prescriber") text = i.prescriber || text;
          if (col.type === "date" || col.type === "datetime") text = formatDate(i.row[col.id]);
          return h(n === 0 ? "th" : "td", n === 0 ? { scope: "row", "data-label": col.label } : { "data-label": col.label }, text);
        }),
      ),
    );
    tbody.replaceChildren(...rows);
  }

  function render({ quiet = false } = {}) {
    applyFilters();
    const pages = Math.max(1, Math.ceil(filtered.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    const start = state.page * PAGE_SIZE;
    const shown = state.printing ? filtered : filtered.slice(start, start + PAGE_SIZE);
    renderRows(shown);
    for (const [id, button] of sortButtons) {
      const th = button.parentElement;
      if (id === state.sort) th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
      button.lastChild.textContent = id === state.sort ? (state.dir > 0 ? " ▲" : " ▼") : "";
    }
    const total = items.length;
    const text =
      filtered.length === 0
        ? `No prescriptions match (of ${total}).`
        : `Showing ${start + 1}–${Math.min(start + PAGE_SIZE, filtered.length)} of ${filtered.length} prescriptions${filtered.length !== total ? ` (filtered from ${total})` : ""}.`;
    summary.textContent = text;
    pageInfo.textContent = `Page ${state.page + 1} of ${pages}`;
    prev.disabled = state.page === 0;
    next.disabled = state.page >= pages - 1;
    pager.hidden = pages <= 1;
    if (!quiet) announce(text);
  }

  let timer = null;
  search.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      state.query = search.value;
      state.page = 0;
      render();
    }, 50);
  });
  const onChange = () => {
    state.drug = drugs.el.value;
    state.prescriber = prescribers.el.value;
    state.status = statuses.el.value;
    state.from = from.el.value ? parseDay(from.el.value) : null;
    state.to = to.el.value ? parseDay(to.el.value) : null;
    state.page = 0;
    render();
  };
  for (const el of [drugs.el, prescribers.el, statuses.el, from.el, to.el]) el.addEventListener("change", onChange);
  clear.addEventListener("click", () => {
    controls.reset();
    state.query = "";
    onChange();
  });
  prev.addEventListener("click", () => {
    state.page -= 1;
    render();
  });
  next.addEventListener("click", () => {
    state.page += 1;
    render();
  });
  const beforePrint = () => {
    state.printing = true;
    render({ quiet: true });
  };
  const afterPrint = () => {
    state.printing = false;
    render({ quiet: true });
  };
  window.addEventListener("beforeprint", beforePrint);
  window.addEventListener("afterprint", afterPrint);

  render({ quiet: true });
  const el = h("div", { class: "history-view" }, controls, summary, h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": `${section.label} table` }, table), pager);
  return {
    el,
    /** The rows currently matching (for exports of the filtered view). */
    filteredRows: () => filtered.map((i) => i.row),
    teardown() {
      window.removeEventListener("beforeprint", beforePrint);
      window.removeEventListener("afterprint", afterPrint);
    },
  };
}
