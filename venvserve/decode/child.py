"""The decoder process: opens untrusted PDFs and images so the gateway never has to.

    python -m venvserve.decode.child '{"memory_mb": 1024, "cpu_s": 60}'

It caps its own address space (RLIMIT_AS) before it imports Pillow or
pypdfium2, dies with its parent, and then answers one frame per request
(``venvserve.decode.protocol``) on stdin/stdout until stdin closes:

    {"op": "image", "path", "max_pixels"}            → {"ok", "format", "width", "height"}
    {"op": "pdf", "path", "max_pages"}               → {"ok", "pages"}
    {"op": "render", "path", "index", "out", "dpi", "max_pixels"}
                                                     → {"ok", "path", "dpi", "width", "height"}
    {"op": "close"}                                  → {"ok"}

It holds at most one PDF open (pdfium is not thread-safe: one document per
process, one request at a time, no threads). Each request gets ``cpu_s``
more seconds of CPU (the soft RLIMIT_CPU moves on), so SIGXCPU ends a
decoder stuck on one page, however long the document. Client errors come back as
``{"ok": false, "status", "code", "message"[, "hint"]}``; a crash, an abort on
a failed allocation or SIGXCPU just ends the process, and the gateway's pool
turns that into the request's error and starts a fresh decoder.
"""

import errno
import json
import math
import os
import resource
import sys

from .limits import fit_dpi, too_large
from .protocol import ProtocolError, encode, read_frame

IMAGE_FORMATS = {"PNG", "JPEG", "MPO", "TIFF", "BMP", "WEBP"}


class Refused(Exception):
    """A client error: answered as a frame, the process goes on."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.answer = {"ok": False, "status": status, "code": code, "message": message,
                       **({"hint": hint} if hint else {})}


def refused_from(exc) -> Refused:
    return Refused(exc.status, exc.code, exc.message, exc.hint)


class Decoder:
    def __init__(self, cpu_s: int):
        import PIL.Image
        import pypdfium2

        self.pil, self.pdfium = PIL.Image, pypdfium2
        self.pil.MAX_IMAGE_PIXELS = None  # sizes are checked against max_pixels before any decode
        self.cpu_s = cpu_s
        self.pdf = None
        self.pdf_path = None

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        self.new_step()
        if op == "image":
            return self.image(str(request["path"]), int(request["max_pixels"]))
        if op == "pdf":
            return {"ok": True, "pages": self.open(str(request["path"]), int(request["max_pages"]))}
        if op == "render":
            return self.render(str(request["path"]), int(request["index"]), str(request["out"]),
                               float(request["dpi"]), int(request["max_pixels"]))
        if op == "close":
            self.close()
            return {"ok": True}
        raise ProtocolError(f"unknown op {op!r}")

    def new_step(self) -> None:
        """This step may spend cpu_s more seconds of CPU than the process has so far (a long
        document is not cut off for its length; one pathological page is)."""
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(used.ru_utime + used.ru_stime) + self.cpu_s
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))

    def image(self, path: str, max_pixels: int) -> dict:
        try:
            with self.pil.open(path) as im:
                fmt, (width, height) = im.format, im.size
                if fmt not in IMAGE_FORMATS:
                    raise Refused(415, "unsupported_media_type", f"{fmt} images are not supported")
                if width * height > max_pixels:
                    raise refused_from(too_large(width, height, max_pixels))
                if fmt == "PNG":
                    im.verify()  # walks every chunk's CRC: catches truncation without decoding pixels
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise Refused(400, "invalid_image", f"the image cannot be decoded ({_scrub(exc, path)}); "
                          "it may be truncated or corrupt", "re-export the image and upload it again") from None
        return {"ok": True, "format": fmt, "width": width, "height": height}

    def open(self, path: str, max_pages: int) -> int:
        if self.pdf_path != path:
            self.close()
            try:
                self.pdf = self.pdfium.PdfDocument(path)
            except self.pdfium.PdfiumError as exc:
                raise Refused(400, "invalid_pdf", f"the PDF cannot be opened ({_scrub(exc, path)}); it may be "
                              "truncated, corrupt or encrypted", "re-export the PDF, or send its pages as images")
            self.pdf_path = path
        count = len(self.pdf)
        if count == 0:
            raise Refused(400, "invalid_pdf", "the PDF has no pages")
        if count > max_pages:
            raise Refused(400, "too_many_pages", f"the PDF has {count} pages; this server takes at most {max_pages}",
                          "split the PDF, or raise --max-pdf-pages")
        return count

    def render(self, path: str, index: int, out: str, dpi: float, max_pixels: int) -> dict:
        self.open(path, sys.maxsize)
        if not 0 <= index < len(self.pdf):
            raise Refused(400, "invalid_pdf", f"the PDF has no page {index + 1}")
        try:
            width_pt, height_pt = self.pdf.get_page_size(index)  # the page's box, without parsing its content
        except self.pdfium.PdfiumError:
            raise Refused(400, "invalid_pdf", f"page {index + 1} of the PDF cannot be read") from None
        fitted = fit_dpi(width_pt, height_pt, dpi, max_pixels)
        if fitted is None:
            if width_pt > 0 and height_pt > 0:
                raise refused_from(too_large(round(width_pt * dpi / 72), round(height_pt * dpi / 72),
                                             max_pixels, "page"))
            raise Refused(400, "invalid_pdf", f"page {index + 1} of the PDF has no area")
        page = self.pdf[index]
        try:
            image = page.render(scale=fitted / 72).to_pil()
        except self.pdfium.PdfiumError as exc:
            raise Refused(400, "invalid_pdf", f"page {index + 1} of the PDF cannot be rendered: {exc}") from None
        finally:
            page.close()
        try:
            image.save(out, format="PNG", compress_level=1)  # fast: the file is read once, then deleted
        except OSError as exc:
            _unlink(out)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise Refused(507, "disk_full", "the server's disk is full; the page cannot be stored",
                              "retry later") from None
            raise
        return {"ok": True, "path": out, "dpi": fitted, "width": image.width, "height": image.height}

    def close(self) -> None:
        if self.pdf is not None:
            self.pdf.close()
        self.pdf = self.pdf_path = None


def _scrub(exc: BaseException, path: str) -> str:
    """The library's message without the server-side path in it."""
    return str(exc).replace(repr(path), "the file").replace(path, "the file")


def _unlink(path: str) -> None:
    """Remove a half-written page; only a regular file (never a device the path might name)."""
    try:
        if os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)
    except OSError:
        pass


def _die_with_parent() -> None:
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: stdin closing still ends the loop


def main(argv: list[str]) -> int:
    config = json.loads(argv[0]) if argv else {}
    _die_with_parent()
    limit = int(config.get("memory_mb", 1024)) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # Frames go out on a private copy of stdout; fd 1 itself now points at stderr,
    # so nothing a library prints can corrupt the stream.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    frames_in = sys.stdin.buffer
    decoder = Decoder(int(config.get("cpu_s", 60)))
    out.write(encode({"ok": True, "ready": True, "pid": os.getpid()}))
    while True:
        try:
            request = read_frame(frames_in)
        except ProtocolError as exc:
            print(f"venvserve decoder: {exc}", file=sys.stderr)
            return 2
        if request is None:
            return 0
        try:
            answer = decoder.handle(request)
        except Refused as exc:
            answer = exc.answer
        except MemoryError:
            decoder.close()
            answer = {"ok": False, "status": 422, "code": "document_too_complex",
                      "message": f"the document needs more than the decoder's {config.get('memory_mb')} MB"}
        except ProtocolError as exc:
            print(f"venvserve decoder: bad request: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # a library tripping over hostile bytes: the client's error, not ours
            decoder.close()
            kind = "pdf" if request.get("op") in ("pdf", "render") else "image"
            answer = {"ok": False, "status": 400, "code": f"invalid_{kind}",
                      "message": f"the {'PDF' if kind == 'pdf' else 'image'} cannot be decoded "
                                 f"({type(exc).__name__}); it may be truncated or corrupt"}
        out.write(encode(answer))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
