"""The decoder pool with real decoder processes: limits, deaths, parallel pages, a full disk."""

import asyncio
import contextlib
import io
from pathlib import Path

import pytest

from venvserve.decode.limits import DecoderLimits
from venvserve.decode.pool import DecoderPool
from venvserve.errors import VenvserveError


@contextlib.asynccontextmanager
async def decoders(*args, **kwargs):
    """A DecoderPool closed (its processes gone) when the block ends, however it ends."""
    pool = DecoderPool(*args, **kwargs)
    try:
        yield pool
    finally:
        await pool.close()


def text_pdf(path: Path, pages: int, size: int = 300) -> Path:
    from PIL import Image, ImageDraw

    images = []
    for i in range(pages):
        image = Image.new("RGB", (size * 2, size), "white")
        ImageDraw.Draw(image).text((20, 20), f"page {i + 1}", fill="black")
        images.append(image)
    images[0].save(path, "PDF", save_all=True, append_images=images[1:], resolution=72.0)
    return path


def run(coro):
    return asyncio.run(coro)


def test_pages_of_one_pdf_render_in_parallel_decoders(tmp_path):
    pdf = text_pdf(tmp_path / "doc.pdf", 4)

    async def go():
        async with decoders(2, DecoderLimits(), cwd=tmp_path) as pool:
            assert await pool.count_pages(pdf, 10) == 4
            pages = await asyncio.gather(*(pool.render(pdf, i, tmp_path / f"p{i}.png", 72) for i in range(4)))
            return pages, pool.started, len(pool.pids())

    pages, started, alive = run(go())
    assert [Path(p["path"]).name for p in pages] == ["p0.png", "p1.png", "p2.png", "p3.png"]
    assert all(Path(p["path"]).stat().st_size > 0 for p in pages)
    assert started == 2 and alive == 2


def test_a_full_disk_is_a_507(tmp_path):
    pdf = text_pdf(tmp_path / "doc.pdf", 1)

    async def go():
        async with decoders(1, DecoderLimits(), cwd=tmp_path) as pool:
            with pytest.raises(VenvserveError) as info:
                await pool.render(pdf, 0, Path("/dev/full"), 72)  # every write: ENOSPC
            # the decoder survives its client's error
            assert (await pool.render(pdf, 0, tmp_path / "ok.png", 72))["dpi"] == 72
            return info.value, pool.deaths

    error, deaths = run(go())
    assert (error.status, error.code) == (507, "disk_full")
    assert deaths == 0 and Path("/dev/full").exists()


def test_a_decoder_past_its_timeout_is_killed_and_replaced(tmp_path):
    pdf = text_pdf(tmp_path / "big.pdf", 1, size=3000)

    async def go():
        async with decoders(1, DecoderLimits(timeout_s=0.001), cwd=tmp_path) as pool:
            try:
                await pool.count_pages(pdf, 10)  # spawned under the spawn timeout, not this one
            except VenvserveError:
                pass
            with pytest.raises(VenvserveError) as info:
                await pool.render(pdf, 0, tmp_path / "p.png", 300)
            return info.value, pool.deaths

    error, deaths = run(go())
    assert (error.status, error.code) == (422, "document_too_complex")
    assert deaths >= 1


def test_a_page_over_the_pixel_cap_renders_at_a_lower_dpi(tmp_path):
    pdf = text_pdf(tmp_path / "doc.pdf", 1, size=1000)  # 2000×1000 pt

    async def go():
        async with decoders(1, DecoderLimits(max_page_pixels=2_000_000), cwd=tmp_path) as pool:
            return await pool.render(pdf, 0, tmp_path / "p.png", 200)

    page = run(go())
    assert page["dpi"] < 200 and page["width"] * page["height"] <= 2_000_000


def test_a_cancelled_caller_leaves_the_decoder_alive_for_the_next(tmp_path):
    pdf = text_pdf(tmp_path / "doc.pdf", 2, size=1500)

    async def go():
        async with decoders(1, DecoderLimits(), cwd=tmp_path) as pool:
            await pool.count_pages(pdf, 10)
            pid = pool.pids()[0]
            task = asyncio.ensure_future(pool.render(pdf, 0, tmp_path / "p0.png", 200))
            await asyncio.sleep(0.05)
            task.cancel()
            page = await pool.render(pdf, 1, tmp_path / "p1.png", 72)  # waits for the cancelled step's slot
            return pid, pool.pids(), page, pool.deaths

    pid, pids, page, deaths = run(go())
    assert pids == [pid] and deaths == 0 and page["dpi"] == 72


def test_images_are_checked_without_decoding_their_pixels(tmp_path):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.new("RGB", (50, 20), "white").save(good)
    gif = tmp_path / "x.gif"
    Image.new("RGB", (50, 20), "white").save(gif)
    buf = io.BytesIO()
    Image.new("RGB", (5000, 5000), "white").save(buf, "PNG")
    big = tmp_path / "big.png"
    big.write_bytes(buf.getvalue())

    async def go():
        async with decoders(1, DecoderLimits(max_page_pixels=1_000_000), cwd=tmp_path) as pool:
            out = [await pool.check_image(good)]
            for path in (gif, big):
                try:
                    await pool.check_image(path)
                except VenvserveError as exc:
                    out.append((exc.status, exc.code))
            return out

    info, gif_error, big_error = run(go())
    assert (info["format"], info["width"], info["height"]) == ("PNG", 50, 20)
    assert gif_error == (415, "unsupported_media_type")
    assert big_error == (413, "image_too_large")


def test_a_decoder_that_crashes_mid_page_fails_that_page_only(tmp_path):
    import os
    import signal

    pdf = text_pdf(tmp_path / "big.pdf", 1, size=3000)

    async def go():
        async with decoders(1, DecoderLimits(), cwd=tmp_path) as pool:
            await pool.count_pages(pdf, 10)
            first = pool.pids()[0]
            step = asyncio.ensure_future(pool.render(pdf, 0, tmp_path / "p.png", 300))
            await asyncio.sleep(0.05)  # the render has begun (it takes far longer than this)
            os.kill(first, signal.SIGSEGV)
            with pytest.raises(VenvserveError) as info:
                await step
            page = await pool.render(pdf, 0, tmp_path / "again.png", 36)
            return info.value, first, pool.pids(), pool.deaths, page

    error, first, pids, deaths, page = run(go())
    assert error.status == 422 and error.code == "document_too_complex"
    assert deaths == 1 and pids and first not in pids and page["dpi"] == 36


def test_a_step_over_its_cpu_limit_is_a_422(tmp_path):
    import importlib.util

    from support import ROOT

    spec = importlib.util.spec_from_file_location("hostile_corpus", ROOT / "scripts" / "hostile_corpus.py")
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    pdf = tmp_path / "heavy.pdf"  # 100,000 stroked paths on one page: ~8 s of CPU to render
    pdf.write_bytes(corpus.text_pdf(1, 600, 600, content=b"1 w 0 0 m 600 600 l 0 600 l h S\n" * 100_000))

    async def go():
        async with decoders(1, DecoderLimits(cpu_s=1, timeout_s=120), cwd=tmp_path) as pool:
            with pytest.raises(VenvserveError) as info:
                await pool.render(pdf, 0, tmp_path / "p.png", 72)
            return info.value, pool.deaths

    error, deaths = run(go())
    assert (error.status, error.code) == (422, "document_too_complex") and "CPU" in error.message
    assert deaths == 1
