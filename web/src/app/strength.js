/**
 * A password strength estimate for the meter, self-contained (no network, no word list to
 * download). The password is read left to right; at each place the cheapest explanation an
 * attacker's guessing rules would find is charged: a common password or word (also in
 * "leet" spelling like p@ssw0rd), a year, a keyboard or alphabet run, a repeated character or
 * chunk, or else one character guessed on its own. Then a single word decorated with digits and
 * symbols ("Summer2024!") is capped at weak, whatever its length. A password must be at least
 * 10 characters and not "weak" to be accepted.
 */

// The most common passwords and the words they are built from (lower case, 4+ letters), plus
// the names of this service; a guesser tries these first.
const COMMON = [
  "password", "passwort", "passw0rd", "123456", "qwerty", "letmein", "welcome", "admin", "iloveyou",
  "monkey", "dragon", "football", "baseball", "soccer", "hockey", "basketball", "sunshine",
  "princess", "abc123", "111111", "master", "shadow", "superman", "batman", "spiderman",
  "trustno1", "starwars", "pokemon", "whatever", "freedom", "secret", "hello", "login", "access",
  "changeme", "default", "guest", "test", "user", "qazwsx", "zaq12wsx", "1q2w3e", "football1",
  "michael", "jennifer", "jordan", "hunter", "ranger", "buster", "charlie", "thomas", "robert",
  "daniel", "andrew", "jessica", "ashley", "michelle", "matthew", "joshua", "amanda", "nicole",
  "love", "lovely", "angel", "baby", "family", "mother", "father", "jesus", "blessed", "heaven",
  "summer", "winter", "spring", "autumn", "january", "february", "march", "april", "june",
  "july", "august", "september", "october", "november", "december", "monday", "tuesday",
  "wednesday", "thursday", "friday", "saturday", "sunday", "computer", "internet", "cheese",
  "chocolate", "cookie", "flower", "purple", "orange", "banana", "apple", "yankees", "liverpool",
  "chelsea", "arsenal", "america", "london", "secure", "private", "health", "doctor", "nurse",
  "medicine", "pharmacy", "pharmacist", "prescription", "rxvault", "portal", "records",
];

const SEQUENCES = [
  "abcdefghijklmnopqrstuvwxyz",
  "01234567890",
  "qwertyuiop",
  "asdfghjkl",
  "zxcvbnm",
  "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
  "qazwsxedcrfvtgbyhnujmikolp",
];

const LEET = { "@": "a", 4: "a", 8: "b", 3: "e", 1: "i", "!": "i", 0: "o", $: "s", 5: "s", 7: "t", "+": "t", 2: "z" };

export const MIN_LENGTH = 10;
export const LABELS = ["Very weak", "Weak", "Fair", "Good", "Strong"];

function charBits(c) {
  if (/[a-z]/.test(c)) return Math.log2(26);
  if (/[A-Z]/.test(c)) return Math.log2(26) + 1;
  if (/[0-9]/.test(c)) return Math.log2(10);
  if (c === " ") return 1;
  return 5;
}

/** Bits for the case of a matched word: none, first letter or all capitals, or mixed. */
function caseBits(text) {
  if (!/[A-Z]/.test(text)) return 0;
  if (/^[A-Z][^A-Z]*$/.test(text) || !/[a-z]/.test(text)) return 1;
  return text.length;
}

/** The longest cheap explanation of ``password`` from ``i``: [length, bits], or null. */
function bestMatch(password, lower, unleet, words, i) {
  let best = null;
  const offer = (length, bits) => {
    if (length >= 3 && (!best || length > best[0] || (length === best[0] && bits < best[1]))) best = [length, bits];
  };
  for (const [rank, word] of words.entries()) {
    const leet = unleet.startsWith(word, i) && !lower.startsWith(word, i);
    if (lower.startsWith(word, i) || leet) {
      const text = password.slice(i, i + word.length);
      offer(word.length, Math.log2(rank + 2) + caseBits(text) + (leet ? 2 : 0));
    }
  }
  // A year, like 1987 or 2024.
  if (/^(19|20)\d\d/.test(password.slice(i, i + 4))) offer(4, 7);
  // A keyboard or alphabet run, forwards or backwards.
  for (const seq of SEQUENCES) {
    for (const s of [seq, [...seq].reverse().join("")]) {
      let length = 0;
      const start = s.indexOf(lower[i]);
      if (start < 0) continue;
      while (i + length < lower.length && s[start + length] === lower[i + length]) length += 1;
      offer(length, 4 + Math.log2(length));
    }
  }
  // A repeated character, or a repeated chunk ("abcabc").
  for (let size = 1; size <= 4; size++) {
    const chunk = lower.slice(i, i + size);
    if (chunk.length < size) break;
    let length = size;
    while (lower.startsWith(chunk, i + length)) length += size;
    if (length >= 2 * size) offer(length, (size === 1 ? charBits(password[i]) : size * 4) + Math.log2(length / size));
  }
  return best;
}

/** An estimate, in bits, of how many guesses the password needs. */
export function passwordBits(password, hints = []) {
  const lower = password.toLowerCase();
  const unleet = [...lower].map((c) => LEET[c] ?? c).join("");
  const words = [...hints.map((h) => (h || "").toLowerCase()).filter((h) => h.length >= 3), ...COMMON];
  let bits = 0;
  let i = 0;
  while (i < password.length) {
    const match = bestMatch(password, lower, unleet, words, i);
    if (match) {
      bits += match[1];
      i += match[0];
    } else {
      bits += charBits(password[i]);
      i += 1;
    }
  }
  return bits;
}

/** A single word with digits or symbols around it (Password123!, Summer2024!, !!monkey99). */
function decoratedWord(password) {
  const m = /^[^A-Za-z\s]{0,6}([A-Za-z@$]{3,12})[^A-Za-z\s]{0,6}$/.exec(password);
  return m !== null;
}

export function passwordScore(password, hints = []) {
  if (!password) return 0;
  const bits = passwordBits(password, hints);
  let score = bits < 25 ? 0 : bits < 40 ? 1 : bits < 55 ? 2 : bits < 70 ? 3 : 4;
  if (decoratedWord(password)) score = Math.min(score, 1);
  if (password.length < MIN_LENGTH) score = Math.min(score, 1);
  return score;
}

export function passwordProblem(password, hints = []) {
  if (password.length < MIN_LENGTH) return `Use at least ${MIN_LENGTH} characters. A few unrelated words make a strong password that is easy to remember.`;
  if (passwordScore(password, hints) < 2) return "This password is too easy to guess. Add more words or characters.";
  return null;
}
