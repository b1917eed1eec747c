"""Generate a corpus of hostile documents for ``/v1/ocr`` (nothing binary is committed).

    python scripts/hostile_corpus.py OUT_DIR [--seed 11] [--mutants 300]

Writes one file per case into OUT_DIR and prints one line per file. Cases:

- bombs: a 60000×60000 PNG (1-bit, ~440 KB), a PDF whose page content is a
  1 GiB Flate stream (~1 MB), a PDF with a 14400 pt MediaBox (a few hundred
  bytes), a 5,000-page PDF (over any sane page limit);
- byte-level mutants of small valid PNG, JPEG, TIFF, BMP, WebP and PDF files
  (truncations, flipped bytes, duplicated and deleted runs), drawn from a
  fixed seed so a run can be repeated.

Every one must get a 2xx or a JSON 4xx, and none may move the gateway's memory.
Needs Pillow (the test environment has it); the PDFs are written by hand.
"""

import argparse
import io
import random
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Case:
    name: str
    path: Path
    kind: str  # "bomb", "pages", "mutant", "valid"


# -- hand-written PDFs ----------------------------------------------------

def pdf(objects: list[bytes]) -> bytes:
    """A PDF from numbered object bodies (object 1 must be the catalog), with a correct xref."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def text_pdf(pages: int, width: float = 300, height: float = 150, content: bytes | None = None) -> bytes:
    """``pages`` pages sharing one content stream (Helvetica text)."""
    content = content or b"BT /F1 24 Tf 20 60 Td (Hostile corpus page) Tj ET"
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        stream(content),
    ]
    for _ in range(pages):
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /Contents 4 0 R "
                       b"/Resources << /Font << /F1 3 0 R >> >> >>" % (width, height))
    return pdf(objects)


def flate_bomb_pdf(size: int = 2**30) -> bytes:
    """One page whose content stream inflates to ``size`` bytes of whitespace."""
    z = zlib.compressobj(9)
    block = b" " * 2**24
    parts = [z.compress(block) for _ in range(size // len(block))]
    parts.append(z.flush())
    data = b"".join(parts)
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        stream(data, b"/Filter /FlateDecode"),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R >>",
    ])


# -- hand-written PNG ------------------------------------------------------

def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(side: int = 60000) -> bytes:
    """A valid 1-bit greyscale PNG of side×side white pixels: tiny on disk, side² pixels decoded."""
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    z = zlib.compressobj(9)
    rows_per_block = max(1, 2**22 // len(row))
    block = row * rows_per_block
    parts, done = [], 0
    while done < side:
        n = min(rows_per_block, side - done)
        parts.append(z.compress(block if n == rows_per_block else row * n))
        done += n
    parts.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(parts)) + \
        png_chunk(b"IEND", b"")


# -- valid seeds and their mutants ---------------------------------------------

def seeds() -> dict[str, bytes]:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (240, 80), "white")
    ImageDraw.Draw(image).text((10, 30), "Hostile corpus seed", fill="black")
    out = {}
    for fmt, ext in (("PNG", "png"), ("JPEG", "jpg"), ("TIFF", "tif"), ("BMP", "bmp"), ("WEBP", "webp")):
        buf = io.BytesIO()
        image.save(buf, format=fmt)
        out[ext] = buf.getvalue()
    out["pdf"] = text_pdf(2)
    buf = io.BytesIO()
    image.save(buf, format="PDF", save_all=True, append_images=[image])
    out["pil.pdf"] = buf.getvalue()
    return out


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One byte-level mutant: the mutation's name and the bytes."""
    how = rng.choice(["truncate", "flip", "flip", "run", "duplicate", "delete", "zero_tail"])
    b = bytearray(data)
    if how == "truncate":
        return how, bytes(b[: rng.randrange(1, len(b))])
    if how == "flip":
        for _ in range(rng.randint(1, 12)):
            # keep the first bytes (the signature) most of the time, so the decoders see the mutant
            b[rng.randrange(8 if len(b) > 16 and rng.random() < 0.9 else 0, len(b))] = rng.randrange(256)
        return how, bytes(b)
    start = rng.randrange(8, len(b)) if len(b) > 8 else 0
    length = rng.randint(1, max(1, min(512, len(b) - start)))
    if how == "run":
        b[start:start + length] = bytes([rng.randrange(256)]) * length
    elif how == "duplicate":
        b[start:start] = b[start:start + length] * rng.randint(2, 50)
    elif how == "delete":
        del b[start:start + length]
    else:
        b[start:] = b"\x00" * (len(b) - start)
    return how, bytes(b)


def generate(out: Path, seed: int = 11, mutants: int = 300, bombs: bool = True) -> list[Case]:
    out.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def write(name: str, data: bytes, kind: str) -> None:
        path = out / name
        path.write_bytes(data)
        cases.append(Case(name, path, kind))

    if bombs:
        write("bomb-60000x60000.png", png_bomb(), "bomb")
        write("bomb-flate-1gib.pdf", flate_bomb_pdf(), "bomb")
    write("bomb-mediabox-14400pt.pdf", text_pdf(1, 14400, 14400), "bomb")
    write("bomb-mediabox-1e9pt.pdf", text_pdf(1, 1e9, 1e9), "bomb")
    write("pages-5000.pdf", text_pdf(5000), "pages")
    rng = random.Random(seed)
    valid = seeds()
    for ext, data in valid.items():
        write(f"valid.{ext}", data, "valid")
    names = sorted(valid)
    for i in range(mutants):
        ext = names[i % len(names)]
        how, data = mutate(valid[ext], rng)
        write(f"mutant-{i:03d}-{how}.{ext}", data, "mutant")
    return cases


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--mutants", type=int, default=300)
    args = parser.parse_args(argv)
    for case in generate(args.out, args.seed, args.mutants):
        print(f"{case.kind:7} {case.path.stat().st_size:>10} {case.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
