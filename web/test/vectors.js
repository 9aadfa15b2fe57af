/**
 * Runs the language-neutral vectors (vectors/*.json) against the portal's crypto in the browser.
 * tests/browser/test_vectors.py loads this page, passes each file's JSON to runVectorFile and
 * compares every outcome with the case's expected result.
 */

import { parseCanonicalJson, canonicalJson } from "../src/crypto/canonical.js";
import { fromHex, toHex } from "../src/crypto/primitives.js";
import { importPharmacyKey, patientPublicKey, pharmacyId, importPatientPrivateKey } from "../src/crypto/keys.js";
import { patientHandle } from "../src/crypto/handle.js";
import { sealBlockFromParts, verifyBlock, openBlock } from "../src/crypto/envelope.js";
import { recipientKeyPair, suite, ephemeralKeyPair } from "../src/crypto/hpke.js";
import { makeTombstone, verifyTombstone } from "../src/crypto/tombstone.js";
import { makeBatch, verifyBatch } from "../src/crypto/batch.js";
import * as stm from "../src/crypto/statement.js";
import * as kdf from "../src/crypto/kdf.js";
import { bundleKey, wrapKeyBundleFromParts, unwrapKeyBundleBytes } from "../src/crypto/bundle.js";
import * as enr from "../src/crypto/enrollment.js";
import { decompress } from "../src/crypto/padding.js";
import { FormatError } from "../src/crypto/errors.js";

const when = (text) => new Date(text);
const stamp = (date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");
const headerDict = (h) => ({
  pharmacy_id: h.pharmacy_id,
  handle: h.handle,
  version: h.version,
  as_of: stamp(h.as_of),
  suite: h.suite,
  padded_length: h.padded_length,
});

async function outcome(func) {
  try {
    return { result: "success", ...(await func()) };
  } catch (exc) {
    if (exc instanceof FormatError) return { result: "error", error: exc.name, message: exc.message };
    return { result: "exception", error: `${exc.name}: ${exc.message}` };
  }
}

function resolver(files, data) {
  return (ref, output) => {
    if (ref.envelope_hex || ref[`${output}_hex`]) return fromHex(ref.envelope_hex || ref[`${output}_hex`]);
    const source = (ref.file ? files[ref.file] : data).cases.find((c) => c.id === ref.of_case);
    const base = fromHex(source.expected[`${output}_hex`]);
    if (ref.flip_bit !== undefined) {
      const out = base.slice();
      out[ref.flip_bit >> 3] ^= 1 << (ref.flip_bit % 8);
      return out;
    }
    if (ref.truncate_to !== undefined) return base.slice(0, ref.truncate_to);
    if (ref.append_hex !== undefined) {
      const extra = fromHex(ref.append_hex);
      const out = new Uint8Array(base.length + extra.length);
      out.set(base);
      out.set(extra, base.length);
      return out;
    }
    if (ref.replace !== undefined) {
      const out = base.slice();
      out.set(fromHex(ref.replace.hex), ref.replace.offset);
      return out;
    }
    return base;
  };
}

const RUNNERS = {
  async "canonical_json.json"(c) {
    if (c.operation === "encode") return outcome(async () => ({ canonical: new TextDecoder().decode(canonicalJson(c.value)) }));
    return outcome(async () => ({ value: parseCanonicalJson(fromHex(c.input_hex)) }));
  },
  async "identifiers.json"(c) {
    if (c.operation === "pharmacy_id")
      return outcome(async () => {
        const key = await importPharmacyKey(fromHex(c.ed25519_private_key));
        return { public_key: toHex(key.publicKey), pharmacy_id: await pharmacyId(key.publicKey) };
      });
    if (c.operation === "x25519_public_key")
      return outcome(async () => ({ public_key: toHex(await patientPublicKey(fromHex(c.x25519_private_key))) }));
    return outcome(async () => ({ handle: await patientHandle(fromHex(c.handle_secret), c.patient_id) }));
  },
  async "block.json"(c, data, resolve, key) {
    if (c.operation === "seal") {
      const compressed = fromHex(c.compressed_hex);
      const inflated = new TextDecoder().decode(await decompress(compressed));
      if (inflated !== c.document) return { result: "exception", error: "compressed_hex does not inflate to document" };
      return outcome(async () => {
        const envelope = await sealBlockFromParts(compressed, {
          pharmacyKey: await importPharmacyKey(key(c.pharmacy_private_key)),
          handle: data.keys[c.handle],
          version: c.version,
          asOf: when(c.as_of),
          recipientPublicKey: key(c.recipient_public_key),
          ephemeralPrivateKey: fromHex(c.ephemeral_private_key),
        });
        const header = await verifyBlock(envelope, key("pharmacy_public_key"));
        return { envelope_hex: toHex(envelope), header: headerDict(header) };
      });
    }
    const envelope = resolve(c.envelope, "envelope");
    if (c.operation === "open")
      return outcome(async () => {
        const privateBytes = key(c.recipient_private_key);
        const recipient = await recipientKeyPair(await importPatientPrivateKey(privateBytes), await patientPublicKey(privateBytes));
        const opened = await openBlock(envelope, {
          recipient,
          pharmacyPublicKey: key(c.pharmacy_public_key),
          expectedHandle: data.keys[c.expected_handle],
          minVersion: c.min_version,
        });
        return { header: headerDict(opened.header), document: new TextDecoder("utf-8", { fatal: true }).decode(opened.document) };
      });
    return outcome(async () => ({ header: headerDict(await verifyBlock(envelope, key(c.pharmacy_public_key))) }));
  },
  async "tombstone.json"(c, data, resolve, key) {
    if (c.operation === "make")
      return outcome(async () => ({
        tombstone_hex: toHex(
          await makeTombstone({
            pharmacyKey: await importPharmacyKey(key(c.pharmacy_private_key)),
            handle: data.keys[c.handle],
            version: c.version,
            deletedAt: when(c.deleted_at),
          }),
        ),
      }));
    const tombstone = resolve(c.tombstone, "tombstone");
    return outcome(async () => {
      const h = await verifyTombstone(tombstone, key(c.pharmacy_public_key));
      return { pharmacy_id: h.pharmacy_id, handle: h.handle, version: h.version, deleted_at: stamp(h.deleted_at) };
    });
  },
  async "batch.json"(c, data, resolve, key) {
    if (c.operation === "make")
      return outcome(async () => ({
        batch_hex: toHex(
          await makeBatch({
            pharmacyKey: await importPharmacyKey(key(c.pharmacy_private_key)),
            batchId: c.batch_id,
            blocks: c.blocks.map((r) => resolve(r, "envelope")),
            tombstones: c.tombstones.map((r) => resolve(r, "tombstone")),
            createdAt: when(c.created_at),
          }),
        ),
      }));
    const bytes = resolve(c.batch, "batch");
    return outcome(async () => {
      const b = await verifyBatch(bytes, key(c.pharmacy_public_key));
      return {
        batch_id: b.batchId,
        pharmacy_id: b.pharmacyId,
        created_at: stamp(b.createdAt),
        block_handles: b.blocks.map(([h]) => h.handle),
        tombstone_handles: b.tombstones.map(([h]) => h.handle),
        digest: toHex(b.digest),
      };
    });
  },
  async "password.json"(c) {
    if (c.operation === "derive_client_keys")
      return outcome(async () => {
        const params = kdf.kdfParamsFromDict(c.params);
        const master = await kdf.deriveMasterKey(c.password, fromHex(c.salt), params);
        const keys = await kdf.clientKeysFromMaster(master);
        return { master_key: toHex(master), auth_key: toHex(keys.authKey), unlock_key: toHex(keys.unlockKey) };
      });
    if (c.operation === "check_params") return outcome(async () => ({ params: kdf.kdfParamsToDict(kdf.kdfParamsFromDict(c.params)) }));
    if (c.operation === "server_derivations")
      return outcome(async () => {
        const [pepper, salt, authKey] = [c.pepper, c.salt, c.auth_key].map(fromHex);
        const verifier = await kdf.authVerifier(pepper, salt, authKey);
        if (!(await kdf.checkAuth(pepper, salt, authKey, verifier))) throw new Error("check_auth refused the right key");
        if (await kdf.checkAuth(pepper, salt, new Uint8Array(32), verifier)) throw new Error("check_auth accepted a wrong key");
        return { auth_verifier: toHex(verifier), server_key_share: toHex(await kdf.serverKeyShare(pepper, salt)) };
      });
    return outcome(async () => ({ salt: toHex(await kdf.decoySalt(fromHex(c.pepper), c.username)) }));
  },
  async "key_bundle.json"(c, data, resolve) {
    const [unlockKey, serverShare] = [fromHex(c.unlock_key), fromHex(c.server_share)];
    if (c.operation === "wrap")
      return outcome(async () => ({
        wrapping_key: toHex(await bundleKey(unlockKey, serverShare)),
        bundle_hex: toHex(
          await wrapKeyBundleFromParts({
            unlockKey,
            serverShare,
            account: c.account,
            patientPrivateKey: fromHex(c.patient_private_key),
            pharmacyPublicKey: fromHex(c.pharmacy_public_key),
            nonce: fromHex(c.nonce),
          }),
        ),
      }));
    const bundle = resolve(c.bundle, "bundle");
    return outcome(async () => {
      const r = await unwrapKeyBundleBytes(bundle, { unlockKey, serverShare, account: c.account });
      return {
        patient_private_key: toHex(r.patientPrivateKey),
        patient_public_key: toHex(r.patientPublicKey),
        pharmacy_public_key: toHex(r.pharmacyPublicKey),
      };
    });
  },
  async "enrollment.json"(c, data, resolve, key) {
    if (c.operation === "derive")
      return outcome(async () => {
        const code = enr.enrollmentCodeFromSecret(fromHex(c.secret));
        const d = await enr.deriveEnrollment(code);
        if (toHex(enr.parseEnrollmentCode(code.text).secret) !== c.secret) throw new Error("text does not parse back");
        return {
          text: code.text,
          compact: code.compact,
          url: enr.enrollmentUrl(c.base_url, code),
          lookup_id: d.lookupId,
          binding_key: toHex(d.bindingKey),
          pin_key: toHex(d.pinKey),
          pin_tag: toHex(await enr.pinTag(code, key(c.pharmacy_public_key))),
          binding_mac: toHex(await enr.bindingMac(d.bindingKey, data.keys[c.handle], key(c.patient_public_key))),
        };
      });
    if (c.operation === "parse") return outcome(async () => ({ secret: toHex(enr.parseEnrollmentCode(c.input).secret) }));
    const source = data.cases.find((s) => s.id === c.of_case);
    const code = enr.enrollmentCodeFromSecret(fromHex(source.secret));
    if (c.operation === "verify_binding")
      return outcome(async () => {
        const d = await enr.deriveEnrollment(code);
        await enr.verifyBinding(d.bindingKey, data.keys[c.handle], key(c.patient_public_key), fromHex(c.mac));
        return {};
      });
    return outcome(async () => {
      await enr.verifyPinTag(code, key(c.pharmacy_public_key), fromHex(c.tag));
      return {};
    });
  },
  async "statement.json"(c, data, resolve, key) {
    if (c.operation === "tree")
      return outcome(async () => {
        const tree = await stm.merkleTree(c.leaves);
        const paths = [];
        for (let i = 0; i < c.leaves.length; i++) paths.push(tree.proof(i).map(toHex));
        return { leaf_hashes: (await Promise.all(c.leaves.map(stm.leafHash))).map(toHex), root: toHex(tree.root), paths };
      });
    if (c.operation === "make")
      return outcome(async () => ({
        statement_hex: toHex(
          await stm.makeStatement({
            pharmacyKey: await importPharmacyKey(key(c.pharmacy_private_key)),
            seq: c.seq,
            asOf: when(c.as_of),
            leaves: data.cases.find((s) => s.id === c.leaves.of_case).leaves,
          }),
        ),
      }));
    if (c.operation === "verify")
      return outcome(async () => {
        const s = await stm.verifyStatement(resolve(c.statement, "statement"), key(c.pharmacy_public_key));
        return { pharmacy_id: s.pharmacy_id, seq: s.seq, as_of: stamp(s.as_of), size: s.size, root: toHex(s.root) };
      });
    if (c.operation === "verify_inclusion") {
      const statement = await stm.verifyStatement(resolve(c.statement, "statement"), key("pharmacy_public_key"));
      return outcome(async () => {
        await stm.verifyInclusion(statement, c.leaf, c.index, c.path.map(fromHex));
        return {};
      });
    }
    return outcome(async () => {
      stm.checkNotWithheld(c.leaf, c.served_version);
      return {};
    });
  },
};

/** Every case's outcome, in order: {result: "success", ...} or {result: "error", error}. */
async function runVectorFile(name, files) {
  const data = files[name];
  const runner = RUNNERS[name];
  if (!runner) throw new Error(`no runner for ${name}`);
  const resolve = resolver(files, data);
  const key = (n) => fromHex(data.keys[n]);
  const out = [];
  for (const c of data.cases) out.push(await runner(c, data, resolve, key));
  return out;
}

/** RFC 9180 A.1.1 through @hpke/core: returns a list of mismatches (empty when all agree). */
async function runRfc9180(file) {
  const problems = [];
  const kem = suite.kem;
  for (const v of file.vectors) {
    const check = (what, got, want) => {
      if (got !== want) problems.push(`${what}: got ${got}, expected ${want}`);
    };
    const pairE = await kem.deriveKeyPair(fromHex(v.ikmE));
    const pairR = await kem.deriveKeyPair(fromHex(v.ikmR));
    check("pkEm", toHex(new Uint8Array(await kem.serializePublicKey(pairE.publicKey))), v.pkEm);
    check("pkRm", toHex(new Uint8Array(await kem.serializePublicKey(pairR.publicKey))), v.pkRm);
    const ekm = await ephemeralKeyPair(fromHex(v.skEm));
    const sender = await suite.createSenderContext({
      recipientPublicKey: await kem.deserializePublicKey(fromHex(v.pkRm)),
      info: fromHex(v.info),
      ekm,
    });
    check("enc", toHex(new Uint8Array(sender.enc)), v.enc);
    const wanted = new Map(v.encryptions.map((e) => [e.sequence_number, e]));
    const last = Math.max(...wanted.keys());
    for (let seq = 0; seq <= last; seq++) {
      const e = wanted.get(seq);
      const ct = new Uint8Array(await sender.seal(fromHex(e ? e.plaintext : ""), fromHex(e ? e.aad : "")));
      if (e) check(`ciphertext ${seq}`, toHex(ct), e.ciphertext);
    }
    for (const x of v.exports)
      check(`export ${x.exporter_context}`, toHex(new Uint8Array(await sender.export(fromHex(x.exporter_context), x.L))), x.exported_value);
    const skR = fromHex(v.skRm);
    const recipient = await recipientKeyPair(await importPatientPrivateKey(skR), await patientPublicKey(skR));
    const first = v.encryptions[0];
    const opened = await suite.open({ recipientKey: recipient, enc: fromHex(v.enc), info: fromHex(v.info) }, fromHex(first.ciphertext), fromHex(first.aad));
    check("open", toHex(new Uint8Array(opened)), first.plaintext);
    let refused = false;
    try {
      await suite.open({ recipientKey: recipient, enc: fromHex(v.enc), info: fromHex(v.info) }, fromHex(first.ciphertext), new Uint8Array(0));
    } catch {
      refused = true;
    }
    if (!refused) problems.push("open with the wrong aad did not fail");
  }
  return problems;
}

window.rxvaultVectors = { runVectorFile, runRfc9180 };
document.body.dataset.ready = "yes";
