/**
 * The newest records shown on this device, per patient handle: the highest version, and whether
 * it was a deletion. Not secret (a counter), so it lives in localStorage. A server that replays
 * anything older is refused (RollbackRefused): a block older than a block shown, or not newer
 * than a deletion shown; a deletion older than a deletion shown, or not newer than a block shown
 * (protocol.md, section 4).
 */

const PREFIX = "rxvault.seen-version.";

function seen(handle) {
  const raw = window.localStorage.getItem(PREFIX + handle) ?? "";
  const deleted = raw.endsWith(":deleted");
  const value = Number(deleted ? raw.slice(0, -":deleted".length) : raw);
  return Number.isSafeInteger(value) && value > 0 ? { version: value, deleted } : { version: 0, deleted: false };
}

/** The lowest block version this device may still show. */
export function seenVersion(handle) {
  const s = seen(handle);
  return s.deleted ? s.version + 1 : s.version;
}

/** May a deletion of this version be shown? */
export function deletionAllowed(handle, version) {
  const s = seen(handle);
  return s.deleted ? version >= s.version : version > s.version || s.version === 0;
}

/** Whether this device has shown records (or a deletion) for the handle. */
export function hasShown(handle) {
  return seen(handle).version > 0;
}

export function rememberVersion(handle, version, { deleted = false } = {}) {
  const s = seen(handle);
  if (version > s.version || (version === s.version && deleted && !s.deleted))
    window.localStorage.setItem(PREFIX + handle, deleted ? `${version}:deleted` : String(version));
}

/**
 * The highest sync statement number shown on this device, per pharmacy id (format.md, "The sync
 * statement"). A lower one, or none at all once one was seen, is refused like a rollback.
 */
const STATEMENT_PREFIX = "rxvault.seen-statement.";

export function seenStatement(pharmacyId) {
  const value = Number(window.localStorage.getItem(STATEMENT_PREFIX + pharmacyId) ?? "");
  return Number.isSafeInteger(value) && value > 0 ? value : 0;
}

export function rememberStatement(pharmacyId, seq) {
  if (seq > seenStatement(pharmacyId)) window.localStorage.setItem(STATEMENT_PREFIX + pharmacyId, String(seq));
}
