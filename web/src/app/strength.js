/**
 * A password strength estimate for the meter: length and variety, minus common patterns. A
 * password must be at least 10 characters and not "weak" to be accepted.
 */

const COMMON = [
  "password", "123456", "qwerty", "letmein", "welcome", "admin", "iloveyou", "monkey", "dragon",
  "football", "baseball", "sunshine", "princess", "abc123", "111111", "pharmacy", "rxvault",
];

export const MIN_LENGTH = 10;
export const LABELS = ["Very weak", "Weak", "Fair", "Good", "Strong"];

export function passwordScore(password, hints = []) {
  if (!password) return 0;
  const lower = password.toLowerCase();
  let bits = 0;
  let pool = 0;
  if (/[a-z]/.test(password)) pool += 26;
  if (/[A-Z]/.test(password)) pool += 26;
  if (/[0-9]/.test(password)) pool += 10;
  if (/[^A-Za-z0-9]/.test(password)) pool += 20;
  const unique = new Set(password).size;
  bits = Math.log2(Math.max(pool, 2)) * Math.min(password.length, unique * 2);
  for (const word of [...COMMON, ...hints.filter((h) => h && h.length >= 3)]) if (lower.includes(word.toLowerCase())) bits -= 20;
  if (/^(.)\1+$/.test(password)) bits = 0;
  if (/(0123|1234|2345|3456|4567|5678|6789|abcd|bcde|qwer)/i.test(password)) bits -= 10;
  if (password.length < MIN_LENGTH) return Math.min(1, bits >= 28 ? 1 : 0);
  if (bits < 40) return 1;
  if (bits < 55) return 2;
  if (bits < 70) return 3;
  return 4;
}

export function passwordProblem(password, hints = []) {
  if (password.length < MIN_LENGTH) return `Use at least ${MIN_LENGTH} characters. A few unrelated words make a strong password that is easy to remember.`;
  if (passwordScore(password, hints) < 2) return "This password is too easy to guess. Add more words or characters.";
  return null;
}
