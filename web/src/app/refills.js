/**
 * Refill-due dates: for each prescription (rx number), its latest fill; when refills are left
 * and the fill is not cancelled, the next refill is due when the supply runs out: the fill date
 * plus the days supply (or, without a days supply, nothing is guessed). Refills overdue by more
 * than 90 days are left out: that prescription is most likely no longer taken.
 */

const INACTIVE = /cancel|return|void|inactive|expired|transfer/i;
const DAY = 86400000;
/** A refill overdue by more than this is taken as a prescription no longer in use. */
const STALE_DAYS = 90;

export function parseDay(value) {
  if (typeof value !== "string") return null;
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (!m) return null;
  const t = Date.UTC(+m[1], +m[2] - 1, +m[3]);
  return Number.isNaN(t) ? null : t;
}

export function isoDay(t) {
  return new Date(t).toISOString().slice(0, 10);
}

function integer(value) {
  if (typeof value === "number") return value;
  if (typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value.trim())) return Math.floor(Number(value));
  return null;
}

/** [{rx, drug, lastFill, due, refillsLeft, daysSupply, overdue}] sorted by due date. */
export function refillsDue(section, today = Date.now()) {
  if (!section || !section.has("fill_date") || !section.has("days_supply")) return [];
  const latest = new Map();
  section.rows.forEach((row, index) => {
    const filled = parseDay(section.value(row, "fill_date"));
    if (filled === null) return;
    const key = section.has("rx_number") ? String(section.value(row, "rx_number")) : `${section.value(row, "drug_name")}#${index}`;
    const seen = latest.get(key);
    if (!seen || filled > seen.filled) latest.set(key, { row, filled });
  });
  const todayDay = Math.floor(today / DAY) * DAY;
  const out = [];
  for (const [rx, { row, filled }] of latest) {
    const status = String(section.value(row, "status") ?? "");
    if (INACTIVE.test(status)) continue;
    const left = section.has("refills_left") ? integer(section.value(row, "refills_left")) : null;
    if (left !== null && left <= 0) continue;
    const days = integer(section.value(row, "days_supply"));
    if (days === null || days <= 0) continue;
    const due = filled + days * DAY;
    if (due < todayDay - STALE_DAYS * DAY) continue;
    out.push({
      rx,
      drug: [section.value(row, "drug_name"), section.value(row, "strength")].filter(Boolean).join(" "),
      lastFill: isoDay(filled),
      due: isoDay(due),
      refillsLeft: left,
      daysSupply: days,
      overdue: due < todayDay,
    });
  }
  out.sort((a, b) => (a.due < b.due ? -1 : a.due > b.due ? 1 : 0));
  return out;
}
