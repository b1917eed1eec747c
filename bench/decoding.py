"""The cost of decoding documents out of process, and the speed-up of parallel page rendering.

    python -m bench.decoding [--pages 12] [--rounds 7] [--decoders 1,2,4]

Side by side in one run, on the same files:

- in process: the decoding steps called in a thread of this process, as the
  gateway used to (Pillow's header check and PNG verify; pdfium open, render,
  PNG save), through the very class the decoder process runs;
- out of process: the same steps through a ``DecoderPool`` (a frame each way
  over a pipe, the decoder already started).

Reports the median added ms per image check and per PDF page, and the wall
time to render every page of a multi-page PDF with 1 decoder against N.
"""

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from venvserve.decode.child import Decoder
from venvserve.decode.limits import DecoderLimits
from venvserve.decode.pool import DecoderPool
from venvserve.decode.process import DecoderProcess

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def make_inputs(folder: Path, pages: int) -> tuple[Path, Path]:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, 28) if os.path.exists(FONT) else ImageFont.load_default()
    images = []
    for p in range(pages):
        image = Image.new("RGB", (1700, 2200), "white")  # a letter page at 200 dpi
        draw = ImageDraw.Draw(image)
        for line in range(40):
            draw.text((120, 120 + line * 48), f"Page {p + 1}, line {line + 1}: the quick brown fox jumps", fill="black",
                      font=font)
        images.append(image)
    png = folder / "page.png"
    images[0].save(png)
    pdf = folder / "doc.pdf"
    images[0].save(pdf, "PDF", save_all=True, append_images=images[1:], resolution=200.0)
    return png, pdf


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (this one included by the caller)."""
    import psutil

    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


async def round_trip(rounds: int = 300) -> float:
    """Median wall time of one frame each way with a decoder that does nothing (``close`` with no PDF)."""
    decoder = await DecoderProcess.spawn(DecoderLimits())
    try:
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            await decoder.request({"op": "close"}, 10)
            times.append(time.perf_counter() - t)
        return statistics.median(times)
    finally:
        await decoder.close()


async def cpu_per_page(pool: DecoderPool | None, decoder: Decoder, pdf: Path, out: Path, pages: int, dpi: int) -> float:
    """CPU seconds (this process + the decoders) to render every page once, per page."""
    pids = [os.getpid()] + (pool.pids() if pool else [])
    before = cpu_s(pids)
    if pool is None:
        decoder.close()
        await asyncio.to_thread(decoder.open, str(pdf), 1000)
        for i in range(pages):
            await asyncio.to_thread(decoder.render, str(pdf), i, str(out / f"cpu-{i}.png"), dpi, 60_000_000)
    else:
        await pool.release(pdf)
        await pool.count_pages(pdf, 1000)
        for i in range(pages):
            await pool.render(pdf, i, out / f"cpu-{i}.png", dpi)
    return (cpu_s(pids) - before) / pages


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


async def in_process(decoder: Decoder, png: Path, pdf: Path, out: Path, pages: int, dpi: int, rounds: int):
    image, page = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        await asyncio.to_thread(decoder.image, str(png), 60_000_000)
        image.append(time.perf_counter() - t)
        decoder.close()
        t = time.perf_counter()
        await asyncio.to_thread(decoder.open, str(pdf), 1000)
        for i in range(pages):
            await asyncio.to_thread(decoder.render, str(pdf), i, str(out / f"in-{i}.png"), dpi, 60_000_000)
        page.append((time.perf_counter() - t) / pages)
    return statistics.median(image), statistics.median(page)


async def out_of_process(pool: DecoderPool, png: Path, pdf: Path, out: Path, pages: int, dpi: int, rounds: int):
    image, page = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        await pool.check_image(png)
        image.append(time.perf_counter() - t)
        await pool.release(pdf)
        t = time.perf_counter()
        await pool.count_pages(pdf, 1000)
        for i in range(pages):
            await pool.render(pdf, i, out / f"out-{i}.png", dpi)
        page.append((time.perf_counter() - t) / pages)
    return statistics.median(image), statistics.median(page)


async def parallel(size: int, pdf: Path, out: Path, pages: int, dpi: int, rounds: int) -> float:
    pool = DecoderPool(size, DecoderLimits(), cwd=out)
    try:
        await asyncio.gather(*(pool.render(pdf, i, out / f"warm-{i}.png", 36) for i in range(size)))  # all started
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            await pool.count_pages(pdf, 1000)
            await asyncio.gather(*(pool.render(pdf, i, out / f"par-{i}.png", dpi) for i in range(pages)))
            times.append(time.perf_counter() - t)
        return statistics.median(times)
    finally:
        await pool.close()


async def main_async(args) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-decoding-"))
    png, pdf = make_inputs(folder, args.pages)
    decoder = Decoder(cpu_s=3600)
    pool = DecoderPool(1, DecoderLimits(), cwd=folder)
    await pool.check_image(png)  # started and warm
    rows = {"in": [], "out": []}
    for _ in range(2):  # interleaved, so drift on a shared machine hits both paths alike
        rows["in"].append(await in_process(decoder, png, pdf, folder, args.pages, args.dpi, args.rounds))
        rows["out"].append(await out_of_process(pool, png, pdf, folder, args.pages, args.dpi, args.rounds))
    cpu_in = statistics.median([await cpu_per_page(None, decoder, pdf, folder, args.pages, args.dpi) for _ in range(3)])
    cpu_out = statistics.median([await cpu_per_page(pool, decoder, pdf, folder, args.pages, args.dpi) for _ in range(3)])
    await pool.close()
    decoder.close()
    trip = await round_trip()
    image_in = statistics.median(r[0] for r in rows["in"])
    image_out = statistics.median(r[0] for r in rows["out"])
    page_in = statistics.median(r[1] for r in rows["in"])
    page_out = statistics.median(r[1] for r in rows["out"])
    walls = {n: await parallel(n, pdf, folder, args.pages, args.dpi, max(2, args.rounds // 2)) for n in args.decoders}
    base = walls[args.decoders[0]]
    return {
        "cores": len(os.sched_getaffinity(0)), "pages": args.pages, "dpi": args.dpi,
        "image_check_ms": {"in_process": ms(image_in), "out_of_process": ms(image_out),
                           "added": ms(image_out - image_in)},
        "pdf_page_ms": {"in_process": ms(page_in), "out_of_process": ms(page_out), "added": ms(page_out - page_in)},
        "pdf_page_cpu_ms": {"in_process": ms(cpu_in), "out_of_process": ms(cpu_out), "added": ms(cpu_out - cpu_in)},
        "frame_round_trip_ms": round(trip * 1000, 3),
        "parallel_render_s": {str(n): round(w, 3) for n, w in walls.items()},
        "speedup": {str(n): round(base / w, 2) for n, w in walls.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--decoders", default="1,2,4")
    args = parser.parse_args()
    args.decoders = [int(n) for n in args.decoders.split(",")]
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
