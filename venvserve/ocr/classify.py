"""What an upload is, by its first bytes (never its name): an image, a PDF, or neither.

Only the first KiB is read here; the gateway never decodes a document itself
(that happens in the decoder processes of ``venvserve.decode``).
"""

from pathlib import Path

from ..errors import BadRequest, VenvserveError

SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
    (b"%PDF-", "application/pdf"),
]
SUPPORTED = "PNG, JPEG, WebP, TIFF, BMP or PDF"
PDF = "application/pdf"


class UnsupportedMedia(VenvserveError):
    status, code = 415, "unsupported_media_type"


def sniff(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, kind in SIGNATURES:
        if head.startswith(magic):
            return kind
    # A PDF may start with a few bytes of junk before its header.
    if b"%PDF-" in head[:1024]:
        return PDF
    return None


def classify(path: Path, size: int) -> str:
    """The media type of the file; 400 for an empty one, 415 for anything else unsupported."""
    if size == 0:
        raise BadRequest("the uploaded file is empty", code="empty_file",
                         hint="send the image or PDF as the multipart field `file`")
    with open(path, "rb") as f:
        head = f.read(1024)
    kind = sniff(head)
    if kind is None:
        known = "GIF" if head.startswith(b"GIF8") else None
        what = f"a {known} image" if known else "neither an image nor a PDF"
        raise UnsupportedMedia(f"the uploaded file is {what}; send {SUPPORTED}",
                               hint="convert the file to PNG or PDF first")
    return kind
