/**
 * Canonical JSON (docs/spec/canonical-json.md): a strict subset of RFC 8785. Mirrors
 * rxvault.format._canonical: integers only (|n| <= 2**53 - 1), members sorted by UTF-16 code
 * units, no duplicate names, no lone surrogates, no whitespace, nesting at most 64 deep.
 */

import { MalformedObject } from "./errors.js";

export const MAX_SAFE_INTEGER = 2 ** 53 - 1;
const MAX_DEPTH = 64;
const ESCAPES = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function encodeString(value, out) {
  out.push('"');
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    const code = value.charCodeAt(i);
    if (ESCAPES[ch] !== undefined) out.push(ESCAPES[ch]);
    else if (code < 0x20) out.push("\\u" + code.toString(16).padStart(4, "0"));
    else if (code >= 0xd800 && code <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) throw new Error("canonical JSON: lone surrogate");
      out.push(ch + value[i + 1]);
      i++;
    } else if (code >= 0xdc00 && code <= 0xdfff) throw new Error("canonical JSON: lone surrogate");
    else out.push(ch);
  }
  out.push('"');
}

function compareUtf16(a, b) {
  return a < b ? -1 : a > b ? 1 : 0; // JS strings compare by UTF-16 code units
}

function encodeValue(value, out, depth) {
  if (depth > MAX_DEPTH) throw new Error("canonical JSON: nesting deeper than 64 levels");
  if (value === null) out.push("null");
  else if (value === true) out.push("true");
  else if (value === false) out.push("false");
  else if (typeof value === "number") {
    if (!Number.isInteger(value) || Math.abs(value) > MAX_SAFE_INTEGER)
      throw new Error("canonical JSON: only integers within +-(2**53 - 1)");
    out.push(String(value === 0 ? 0 : value));
  } else if (typeof value === "string") encodeString(value, out);
  else if (Array.isArray(value)) {
    out.push("[");
    value.forEach((item, index) => {
      if (index) out.push(",");
      encodeValue(item, out, depth + 1);
    });
    out.push("]");
  } else if (typeof value === "object") {
    out.push("{");
    Object.keys(value)
      .sort(compareUtf16)
      .forEach((name, index) => {
        if (index) out.push(",");
        encodeString(name, out);
        out.push(":");
        encodeValue(value[name], out, depth + 1);
      });
    out.push("}");
  } else throw new Error(`canonical JSON: cannot encode ${typeof value}`);
}

/** Encode a value as canonical JSON bytes (throws Error outside the subset). */
export function canonicalJson(value) {
  const out = [];
  encodeValue(value, out, 0);
  return new TextEncoder().encode(out.join(""));
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Strict JSON: UTF-8, no duplicate names, integers only. Throws MalformedObject. */
export function parseJson(bytes) {
  let text;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new MalformedObject("not valid JSON: invalid UTF-8");
  }
  let pos = 0;
  const fail = (why) => {
    throw new MalformedObject(`not valid JSON: ${why} at offset ${pos}`);
  };
  const ws = () => {
    while (pos < text.length && " \t\n\r".includes(text[pos])) pos++;
  };
  const parseString = () => {
    pos++; // opening quote
    let out = "";
    for (;;) {
      if (pos >= text.length) fail("unterminated string");
      const ch = text[pos];
      const code = text.charCodeAt(pos);
      if (ch === '"') {
        pos++;
        return out;
      }
      if (code < 0x20) fail("control character in string");
      if (ch === "\\") {
        const e = text[pos + 1];
        const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
        if (simple[e] !== undefined) {
          out += simple[e];
          pos += 2;
        } else if (e === "u") {
          const hex = text.substr(pos + 2, 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape");
          out += String.fromCharCode(parseInt(hex, 16));
          pos += 6;
        } else fail("bad escape");
      } else {
        out += ch;
        pos++;
      }
    }
  };
  const parseNumber = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(pos));
    if (!m) fail("bad number");
    if (m[2] !== undefined || m[3] !== undefined) throw new MalformedObject(`JSON number ${m[0]} is not an integer`);
    pos += m[0].length;
    const value = Number(m[0]);
    if (Math.abs(value) > MAX_SAFE_INTEGER) throw new MalformedObject(`integer ${m[0]} outside +-(2**53 - 1)`);
    return value;
  };
  const parseValue = (depth) => {
    if (depth > 512) fail("nesting too deep");
    ws();
    const ch = text[pos];
    if (ch === "{") {
      pos++;
      const obj = {};
      const seen = new Set();
      ws();
      if (text[pos] === "}") {
        pos++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[pos] !== '"') fail("expected a member name");
        const name = parseString();
        if (seen.has(name)) throw new MalformedObject(`JSON object has the member ${JSON.stringify(name)} twice`);
        seen.add(name);
        ws();
        if (text[pos] !== ":") fail("expected ':'");
        pos++;
        Object.defineProperty(obj, name, { value: parseValue(depth + 1), enumerable: true, writable: true, configurable: true });
        ws();
        if (text[pos] === ",") pos++;
        else if (text[pos] === "}") {
          pos++;
          return obj;
        } else fail("expected ',' or '}'");
      }
    }
    if (ch === "[") {
      pos++;
      const arr = [];
      ws();
      if (text[pos] === "]") {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(parseValue(depth + 1));
        ws();
        if (text[pos] === ",") pos++;
        else if (text[pos] === "]") {
          pos++;
          return arr;
        } else fail("expected ',' or ']'");
      }
    }
    if (ch === '"') return parseString();
    if (text.startsWith("true", pos)) {
      pos += 4;
      return true;
    }
    if (text.startsWith("false", pos)) {
      pos += 5;
      return false;
    }
    if (text.startsWith("null", pos)) {
      pos += 4;
      return null;
    }
    if (ch === "-" || (ch >= "0" && ch <= "9")) return parseNumber();
    return fail("unexpected character");
  };
  const value = parseValue(0);
  ws();
  if (pos !== text.length) fail("trailing data");
  return value;
}

/** Parse and require exactly the canonical encoding. Throws MalformedObject. */
export function parseCanonicalJson(bytes) {
  const value = parseJson(bytes);
  let again;
  try {
    again = canonicalJson(value);
  } catch (exc) {
    throw new MalformedObject(exc.message);
  }
  if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i]))
    throw new MalformedObject("JSON is not in canonical form");
  return value;
}
