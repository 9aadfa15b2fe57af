"""Measure compression of realistic patient documents: zlib (deflate) vs zstd, and padding.

Usage: .venv/bin/python tools/measure_compression.py [--zstd-path DIR]

zstd is not a dependency of rxvault; to include it, install ``zstandard`` into a scratch
directory (``uv pip install --target /tmp/zstd zstandard``) and pass ``--zstd-path /tmp/zstd``.
Prints a Markdown table (sizes in bytes, times in microseconds, median of repeated runs) that
docs/spec/format.md quotes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rxvault import format as fmt
from rxvault.format._canonical import canonical_json
from rxvault.format._padding import pad

DRUGS = [
    ("Atorvastatin", "20 mg", "tablet"),
    ("Lisinopril", "10 mg", "tablet"),
    ("Metformin", "500 mg", "tablet, extended release"),
    ("Amlodipine", "5 mg", "tablet"),
    ("Levothyroxine", "75 mcg", "tablet"),
    ("Omeprazole", "20 mg", "capsule, delayed release"),
    ("Sertraline", "50 mg", "tablet"),
    ("Albuterol", "90 mcg/actuation", "inhaler"),
    ("Gabapentin", "300 mg", "capsule"),
    ("Hydrochlorothiazide", "25 mg", "tablet"),
    ("Amoxicillin", "500 mg", "capsule"),
    ("Prednisone", "10 mg", "tablet"),
    ("Insulin glargine", "100 units/mL", "pen injector"),
    ("Warfarin", "5 mg", "tablet"),
]
PRESCRIBERS = ["Dr. Maria Gonzalez", "Dr. James O'Neil", "Dr. Aisha Rahman", "Dr. Paul Weber"]
SIGS = [
    "Take 1 tablet by mouth once daily",
    "Take 1 tablet by mouth twice daily with meals",
    "Inhale 2 puffs every 4 to 6 hours as needed for wheezing",
    "Take 1 capsule by mouth three times daily for 10 days",
    "Inject 20 units under the skin at bedtime",
]


def document(fills: int, seed: int) -> bytes:
    """A patient document shaped like the agent's: profile, allergies, prescriptions, fills."""
    rng = random.Random(seed)  # noqa: S311 -- seeded test data, not secrets
    prescriptions = []
    remaining = fills
    rx_number = 1_000_000 + rng.randrange(1_000_000)
    while remaining > 0:
        name, strength, form = rng.choice(DRUGS)
        count = min(remaining, rng.randint(1, 12))
        remaining -= count
        rx_number += rng.randint(1, 5000)
        year, month = 2018 + rng.randrange(7), rng.randint(1, 12)
        fill_list = []
        for index in range(count):
            month += 1
            if month > 12:
                year, month = year + 1, 1
            fill_list.append(
                {
                    "fill_date": f"{year:04d}-{month:02d}-{rng.randint(1, 28):02d}",
                    "quantity": rng.choice(["30", "60", "90", "1"]),
                    "days_supply": rng.choice([30, 90, 10]),
                    "refill_number": index,
                    "pharmacist": rng.choice(["KLM", "RTS", "ABP"]),
                    "price": f"{rng.randint(0, 9000) / 100:.2f}",
                }
            )
        prescriptions.append(
            {
                "rx_number": str(rx_number),
                "drug": name,
                "strength": strength,
                "form": form,
                "ndc": f"{rng.randrange(10**10):011d}",
                "sig": rng.choice(SIGS),
                "prescriber": rng.choice(PRESCRIBERS),
                "written_date": f"{year:04d}-01-15",
                "refills_authorized": rng.randint(0, 11),
                "refills_left": rng.randint(0, 5),
                "fills": fill_list,
            }
        )
    doc = {
        "format": 1,
        "patient": {
            "name": "Jane Q. Example",
            "birth_date": "1961-04-12",
            "address": "12 Harbour Street, Springfield",
            "phone": "555-0142",
        },
        "allergies": ["Penicillin", "Sulfa drugs"],
        "prescriptions": prescriptions,
    }
    return canonical_json(doc)


def median_us(func: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zstd-path", help="directory holding the zstandard package")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    codecs: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
        "zlib-6": (lambda d: zlib.compress(d, 6), zlib.decompress),
        "zlib-9": (lambda d: zlib.compress(d, 9), zlib.decompress),
    }
    if args.zstd_path:
        sys.path.insert(0, args.zstd_path)
        import zstandard

        for level in (3, 19):
            compressor = zstandard.ZstdCompressor(level=level)
            decompressor = zstandard.ZstdDecompressor()
            codecs[f"zstd-{level}"] = (compressor.compress, decompressor.decompress)

    print(
        "| fills | JSON bytes | "
        + " | ".join(f"{n} bytes / comp us / decomp us" for n in codecs)
        + " | bucket (zlib-9) |"
    )
    print("|---:|---:|" + "---:|" * len(codecs) + "---:|")
    for fills in (10, 50, 100, 250, 500, 1000, 2000):
        doc = document(fills, seed=fills)
        cells = [str(fills), str(len(doc))]
        for comp, decomp in codecs.values():
            packed = comp(doc)
            assert decomp(packed) == doc
            cells.append(
                f"{len(packed)} / {median_us(lambda c=comp, d=doc: c(d), args.repeat):.0f} / "
                f"{median_us(lambda d=decomp, p=packed: d(p), args.repeat):.0f}"
            )
        cells.append(str(len(pad(zlib.compress(doc, 9)))))
        print("| " + " | ".join(cells) + " |")
    print()
    print_block_timings(args.repeat)


def print_block_timings(repeat: int) -> None:
    """Whole-block operations as the agent, the server and the browser run them."""
    pharmacy = fmt.PharmacyKey.from_private_bytes(bytes(32))
    private, public = fmt.generate_patient_keypair()
    handle = "ab" * 16
    print("| fills | block bytes | seal us | verify us | open us |")
    print("|---:|---:|---:|---:|---:|")
    for fills in (10, 100, 500, 2000):
        doc = document(fills, seed=fills)

        def seal(d: bytes = doc) -> bytes:
            return fmt.seal_block(
                d,
                pharmacy_key=pharmacy,
                handle=handle,
                version=1,
                as_of=datetime.now(UTC),
                recipient_public_key=public,
            )

        envelope = seal()
        seal_us = median_us(seal, repeat)
        verify_us = median_us(
            lambda e=envelope: fmt.verify_block(e, pharmacy.public_bytes()), repeat
        )
        open_us = median_us(
            lambda e=envelope: fmt.open_block(
                e,
                recipient_private_key=private,
                pharmacy_public_key=pharmacy.public_bytes(),
                expected_handle=handle,
            ),
            repeat,
        )
        print(f"| {fills} | {len(envelope)} | {seal_us:.0f} | {verify_us:.0f} | {open_us:.0f} |")


if __name__ == "__main__":
    main()
