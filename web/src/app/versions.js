/**
 * The highest block version shown on this device, per patient handle. Not secret (a counter), so
 * it lives in localStorage; a server that replays an older block is refused (RollbackRefused).
 */

const PREFIX = "rxvault.seen-version.";

export function seenVersion(handle) {
  const value = Number(window.localStorage.getItem(PREFIX + handle));
  return Number.isSafeInteger(value) && value > 0 ? value : 0;
}

export function rememberVersion(handle, version) {
  if (version > seenVersion(handle)) window.localStorage.setItem(PREFIX + handle, String(version));
}
