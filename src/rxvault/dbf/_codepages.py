"""Language-driver bytes (header offset 29) and their code pages, and fast text decoding tables.

The table combines the Visual FoxPro list (``CPCURRENT()`` / ``CPDBF()`` marks) and the dBase
language drivers. Marks with no Python codec (Kamenicky 0x68, Mazovia 0x69) and unknown marks map
to ``None``: such a table is read as ASCII unless a code page is given, so any byte above 0x7F is
reported instead of being guessed.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

#: language-driver byte -> (Python codec or None, description)
LANGUAGE_DRIVERS: dict[int, tuple[str | None, str]] = {
    0x00: (None, "no code page mark"),
    0x01: ("cp437", "U.S. MS-DOS"),
    0x02: ("cp850", "International MS-DOS"),
    0x03: ("cp1252", "Windows ANSI"),
    0x04: ("mac_roman", "Standard Macintosh"),
    0x08: ("cp865", "Danish OEM"),
    0x09: ("cp437", "Dutch OEM"),
    0x0A: ("cp850", "Dutch OEM (secondary)"),
    0x0B: ("cp437", "Finnish OEM"),
    0x0D: ("cp437", "French OEM"),
    0x0E: ("cp850", "French OEM (secondary)"),
    0x0F: ("cp437", "German OEM"),
    0x10: ("cp850", "German OEM (secondary)"),
    0x11: ("cp437", "Italian OEM"),
    0x12: ("cp850", "Italian OEM (secondary)"),
    0x13: ("cp932", "Japanese Shift-JIS"),
    0x14: ("cp850", "Spanish OEM (secondary)"),
    0x15: ("cp437", "Swedish OEM"),
    0x16: ("cp850", "Swedish OEM (secondary)"),
    0x17: ("cp865", "Norwegian OEM"),
    0x18: ("cp437", "Spanish OEM"),
    0x19: ("cp437", "English OEM (Britain)"),
    0x1A: ("cp850", "English OEM (Britain) (secondary)"),
    0x1B: ("cp437", "English OEM (U.S.)"),
    0x1C: ("cp863", "French OEM (Canada)"),
    0x1D: ("cp850", "French OEM (secondary)"),
    0x1F: ("cp852", "Czech OEM"),
    0x22: ("cp852", "Hungarian OEM"),
    0x23: ("cp852", "Polish OEM"),
    0x24: ("cp860", "Portuguese OEM"),
    0x25: ("cp850", "Portuguese OEM (secondary)"),
    0x26: ("cp866", "Russian OEM"),
    0x37: ("cp850", "English OEM (U.S.) (secondary)"),
    0x40: ("cp852", "Romanian OEM"),
    0x4D: ("cp936", "Chinese GBK (PRC)"),
    0x4E: ("cp949", "Korean (ANSI/OEM)"),
    0x4F: ("cp950", "Chinese Big5 (Taiwan)"),
    0x50: ("cp874", "Thai (ANSI/OEM)"),
    0x57: ("cp1252", "Current ANSI code page"),
    0x58: ("cp1252", "Western European ANSI"),
    0x59: ("cp1252", "Spanish ANSI"),
    0x64: ("cp852", "Eastern European MS-DOS"),
    0x65: ("cp866", "Russian MS-DOS"),
    0x66: ("cp865", "Nordic MS-DOS"),
    0x67: ("cp861", "Icelandic MS-DOS"),
    0x68: (None, "Kamenicky (Czech) MS-DOS (cp895, no codec)"),
    0x69: (None, "Mazovia (Polish) MS-DOS (cp620, no codec)"),
    0x6A: ("cp737", "Greek MS-DOS (437G)"),
    0x6B: ("cp857", "Turkish MS-DOS"),
    0x6C: ("cp863", "French-Canadian MS-DOS"),
    0x78: ("cp950", "Taiwan Big 5"),
    0x79: ("cp949", "Hangul (Wansung)"),
    0x7A: ("cp936", "PRC GBK"),
    0x7B: ("cp932", "Japanese Shift-JIS"),
    0x7C: ("cp874", "Thai Windows/MS-DOS"),
    0x7D: ("cp1255", "Hebrew Windows"),
    0x7E: ("cp1256", "Arabic Windows"),
    0x86: ("cp737", "Greek OEM"),
    0x87: ("cp852", "Slovenian OEM"),
    0x88: ("cp857", "Turkish OEM"),
    0x96: ("mac_cyrillic", "Russian Macintosh"),
    0x97: ("mac_latin2", "Eastern European Macintosh"),
    0x98: ("mac_greek", "Greek Macintosh"),
    0xC8: ("cp1250", "Eastern European Windows"),
    0xC9: ("cp1251", "Russian Windows"),
    0xCA: ("cp1254", "Turkish Windows"),
    0xCB: ("cp1253", "Greek Windows"),
    0xCC: ("cp1257", "Baltic Windows"),
}

_MULTIBYTE = {
    "cp932",
    "cp936",
    "cp949",
    "cp950",
    "gbk",
    "gb2312",
    "gb18030",
    "big5",
    "big5hkscs",
    "shift_jis",
    "euc_jp",
    "euc_kr",
    "utf-8",
    "utf_8",
    "johab",
}


def codepage_for(language_driver: int) -> tuple[str | None, str]:
    """The codec and description for a language-driver byte (``None`` if unknown)."""
    return LANGUAGE_DRIVERS.get(language_driver, (None, f"unknown mark 0x{language_driver:02X}"))


def normalize(codec: str) -> str:
    """The canonical Python name of a codec; raises LookupError if there is none."""
    return codecs.lookup(codec).name


@dataclass(frozen=True)
class ByteTable:
    """A single-byte code page as lookup tables: byte -> UTF-8 bytes (0 length = undefined)."""

    codec: str
    utf8_len: npt.NDArray[np.int64]  # (256,)
    utf8_bytes: npt.NDArray[np.uint8]  # (256, 3)


@cache
def byte_table(codec: str) -> ByteTable | None:
    """Lookup tables for a single-byte codec, or None for a multi-byte one."""
    name = normalize(codec)
    if name in _MULTIBYTE or name.replace("-", "_") in _MULTIBYTE:
        return None
    lengths = np.zeros(256, dtype=np.int64)
    table = np.zeros((256, 3), dtype=np.uint8)
    for byte in range(256):
        try:
            text = bytes([byte]).decode(name)
        except UnicodeDecodeError:
            continue
        if len(text) != 1:
            return None
        encoded = text.encode("utf-8")
        if len(encoded) > 3:
            return None
        lengths[byte] = len(encoded)
        table[byte, : len(encoded)] = np.frombuffer(encoded, dtype=np.uint8)
    return ByteTable(name, lengths, table)


REPLACEMENT = np.frombuffer("\ufffd".encode(), dtype=np.uint8)
