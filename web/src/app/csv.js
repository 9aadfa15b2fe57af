/** CSV export (RFC 4180): one row per fill, every published field, headed by its label. */

import { cellText } from "./document.js";

function quote(text) {
  let value = text;
  // A cell a spreadsheet would run as a formula is kept as text.
  if (/^[=+@\t\r]/.test(value)) value = `'${value}`;
  return /[",\r\n]/.test(value) || value !== value.trim() ? `"${value.replace(/"/g, '""')}"` : value;
}

export function toCsv(section, rows = section.rows) {
  const lines = [section.fields.map((f) => quote(f.label)).join(",")];
  for (const row of rows) lines.push(section.fields.map((f) => quote(cellText(row[f.id]))).join(","));
  return "\uFEFF" + lines.join("\r\n") + "\r\n";
}
