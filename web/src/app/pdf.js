/**
 * A small PDF writer for the records (made in the browser; nothing is uploaded): US Letter pages,
 * the standard Helvetica fonts (no embedding), text and table rules only.
 */

import { cellText } from "./document.js";
import { formatDate } from "./ui.js";

const WIN_ANSI = { "€": 0x80, "‚": 0x82, "„": 0x84, "…": 0x85, "‘": 0x91, "’": 0x92, "“": 0x93, "”": 0x94, "•": 0x95, "–": 0x96, "—": 0x97, "™": 0x99, "▲": 0x5e, "▼": 0x76 };
const PAGE_W = 612;
const PAGE_H = 792;
const MARGIN = 40;

function encode(text) {
  let out = "";
  for (const ch of String(text)) {
    const code = ch.codePointAt(0);
    let byte;
    if (WIN_ANSI[ch] !== undefined) byte = WIN_ANSI[ch];
    else if ((code >= 0x20 && code < 0x7f) || (code >= 0xa0 && code <= 0xff)) byte = code;
    else if (code === 0x09) byte = 0x20;
    else byte = 0x3f; // "?"
    const c = String.fromCharCode(byte);
    out += c === "(" || c === ")" || c === "\\" ? `\\${c}` : c;
  }
  return out;
}

function fit(text, width, size) {
  const max = Math.max(1, Math.floor(width / (size * 0.52)));
  const t = String(text);
  return t.length <= max ? t : `${t.slice(0, max - 1)}…`;
}

class Writer {
  constructor() {
    this.pages = [];
    this.newPage();
  }

  newPage() {
    this.ops = [];
    this.pages.push(this.ops);
    this.y = PAGE_H - MARGIN;
  }

  ensure(height) {
    if (this.y - height < MARGIN) this.newPage();
  }

  text(x, text, { size = 10, bold = false } = {}) {
    this.ops.push(`BT /${bold ? "F2" : "F1"} ${size} Tf ${x.toFixed(1)} ${this.y.toFixed(1)} Td (${encode(text)}) Tj ET`);
  }

  line(text, { size = 10, bold = false, gap = 4 } = {}) {
    const width = PAGE_W - 2 * MARGIN;
    const max = Math.floor(width / (size * 0.5));
    const words = String(text).split(/\s+/);
    let current = "";
    const lines = [];
    for (const w of words) {
      if ((current + " " + w).trim().length > max) {
        lines.push(current);
        current = w;
      } else current = (current + " " + w).trim();
    }
    lines.push(current);
    for (const l of lines) {
      this.ensure(size + gap);
      this.y -= size + gap;
      this.text(MARGIN, l, { size, bold });
    }
  }

  rule() {
    this.ops.push(`0.6 G ${MARGIN} ${(this.y - 3).toFixed(1)} m ${PAGE_W - MARGIN} ${(this.y - 3).toFixed(1)} l S 0 G`);
  }

  table(columns, rows, { size = 8 } = {}) {
    const width = PAGE_W - 2 * MARGIN;
    const total = columns.reduce((s, c) => s + c.weight, 0);
    const xs = [];
    let x = MARGIN;
    for (const c of columns) {
      xs.push(x);
      x += (c.weight / total) * width;
    }
    const header = () => {
      this.ensure(size + 8);
      this.y -= size + 6;
      columns.forEach((c, i) => this.text(xs[i], fit(c.label, (c.weight / total) * width - 4, size), { size, bold: true }));
      this.rule();
    };
    header();
    for (const row of rows) {
      if (this.y - (size + 5) < MARGIN) {
        this.newPage();
        header();
      }
      this.y -= size + 5;
      columns.forEach((c, i) => this.text(xs[i], fit(c.value(row), (c.weight / total) * width - 4, size), { size }));
    }
  }

  bytes() {
    const objects = [];
    const add = (body) => {
      objects.push(body);
      return objects.length;
    };
    add("<< /Type /Catalog /Pages 2 0 R >>");
    add("PAGES");
    const f1 = add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>");
    const f2 = add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>");
    const kids = [];
    this.pages.forEach((ops, index) => {
      const footer = `BT /F1 8 Tf ${MARGIN} 20 Td (${encode(`Page ${index + 1} of ${this.pages.length}`)}) Tj ET`;
      const stream = [...ops, footer].join("\n");
      const content = add(`<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`);
      kids.push(add(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${PAGE_W} ${PAGE_H}] /Resources << /Font << /F1 ${f1} 0 R /F2 ${f2} 0 R >> >> /Contents ${content} 0 R >>`));
    });
    objects[1] = `<< /Type /Pages /Kids [${kids.map((k) => `${k} 0 R`).join(" ")}] /Count ${kids.length} >>`;
    let out = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
    const offsets = [];
    objects.forEach((body, i) => {
      offsets.push(out.length);
      out += `${i + 1} 0 obj\n${body}\nendobj\n`;
    });
    const xref = out.length;
    out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
    for (const o of offsets) out += `${String(o).padStart(10, "0")} 00000 n \n`;
    out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
    const bytes = new Uint8Array(out.length);
    for (let i = 0; i < out.length; i++) bytes[i] = out.charCodeAt(i) & 0xff;
    return bytes;
  }
}

export function toPdf(doc, { asOf, rows }) {
  const w = new Writer();
  w.line(`Pharmacy records: ${doc.patientName || "patient"}`, { size: 16, bold: true });
  w.line(`From ${doc.pharmacyName}, records as of ${asOf.toUTCString()}. Verified with the pharmacy's signature and decrypted on this device.`, { size: 9 });
  w.y -= 6;
  w.line(doc.patient.label, { size: 12, bold: true });
  const p = doc.patient.rows[0];
  for (const f of doc.patient.fields) {
    const v = cellText(p[f.id]);
    if (v) w.line(`${f.label}: ${f.type === "date" ? formatDate(p[f.id]) : v}`, { size: 9, gap: 3 });
  }
  for (const section of [doc.allergies, doc.prescriptions, ...doc.sections.filter((s) => s !== doc.allergies && s !== doc.prescriptions)]) {
    if (!section) continue;
    w.y -= 8;
    w.line(section.label, { size: 12, bold: true });
    const list = section === doc.prescriptions && rows ? rows : section.rows;
    if (!list.length) {
      w.line("None recorded.", { size: 9 });
      continue;
    }
    const fields = section.fields.slice(0, 8);
    w.table(
      fields.map((f) => ({
        label: f.label,
        weight: f.role === "drug_name" || f.role === "directions" ? 3 : f.type === "date" ? 1.6 : 1.2,
        value: (row) => (f.type === "date" || f.type === "datetime" ? formatDate(row[f.id]) : cellText(row[f.id])),
      })),
      list,
    );
  }
  return w.bytes();
}
