/**
 * The rxvault patient portal. Keys and records live only in this page's memory: reloading, idling
 * or logging out forgets them, and the records are removed from the page.
 */

import * as C from "../crypto/index.js";
import { api, ApiError } from "./api.js";
import { readDocument, DocumentError } from "./document.js";
import { historyView } from "./history.js";
import { refillsDue } from "./refills.js";
import { toCsv } from "./csv.js";
import { toFhirBundle } from "./fhir.js";
import { toPdf } from "./pdf.js";
import { passwordScore, passwordProblem, LABELS, MIN_LENGTH } from "./strength.js";
import { deletionAllowed, hasShown, rememberStatement, rememberVersion, seenStatement, seenVersion } from "./versions.js";
import { announce, download, field, formatDate, formatDateTime, h, messageBox } from "./ui.js";
import { cellText } from "./document.js";

const USERNAME_RE = /^[a-z0-9][a-z0-9._@+-]{2,127}$/;
const STALE_HOURS = 48;
const IDLE_KEY = "rxvault.idle-seconds"; // a preference, not a secret
const DEFAULT_IDLE_SECONDS = 10 * 60;

const main = document.getElementById("main");
const nav = document.getElementById("nav");

/** The unlocked state: the only place keys and decrypted records are held. */
let vault = null;
let lastUsername = "";
let idleTimer = null;

// ---------------------------------------------------------------------------------- layout

function setView(title, ...content) {
  const heading = h("h1", { tabindex: "-1" }, title);
  main.replaceChildren(heading, ...content.filter((c) => c !== null && c !== undefined && c !== false));
  document.title = `${title} · Pharmacy records`;
  heading.focus();
  window.scrollTo(0, 0);
}

function showNav(visible, current = null) {
  nav.hidden = !visible;
  for (const button of nav.querySelectorAll("[data-nav]")) {
    if (button.dataset.nav === current) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
}

function canonicalUsername(raw) {
  return raw.normalize("NFKC").trim().toLowerCase();
}

function progressBlock(label) {
  const bar = h("progress", { max: "100", value: "0", "aria-label": label });
  const text = h("p", { class: "progress-text" }, label);
  const el = h("div", { class: "progress", hidden: true }, text, bar);
  return {
    el,
    set(fraction, message) {
      el.hidden = false;
      bar.value = Math.round(fraction * 100);
      if (message) text.textContent = message;
    },
    hide() {
      el.hidden = true;
    },
  };
}

function passwordMeter(input, hints) {
  const meter = h("meter", { min: "0", max: "4", low: "2", high: "3", optimum: "4", value: "0", "aria-label": "Password strength" });
  const label = h("span", { class: "meter-label", "aria-live": "polite" }, "");
  const el = h("div", { class: "meter" }, h("span", {}, "Strength: "), meter, label);
  input.addEventListener("input", () => {
    const score = input.value ? passwordScore(input.value, hints()) : 0;
    meter.value = score;
    label.textContent = input.value ? ` ${LABELS[score]}` : "";
  });
  return el;
}

// ---------------------------------------------------------------------------------- errors

const PROBLEMS = {
  SignatureInvalid: [
    "We could not confirm these records came from your pharmacy",
    "The records the server sent do not carry your pharmacy's valid signature, so they are not shown. This can mean the server was tampered with. Please call your pharmacy.",
  ],
  MalformedObject: [
    "We could not confirm these records came from your pharmacy",
    "The records the server sent are damaged or not in the expected form, so they are not shown. Please try again later or call your pharmacy.",
  ],
  UnsupportedVersion: [
    "These records need a newer version of this page",
    "The records use a format this page does not know. Reload the page; if this stays, call your pharmacy.",
  ],
  DecryptionFailed: [
    "Your records could not be opened",
    "The records could not be decrypted with your key. They may be damaged, or made for another key. Please call your pharmacy; they can send your records again.",
  ],
  RollbackRefused: [
    "These records are older than ones already shown on this device",
    "The server sent an older copy of your records than this device has already shown you. To protect you from out-of-date information they are not shown. Please call your pharmacy.",
  ],
  WithholdingDetected: [
    "The server is not showing your latest records",
    "Your pharmacy's signed summary of its last update shows newer records than the ones the server sent. To protect you from out-of-date information they are not shown. Please call your pharmacy.",
  ],
  InclusionInvalid: [
    "We could not confirm these records are your pharmacy's latest",
    "The server's proof that these records are part of your pharmacy's last update does not check out, so they are not shown. Please call your pharmacy.",
  ],
  HandleMismatch: [
    "These records belong to someone else",
    "The server sent records that are not yours, so they are not shown. Please call your pharmacy.",
  ],
  PinTagInvalid: [
    "This pharmacy could not be confirmed",
    "The pharmacy key the server gave does not match your enrollment code, so nothing was sent and no account was made. Please call your pharmacy.",
  ],
  WeakKdfParameters: [
    "The server asked for weak password protection",
    "The server asked this page to protect your password more weakly than allowed, so your password was not used. Please call your pharmacy.",
  ],
  DocumentError: [
    "Your records could not be read",
    "Your records were verified and decrypted, but their contents are not in a form this page can show. Please call your pharmacy.",
  ],
};

function showProblem(kind, detail) {
  forget();
  const [title, text] = PROBLEMS[kind] ?? PROBLEMS.MalformedObject;
  const box = h("div", { class: "message message-error", role: "alert" }, h("p", {}, text), detail ? h("p", { class: "detail" }, `Technical detail: ${detail}`) : null);
  setView(title, box, h("p", {}, h("button", { type: "button", onclick: () => logout() }, "Log out")));
  main.dataset.screen = "problem";
  main.dataset.problem = kind;
  showNav(false);
}

// ---------------------------------------------------------------------------------- forgetting

function forget() {
  if (vault) {
    vault.history?.teardown();
    vault.recipient = null;
    vault.doc = null;
    vault.header = null;
  }
  vault = null;
  window.clearTimeout(idleTimer);
  main.replaceChildren();
  delete main.dataset.problem;
}

function idleSeconds() {
  const v = Number(window.localStorage.getItem(IDLE_KEY));
  return Number.isFinite(v) && v >= 1 ? Math.min(v, DEFAULT_IDLE_SECONDS) : DEFAULT_IDLE_SECONDS;
}

function touch() {
  if (!vault) return;
  window.clearTimeout(idleTimer);
  idleTimer = window.setTimeout(() => lock("idle"), idleSeconds() * 1000);
}

for (const type of ["pointerdown", "keydown", "wheel", "touchstart", "scroll"]) window.addEventListener(type, touch, { passive: true });
// Leaving the page (or the browser keeping it in its back/forward cache) forgets the keys and
// the records, so going Back never shows them again without the password.
window.addEventListener("pagehide", () => {
  if (vault) lock("manual");
});

function lock(reason) {
  const username = vault?.username ?? lastUsername;
  forget();
  showUnlock(username, reason === "idle" ? `The page locked itself after ${Math.round(idleSeconds() / 60) || 1} minute(s) without activity. Your records were removed from this page.` : "Locked. Your records were removed from this page.");
}

async function logout(message = "You have logged out. Your records were removed from this page.") {
  forget();
  showNav(false);
  try {
    await api("POST", "/logout", {});
  } catch {
    // The session ends on the server anyway when it idles out; the page has forgotten it.
  }
  lastUsername = "";
  showLogin(message);
}

// ---------------------------------------------------------------------------------- unlocking

async function deriveKeys(password, salt, kdf, progress, message) {
  const params = C.kdfParamsFromDict(kdf);
  return C.deriveClientKeysInWorker(password, C.b64decode(salt), params, (f) => progress.set(f, message));
}

/** Log in (or unlock a page whose session is still open), open the key bundle, load records. */
async function unlock(username, password, { login, progress, box, passwordField }) {
  const pre = await api("POST", "/prelogin", { username });
  const keys = await deriveKeys(password, pre.salt, pre.kdf, progress, "Checking your password on this device…");
  try {
    if (login) {
      progress.set(1, "Logging in…");
      await api("POST", "/login", { username, auth_key: C.b64encode(keys.authKey) });
    }
    progress.set(1, "Opening your keys…");
    const bundle = await api("GET", "/me/key-bundle");
    let opened;
    try {
      opened = await C.unwrapKeyBundle(C.b64decode(bundle.key_bundle), {
        unlockKey: keys.unlockKey,
        serverShare: C.b64decode(bundle.server_share),
        account: bundle.username,
      });
    } catch (exc) {
      if (exc instanceof C.DecryptionFailed && !login) {
        passwordField.setError("This password is not right. Please try again.");
        box.show("This password is not right. Please try again.");
        progress.hide();
        return;
      }
      throw exc;
    }
    vault = {
      username: bundle.username,
      handle: bundle.handle,
      recipient: await C.recipientKeyPair(opened.privateKey, opened.patientPublicKey),
      pharmacyPublicKey: opened.pharmacyPublicKey,
    };
    lastUsername = bundle.username;
  } finally {
    C.wipe(keys.authKey, keys.unlockKey);
  }
  progress.set(1, "Opening your records…");
  await loadRecords();
}

function handleFailure(exc, { box, progress }) {
  progress?.hide();
  if (exc instanceof ApiError) {
    if (exc.status === 401 && exc.code === "not_authenticated") {
      forget();
      showLogin("Your session has ended. Please log in again.");
      return;
    }
    box.show(exc.message);
    return;
  }
  if (exc instanceof C.FormatError || exc instanceof DocumentError) {
    showProblem(exc.name, exc.message);
    return;
  }
  box.show(`Something went wrong on this page: ${exc.message}`);
}

function loginForm({ username, unlockOnly, intro }) {
  C.prepareKeyWorker();
  const box = messageBox();
  const user = field({ label: "Username", name: "username", autocomplete: "username", value: username, autocapitalize: "none", spellcheck: false });
  const pass = field({ label: "Password", name: "password", type: "password", autocomplete: "current-password" });
  const progress = progressBlock("Checking your password…");
  const submit = h("button", { type: "submit" }, unlockOnly ? "Unlock" : "Log in");
  if (unlockOnly) {
    user.input.readOnly = true;
  }
  const form = h("form", { class: "card", novalidate: true }, intro ? h("p", {}, intro) : null, box.el, user.wrapper, pass.wrapper, submit, progress.el);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    performance.mark("rxvault:login-pressed");
    box.clear();
    user.setError(null);
    pass.setError(null);
    const name = canonicalUsername(user.input.value);
    if (!name) {
      user.setError("Please enter your username.");
      user.input.focus();
      return;
    }
    if (!pass.input.value) {
      pass.setError("Please enter your password.");
      pass.input.focus();
      return;
    }
    submit.disabled = true;
    const password = pass.input.value;
    try {
      await unlock(name, password, { login: !unlockOnly, progress, box, passwordField: pass });
    } catch (exc) {
      if (exc instanceof ApiError && exc.code === "invalid_credentials") {
        progress.hide();
        box.show("The username or password is not right. Please try again.");
        pass.input.focus();
      } else handleFailure(exc, { box, progress });
    } finally {
      submit.disabled = false;
      if (pass.input.isConnected) pass.input.value = "";
    }
  });
  return { form, focus: () => (unlockOnly || username ? pass.input : user.input).focus() };
}

function showLogin(message) {
  forget();
  showNav(false);
  const { form, focus } = loginForm({ username: lastUsername });
  const box = message ? h("div", { class: "message message-info", role: "status" }, message) : null;
  const register = h("button", { type: "button", class: "link", onclick: () => showRegister("") }, "I have an enrollment code from my pharmacy");
  setView("Log in to see your pharmacy records", box, form, h("section", { class: "aside", "aria-labelledby": "new-here" }, h("h2", { id: "new-here" }, "New here?"), h("p", {}, "Your pharmacy gives you a letter with an enrollment code. Use it once to make your account."), register));
  main.dataset.screen = "login";
  if (!message) focus();
}

function showUnlock(username, reason) {
  showNav(false);
  const { form } = loginForm({ username, unlockOnly: true, intro: "For your privacy, your records are only kept while the page is unlocked. Enter your password to see them again." });
  const other = h("button", { type: "button", class: "link", onclick: () => logout() }, "Log out instead");
  const box = reason ? h("div", { class: "message message-info", role: "status" }, reason) : null;
  setView("Unlock your records", box, form, h("p", {}, other));
  main.dataset.screen = "unlock";
}

// ---------------------------------------------------------------------------------- registration

function showRegister(code) {
  forget();
  showNav(false);
  C.prepareKeyWorker();
  const box = messageBox();
  const codeField = field({
    label: "Enrollment code",
    name: "code",
    hint: "From your pharmacy's letter, for example 1ABC-DEFG-HJKM-… Capital or small letters, spaces and dashes are all fine.",
    autocomplete: "off",
    value: code,
    autocapitalize: "characters",
    spellcheck: false,
  });
  const user = field({ label: "Choose a username", name: "username", hint: "3 or more letters or digits; you may also use . _ @ + -", autocomplete: "username", autocapitalize: "none", spellcheck: false });
  const pass = field({ label: "Choose a password", name: "new-password", type: "password", hint: `At least ${MIN_LENGTH} characters. A few unrelated words are strong and easy to remember.`, autocomplete: "new-password" });
  const again = field({ label: "Type the password again", name: "confirm-password", type: "password", autocomplete: "new-password" });
  const meter = passwordMeter(pass.input, () => [user.input.value]);
  pass.wrapper.insertBefore(meter, pass.wrapper.querySelector(".field-error"));
  const warning = h(
    "div",
    { class: "message message-warning", id: "no-recovery" },
    h("p", {}, h("strong", {}, "Keep your password safe. It cannot be recovered. "), "Your records are locked with your password, and nobody (not the pharmacy, not this website) can unlock them without it. If you forget it, your pharmacy can give you a new enrollment code to start again."),
  );
  const understood = h("input", { type: "checkbox", id: "understood", name: "understood", required: true });
  const understoodError = h("p", { class: "field-error", id: "understood-error", hidden: true });
  understood.setAttribute("aria-describedby", "no-recovery understood-error");
  const progress = progressBlock("Protecting your password…");
  const submit = h("button", { type: "submit" }, "Create my account");
  const form = h(
    "form",
    { class: "card", novalidate: true },
    box.el,
    codeField.wrapper,
    user.wrapper,
    pass.wrapper,
    again.wrapper,
    warning,
    h("div", { class: "checkbox" }, understood, h("label", { for: "understood" }, "I understand that my password cannot be recovered."), understoodError),
    submit,
    progress.el,
  );
  codeField.input.addEventListener("blur", () => {
    if (!codeField.input.value.trim()) return;
    try {
      const parsed = C.parseEnrollmentCode(codeField.input.value);
      codeField.input.value = parsed.text;
      codeField.setError(null);
    } catch (exc) {
      codeField.setError(codeMessage(exc));
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    box.clear();
    for (const f of [codeField, user, pass, again]) f.setError(null);
    understoodError.hidden = true;
    let parsed;
    const problems = [];
    try {
      parsed = C.parseEnrollmentCode(codeField.input.value);
      codeField.input.value = parsed.text;
    } catch (exc) {
      codeField.setError(codeMessage(exc));
      problems.push(codeField.input);
    }
    const username = canonicalUsername(user.input.value);
    if (!USERNAME_RE.test(username)) {
      user.setError("A username is 3 to 128 characters: letters, digits and . _ @ + - (starting with a letter or digit).");
      problems.push(user.input);
    }
    const problem = passwordProblem(pass.input.value, [username]);
    if (problem) {
      pass.setError(problem);
      problems.push(pass.input);
    } else if (pass.input.value !== again.input.value) {
      again.setError("The two passwords are not the same.");
      problems.push(again.input);
    }
    if (!understood.checked) {
      understoodError.textContent = "Please confirm that you understand the password cannot be recovered.";
      understoodError.hidden = false;
      problems.push(understood);
    }
    if (problems.length) {
      box.show("Please correct the highlighted fields.");
      problems[0].focus();
      return;
    }
    submit.disabled = true;
    try {
      await register(parsed, username, pass.input.value, { progress, box, user });
    } catch (exc) {
      handleFailure(exc, { box, progress });
    } finally {
      submit.disabled = false;
      if (pass.input.isConnected) {
        pass.input.value = "";
        again.input.value = "";
      }
    }
  });
  setView(
    "Create your account",
    h("p", { class: "lead" }, "Your pharmacy records are encrypted before they leave the pharmacy. Only you, with your password, can open them."),
    form,
    h("p", {}, h("button", { type: "button", class: "link", onclick: () => showLogin() }, "I already have an account")),
  );
  main.dataset.screen = "register";
}

function codeMessage(exc) {
  const text = exc.message || "";
  if (/check symbol/.test(text)) return "This code has a typing mistake somewhere. Please check it against your letter.";
  if (/symbols, expected/.test(text)) return "This code is not complete. It has 28 letters and digits (seven groups of four).";
  if (/not a code symbol/.test(text)) return "This code contains a character that is not in enrollment codes. Please check it against your letter.";
  return "This is not a valid enrollment code. Please check it against your letter.";
}

async function register(code, username, password, { progress, box, user }) {
  const secrets = await C.deriveEnrollment(code);
  progress.set(0, "Checking your enrollment code…");
  const start = await api("POST", "/registration/start", { lookup_id: secrets.lookupId });
  const pharmacyKey = C.b64decode(start.pharmacy.public_key);
  await C.verifyPinTag(code, pharmacyKey, C.b64decode(start.pin_tag));
  const params = C.kdfParamsFromDict(start.kdf);
  const keys = await C.deriveClientKeysInWorker(password, C.b64decode(start.salt), params, (f) => progress.set(f, "Protecting your password on this device…"));
  const privateBytes = C.randomBytes(32);
  try {
    const publicKey = await C.patientPublicKey(privateBytes);
    const bundle = await C.wrapKeyBundle({
      unlockKey: keys.unlockKey,
      serverShare: C.b64decode(start.server_share),
      account: username,
      patientPrivateKey: privateBytes,
      pharmacyPublicKey: pharmacyKey,
    });
    const binding = await C.bindingMac(secrets.bindingKey, start.handle, publicKey);
    progress.set(1, "Creating your account…");
    try {
      await api("POST", "/registration", {
        lookup_id: secrets.lookupId,
        username,
        kdf: C.kdfParamsToDict(params),
        auth_key: C.b64encode(keys.authKey),
        public_key: C.b64encode(publicKey),
        binding: C.b64encode(binding),
        key_bundle: C.b64encode(bundle),
      });
    } catch (exc) {
      if (exc instanceof ApiError && exc.code === "username_taken") {
        progress.hide();
        user.setError("This username is taken. Please choose another.");
        box.show("This username is taken. Please choose another.");
        user.input.focus();
        return;
      }
      throw exc;
    }
    const privateKey = await C.importPatientPrivateKey(privateBytes);
    vault = {
      username,
      handle: start.handle,
      recipient: await C.recipientKeyPair(privateKey, publicKey),
      pharmacyPublicKey: pharmacyKey,
      justRegistered: true,
    };
    lastUsername = username;
  } finally {
    C.wipe(privateBytes, keys.authKey, keys.unlockKey);
  }
  await loadRecords();
}

// ---------------------------------------------------------------------------------- records

/**
 * The sync statement rules (format.md, "The sync statement", checks by a client): the statement
 * verifies with the pinned pharmacy key and is not older than one this device showed; a live
 * block or deletion is in it (inclusion proof) and not older than the version it proves, or,
 * without a proof, was signed at or after the statement's time. `served` is {version, signedAt},
 * or null for a pending answer. Returns the statement, or null when the server has none.
 */
async function checkStatement(block, served) {
  const id = await C.pharmacyId(vault.pharmacyPublicKey);
  const seen = seenStatement(id);
  if (block.statement == null) {
    if (seen) throw new C.RollbackRefused(`the server sent no sync statement, but this device has seen number ${seen}`);
    return null;
  }
  let raw;
  try {
    raw = C.b64decode(block.statement);
  } catch {
    throw new C.MalformedObject("statement: not base64");
  }
  const statement = await C.verifyStatement(raw, vault.pharmacyPublicKey);
  if (statement.seq < seen) throw new C.RollbackRefused(`sync statement number ${statement.seq} is older than number ${seen} already seen`);
  if (served !== null) {
    const proof = block.proof;
    if (proof == null) {
      if (served.signedAt.getTime() < statement.as_of.getTime())
        throw new C.WithholdingDetected("the server sent the sync statement without the proof that covers these records");
    } else {
      if (typeof proof !== "object" || !Array.isArray(proof.path) || typeof proof.deleted !== "boolean" || !proof.path.every((p) => typeof p === "string" && /^[0-9a-f]{64}$/.test(p)))
        throw new C.MalformedObject("inclusion proof: not in the expected form");
      const leaf = { handle: vault.handle, version: proof.version, deleted: proof.deleted };
      await C.verifyInclusion(statement, leaf, proof.index, proof.path.map(C.fromHex));
      C.checkNotWithheld(leaf, served.version);
    }
  }
  return { statement, pharmacyId: id };
}

function acceptStatement(checked) {
  if (checked) rememberStatement(checked.pharmacyId, checked.statement.seq);
  return checked ? checked.statement : null;
}

async function loadRecords() {
  const block = await api("GET", "/me/block");
  performance.mark("rxvault:block-fetched");
  if (!vault) return;
  if (block.handle !== vault.handle) throw new C.HandleMismatch("the server sent another patient's block");
  if (block.state === "live") {
    const opened = await C.openBlock(C.b64decode(block.envelope), {
      recipient: vault.recipient,
      pharmacyPublicKey: vault.pharmacyPublicKey,
      expectedHandle: vault.handle,
      minVersion: seenVersion(vault.handle),
    });
    performance.mark("rxvault:block-opened");
    let checked;
    try {
      checked = await checkStatement(block, { version: opened.header.version, signedAt: opened.header.as_of });
    } catch (exc) {
      opened.document.fill(0);
      throw exc;
    }
    const doc = readDocument(opened.document);
    opened.document.fill(0);
    rememberVersion(vault.handle, opened.header.version);
    vault.statement = acceptStatement(checked);
    vault.doc = doc;
    vault.header = opened.header;
    performance.mark("rxvault:document-read");
    showRecords();
    performance.mark("rxvault:records-shown");
  } else if (block.state === "deleted") {
    const header = await C.verifyTombstone(C.b64decode(block.tombstone), vault.pharmacyPublicKey);
    if (header.handle !== vault.handle) throw new C.HandleMismatch("the deletion is for another patient");
    if (!deletionAllowed(vault.handle, header.version)) throw new C.RollbackRefused("a deletion not newer than records already shown");
    const checked = await checkStatement(block, { version: header.version, signedAt: header.deleted_at });
    rememberVersion(vault.handle, header.version, { deleted: true });
    acceptStatement(checked);
    showNotice("Your records were removed by your pharmacy", `Your pharmacy removed your records from this website on ${formatDateTime(header.deleted_at)}. Please call your pharmacy if you think this is a mistake.`);
  } else {
    acceptStatement(await checkStatement(block, null));
    if (!vault.justRegistered && hasShown(vault.handle)) {
      // This device has shown records before: "nothing published" may be a server withholding them.
      showNotice(
        "Your records are not available right now",
        "This device has shown you your records before, but the server now says there are none. If you registered again recently, they appear after your pharmacy's next daily update. Otherwise the server may be withholding them: please call your pharmacy.",
      );
    } else {
      showNotice(
        vault.justRegistered ? "Your account is ready" : "Your records are not here yet",
        "Your pharmacy has not published your records to this website yet. They usually appear after the pharmacy's next daily update. Please check again tomorrow.",
      );
    }
  }
  touch();
}

function showNotice(title, text) {
  showNav(true);
  setView(title, h("div", { class: "message message-info", role: "status" }, text));
  main.dataset.screen = "notice";
}

function dl(section) {
  const row = section.rows[0];
  const items = section.fields
    .filter((f) => cellText(row[f.id]) !== "")
    .map((f) => [h("dt", {}, f.label), h("dd", {}, f.type === "date" || f.type === "datetime" ? formatDate(row[f.id]) : cellText(row[f.id]))]);
  return h("dl", { class: "profile" }, items);
}

function simpleTable(section) {
  if (!section.rows.length) return h("p", {}, "None recorded.");
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": `${section.label} table` },
    h(
      "table",
      { class: "simple" },
      h("caption", { class: "visually-hidden" }, section.label),
      h("thead", {}, h("tr", {}, section.fields.map((f) => h("th", { scope: "col" }, f.label)))),
      h(
        "tbody",
        {},
        section.rows.map((row) => h("tr", {}, section.fields.map((f) => h("td", { "data-label": f.label }, f.type === "date" || f.type === "datetime" ? formatDate(row[f.id]) : cellText(row[f.id]))))),
      ),
    ),
  );
}

function showRecords() {
  const { doc, header } = vault;
  vault.history?.teardown();
  showNav(true, "records");
  const asOf = header.as_of;
  // How fresh the records are: the pharmacy's last update (its sync statement) when the server
  // has one, else the block's own time (a patient whose records did not change keeps an old one).
  const statement = vault.statement;
  const updatedAt = statement ? statement.as_of : asOf;
  const ageHours = (Date.now() - updatedAt.getTime()) / 3600000;
  const verified = h(
    "p",
    { class: "verified" },
    h("span", { class: "verified-mark", "aria-hidden": "true" }, "✓"),
    " Verified from ",
    h("strong", { "data-testid": "pharmacy-name" }, doc.pharmacyName),
    ": signed by your pharmacy and decrypted on this device.",
  );
  const asOfLine = h(
    "p",
    { class: "as-of" },
    "Records as of ",
    h("time", { datetime: asOf.toISOString() }, formatDateTime(asOf)),
    ".",
    statement ? [" Your pharmacy last updated this website on ", h("time", { datetime: updatedAt.toISOString(), "data-testid": "last-update" }, formatDateTime(updatedAt)), "."] : null,
  );
  const days = Math.floor(ageHours / 24);
  const stale =
    ageHours > STALE_HOURS
      ? h(
          "div",
          { class: "message message-warning", role: "status" },
          statement
            ? `Your pharmacy last updated this website ${days} days ago, so these records may be out of date. Call your pharmacy if something is missing.`
            : `These records were last updated ${days} days ago and may be out of date. Call your pharmacy if something is missing.`,
        )
      : null;
  const actions = h(
    "div",
    { class: "actions no-print" },
    h("button", { type: "button", onclick: () => window.print() }, "Print"),
    h("button", { type: "button", class: "secondary", onclick: () => exportCsv() }, "Download spreadsheet (CSV)"),
    h("button", { type: "button", class: "secondary", onclick: () => exportPdf() }, "Download PDF"),
    h("button", { type: "button", class: "secondary", onclick: () => exportFhir() }, "Download for another health app (FHIR)"),
  );
  const sections = [];
  sections.push(h("section", { "aria-labelledby": "profile-h" }, h("h2", { id: "profile-h" }, doc.patient.label === "Patient" ? "Your details" : doc.patient.label), dl(doc.patient)));
  if (doc.allergies)
    sections.push(h("section", { "aria-labelledby": "allergies-h" }, h("h2", { id: "allergies-h" }, doc.allergies.label), simpleTable(doc.allergies)));
  const due = refillsDue(doc.prescriptions);
  if (doc.prescriptions && doc.prescriptions.has("days_supply"))
    sections.push(
      h(
        "section",
        { "aria-labelledby": "refills-h" },
        h("h2", { id: "refills-h" }, "Refills due"),
        due.length
          ? h(
              "ul",
              { class: "refills" },
              due.map((r) =>
                h(
                  "li",
                  { class: r.overdue ? "overdue" : "" },
                  h("strong", {}, r.drug || `Rx ${r.rx}`),
                  `: due ${formatDate(r.due)}`,
                  r.overdue ? " (due now)" : "",
                  ` · last filled ${formatDate(r.lastFill)}`,
                  r.refillsLeft !== null ? ` · ${r.refillsLeft} refill${r.refillsLeft === 1 ? "" : "s"} left` : "",
                ),
              ),
            )
          : h("p", {}, "No refills are due: none of your current prescriptions has refills left."),
        h("p", { class: "hint" }, "Worked out from the fill date and days supply. Your pharmacy can confirm."),
      ),
    );
  if (doc.prescriptions) {
    vault.history = historyView(doc.prescriptions);
    sections.push(h("section", { "aria-labelledby": "history-h" }, h("h2", { id: "history-h" }, doc.prescriptions.label), vault.history.el));
  }
  for (const s of doc.sections)
    if (s !== doc.prescriptions && s !== doc.allergies)
      sections.push(h("section", { "aria-labelledby": `s-${s.id}` }, h("h2", { id: `s-${s.id}` }, s.label), simpleTable(s)));
  setView(doc.patientName ? `Records for ${doc.patientName}` : "Your records", verified, asOfLine, stale, actions, ...sections);
  main.dataset.screen = "records";
}

function fileBase() {
  const day = vault.header.as_of.toISOString().slice(0, 10);
  return `pharmacy-records-${day}`;
}

function exportCsv() {
  if (!vault?.doc?.prescriptions) return;
  download(`${fileBase()}.csv`, toCsv(vault.doc.prescriptions), "text/csv;charset=utf-8");
  announce("The spreadsheet file was made on this device and saved.");
}

function exportFhir() {
  if (!vault?.doc) return;
  const bundle = toFhirBundle(vault.doc, { asOf: vault.header.as_of });
  download(`${fileBase()}.fhir.json`, JSON.stringify(bundle, null, 2), "application/fhir+json");
  announce("The FHIR file was made on this device and saved.");
}

function exportPdf() {
  if (!vault?.doc) return;
  download(`${fileBase()}.pdf`, new Blob([toPdf(vault.doc, { asOf: vault.header.as_of })], { type: "application/pdf" }));
  announce("The PDF file was made on this device and saved.");
}

// ---------------------------------------------------------------------------------- account

function showAccount() {
  if (!vault) return;
  vault.history?.teardown();
  vault.history = null;
  showNav(true, "account");
  C.prepareKeyWorker();
  const box = messageBox();
  const current = field({ label: "Current password", name: "current-password", type: "password", autocomplete: "current-password" });
  const next = field({ label: "New password", name: "new-password", type: "password", hint: `At least ${MIN_LENGTH} characters.`, autocomplete: "new-password" });
  const again = field({ label: "Type the new password again", name: "confirm-password", type: "password", autocomplete: "new-password" });
  next.wrapper.insertBefore(passwordMeter(next.input, () => [vault?.username ?? ""]), next.wrapper.querySelector(".field-error"));
  const progress = progressBlock("Changing your password…");
  const submit = h("button", { type: "submit" }, "Change password");
  const form = h(
    "form",
    { class: "card", novalidate: true, "aria-labelledby": "password-h" },
    h("h2", { id: "password-h" }, "Change your password"),
    h("p", {}, "Your keys are locked again under the new password on this device. Other devices are logged out."),
    box.el,
    current.wrapper,
    next.wrapper,
    again.wrapper,
    submit,
    progress.el,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    box.clear();
    for (const f of [current, next, again]) f.setError(null);
    if (!current.input.value) {
      current.setError("Please enter your current password.");
      current.input.focus();
      return;
    }
    const problem = passwordProblem(next.input.value, [vault.username]);
    if (problem) {
      next.setError(problem);
      next.input.focus();
      return;
    }
    if (next.input.value !== again.input.value) {
      again.setError("The two passwords are not the same.");
      again.input.focus();
      return;
    }
    submit.disabled = true;
    try {
      await changePassword(current.input.value, next.input.value, progress, current);
      progress.hide();
      box.show("Your password was changed. Other devices were logged out.", "success");
      loadSessions(sessions);
    } catch (exc) {
      if (exc instanceof C.DecryptionFailed || (exc instanceof ApiError && exc.code === "invalid_credentials")) {
        progress.hide();
        current.setError("This is not your current password.");
        box.show("This is not your current password.");
        current.input.focus();
      } else handleFailure(exc, { box, progress });
    } finally {
      submit.disabled = false;
      for (const f of [current, next, again]) if (f.input.isConnected) f.input.value = "";
    }
  });
  const sessions = h("div", { class: "sessions" }, h("p", {}, "Loading…"));
  setView(
    "Your account",
    h("p", {}, "Username: ", h("strong", {}, vault.username)),
    form,
    h("section", { class: "card", "aria-labelledby": "sessions-h" }, h("h2", { id: "sessions-h" }, "Where you are logged in"), sessions),
    h("section", { class: "card", "aria-labelledby": "logout-h" }, h("h2", { id: "logout-h" }, "Log out"), h("p", {}, "Logging out removes your records from this page and ends this session."), h("button", { type: "button", onclick: () => logout() }, "Log out")),
  );
  main.dataset.screen = "account";
  loadSessions(sessions);
}

async function changePassword(currentPassword, newPassword, progress, currentField) {
  const username = vault.username;
  const pre = await api("POST", "/prelogin", { username });
  const old = await deriveKeys(currentPassword, pre.salt, pre.kdf, progress, "Checking your current password…");
  try {
    const bundle = await api("GET", "/me/key-bundle");
    const start = await api("POST", "/me/password/start", {});
    const params = C.kdfParamsFromDict(start.kdf);
    const fresh = await C.deriveClientKeysInWorker(newPassword, C.b64decode(start.salt), params, (f) => progress.set(f, "Protecting your new password…"));
    try {
      const rewrapped = await C.rewrapKeyBundle(
        C.b64decode(bundle.key_bundle),
        { unlockKey: old.unlockKey, serverShare: C.b64decode(bundle.server_share), account: bundle.username },
        { unlockKey: fresh.unlockKey, serverShare: C.b64decode(start.server_share), account: bundle.username },
      );
      progress.set(1, "Saving…");
      await api("POST", "/me/password", {
        current_auth_key: C.b64encode(old.authKey),
        new_auth_key: C.b64encode(fresh.authKey),
        kdf: C.kdfParamsToDict(params),
        key_bundle: C.b64encode(rewrapped),
      });
    } finally {
      C.wipe(fresh.authKey, fresh.unlockKey);
    }
  } finally {
    C.wipe(old.authKey, old.unlockKey);
  }
  currentField.setError(null);
}

async function loadSessions(container) {
  try {
    const { sessions } = await api("GET", "/me/sessions");
    const list = h(
      "ul",
      { class: "session-list" },
      sessions.map((s) => {
        const end = s.current
          ? h("span", { class: "badge" }, "This device")
          : h(
              "button",
              {
                type: "button",
                class: "secondary",
                onclick: async () => {
                  await api("DELETE", `/me/sessions/${encodeURIComponent(s.id)}`, {});
                  announce("That session was ended.");
                  loadSessions(container);
                },
              },
              "End this session",
            );
        return h(
          "li",
          {},
          h("p", {}, h("strong", {}, s.user_agent ? describeAgent(s.user_agent) : "Unknown browser"), ` · from ${s.address}`),
          h("p", { class: "hint" }, `Logged in ${formatDateTime(new Date(s.created_at))} · last active ${formatDateTime(new Date(s.last_seen_at))}`),
          end,
        );
      }),
    );
    container.replaceChildren(list);
  } catch (exc) {
    container.replaceChildren(h("p", {}, `The list of sessions could not be loaded: ${exc.message}`));
  }
}

function describeAgent(ua) {
  const browser = /Edg\//.test(ua) ? "Edge" : /Chrom/.test(ua) ? "Chrome" : /Firefox\//.test(ua) ? "Firefox" : /Safari\//.test(ua) ? "Safari" : "A browser";
  const system = /Windows/.test(ua) ? "Windows" : /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iPhone or iPad" : /Mac OS/.test(ua) ? "Mac" : /Linux/.test(ua) ? "Linux" : "";
  return system ? `${browser} on ${system}` : browser;
}

// ---------------------------------------------------------------------------------- start

function wireNav() {
  nav.querySelector("[data-nav=records]").addEventListener("click", async () => {
    if (!vault) return;
    if (vault.doc) {
      showRecords();
      return;
    }
    const box = messageBox();
    main.append(box.el);
    try {
      await loadRecords();
    } catch (exc) {
      handleFailure(exc, { box });
    }
  });
  nav.querySelector("[data-nav=account]").addEventListener("click", () => showAccount());
  nav.querySelector("[data-nav=lock]").addEventListener("click", () => lock("manual"));
  nav.querySelector("[data-nav=logout]").addEventListener("click", () => logout());
}

/** An enrollment link (code in the fragment) opens registration; the code is then removed
 * from the address bar and the history. Returns whether it did. */
function enrollmentFromFragment() {
  const code = new URLSearchParams(window.location.hash.slice(1)).get(C.URL_FRAGMENT_KEY);
  if (code === null) return false;
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  showRegister(code);
  return true;
}

async function start() {
  wireNav();
  window.addEventListener("hashchange", () => enrollmentFromFragment());
  if (enrollmentFromFragment()) return;
  try {
    const me = await api("GET", "/me");
    lastUsername = me.username;
    showUnlock(me.username, null);
  } catch {
    showLogin();
  }
}

start();
