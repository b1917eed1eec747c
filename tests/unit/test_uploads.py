"""The multipart upload parser: any chunking of a valid body gives the same upload; bad bodies are 4xx."""

import errno

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from venvserve.uploads import UploadLimits, UploadParser
from venvserve.errors import BadRequest, InsufficientStorage, PayloadTooLarge, VenvserveError

BOUNDARY = b"----venvserveBoundary7MA4YWxkTrZu0gW"
FILE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + b"--not-a-boundary\r\n" + b"tail"


def body(parts: list[tuple[bytes, bytes]], boundary: bytes = BOUNDARY) -> bytes:
    out = b""
    for headers, data in parts:
        out += b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + data + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def file_part(name: bytes = b"file", data: bytes = FILE, filename: bytes = b"page.png") -> tuple[bytes, bytes]:
    return (b'Content-Disposition: form-data; name="' + name + b'"; filename="' + filename + b'"\r\n'
            b"Content-Type: image/png", data)


def field(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    return (b'Content-Disposition: form-data; name="' + name + b'"', value)


VALID = body([field(b"model", b"echo"), file_part(), field(b"format", b"markdown")])


def parse(tmp_path, chunks, limits: UploadLimits = UploadLimits(), opener=open):
    parser = UploadParser(BOUNDARY, tmp_path, limits, opener=opener)
    try:
        for chunk in chunks:
            parser.feed(chunk)
        return parser.finish()
    except BaseException:
        parser.abort()
        raise


def check_valid(upload) -> None:
    assert upload.fields == {"model": "echo", "format": "markdown"}
    assert upload.filename == "page.png"
    assert upload.size == len(FILE)
    assert upload.path.read_bytes() == FILE


def test_a_valid_body_in_one_chunk(tmp_path):
    check_valid(parse(tmp_path, [VALID]))


def test_every_split_point_of_a_valid_body_gives_the_same_upload(tmp_path):
    """Header names and values cut anywhere ("Content-Dis|position") are joined, not overwritten."""
    for cut in range(1, len(VALID)):
        upload = parse(tmp_path, [VALID[:cut], VALID[cut:]])
        check_valid(upload)
        upload.path.unlink()


def test_a_byte_at_a_time(tmp_path):
    check_valid(parse(tmp_path, [VALID[i:i + 1] for i in range(len(VALID))]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(VALID) - 1), max_size=12))
def test_any_chunking_gives_the_same_upload(tmp_path, cuts):
    points = [0, *sorted(set(cuts)), len(VALID)]
    upload = parse(tmp_path, [VALID[a:b] for a, b in zip(points, points[1:])])
    check_valid(upload)
    upload.path.unlink()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_bodies_are_an_upload_or_a_client_error(tmp_path, data):
    """Byte-level mutants of a valid body never raise anything but a VenvserveError with a 4xx."""
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        pos = data.draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[pos] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=64))
        else:
            del raw[pos:pos + data.draw(st.integers(1, 32))]
    try:
        upload = parse(tmp_path, [bytes(raw)])
    except VenvserveError as exc:
        assert 400 <= exc.status < 500, exc
        assert not any(tmp_path.iterdir()), "a refused upload left its spool file"
    else:
        upload.path.unlink()


@pytest.mark.parametrize("raw", [
    b"--" + BOUNDARY + b"\r\nContent-Disposition form-data\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n",  # no colon
    b"--" + BOUNDARY + b"\r\n\x00\x01: \x02\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n",
    b"--" + BOUNDARY + b"\r\n" + b"X-A: b\r\n" * 40 + b"\r\nx\r\n--" + BOUNDARY + b"--\r\n",  # too many headers
    b"--wrongboundary\r\n\r\n",
    b"garbage before anything",
    b"",
])
def test_malformed_bodies_are_400(tmp_path, raw):
    with pytest.raises(BadRequest):
        parse(tmp_path, [raw])
    assert not any(tmp_path.iterdir())


def test_a_10_mb_field_name_is_400_and_read_no_further(tmp_path):
    head = b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="'
    parser = UploadParser(BOUNDARY, tmp_path, UploadLimits())
    with pytest.raises(BadRequest) as caught:
        parser.feed(head)
        for _ in range(10 * 16):  # 10 MB in 64 KB chunks
            parser.feed(b"n" * 65536)
    assert caught.value.code == "invalid_multipart"
    assert parser.received < 1 * 2**20  # refused within the first chunks


def test_the_body_limit_counts_fields_and_file_together(tmp_path):
    limits = UploadLimits(max_bytes=len(VALID) - 1)
    with pytest.raises(PayloadTooLarge):
        parse(tmp_path, [VALID[:100], VALID[100:]], limits)
    assert not any(tmp_path.iterdir())
    many = body([field(b"f%d" % i, b"x" * 1000) for i in range(30)] + [file_part(data=b"x")])
    with pytest.raises(PayloadTooLarge) as caught:
        parse(tmp_path, [many], UploadLimits(max_bytes=20_000, max_fields=100))
    assert caught.value.code == "request_too_large"


def test_caps_on_fields_files_and_field_size(tmp_path):
    fields = body([field(b"f%d" % i, b"x") for i in range(5)] + [file_part()])
    with pytest.raises(BadRequest) as caught:
        parse(tmp_path, [fields], UploadLimits(max_fields=4))
    assert caught.value.code == "too_many_fields"
    files = body([file_part(name=b"other%d" % i) for i in range(3)] + [file_part()])
    with pytest.raises(BadRequest) as caught:
        parse(tmp_path, [files], UploadLimits(max_files=3))
    assert caught.value.code == "too_many_files"
    big = body([field(b"options", b"x" * 2000), file_part()])
    with pytest.raises(PayloadTooLarge) as caught:
        parse(tmp_path, [big], UploadLimits(max_field_bytes=1024))
    assert caught.value.code == "field_too_large"
    assert not any(tmp_path.iterdir())


def test_a_body_without_the_file_or_cut_inside_it(tmp_path):
    with pytest.raises(BadRequest) as caught:
        parse(tmp_path, [body([field(b"model", b"echo")])])
    assert caught.value.code == "missing_file"
    with pytest.raises(BadRequest):
        parse(tmp_path, [VALID[: VALID.index(b"tail")]])
    assert not any(tmp_path.iterdir())


def test_a_full_disk_is_507(tmp_path):
    class Full:
        def __init__(self, path, mode):
            self.f = open(path, mode)

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            self.f.close()

    with pytest.raises(InsufficientStorage) as caught:
        parse(tmp_path, [VALID], opener=Full)
    assert caught.value.status == 507 and caught.value.code == "disk_full"
    assert "/" not in caught.value.message
    assert not any(tmp_path.iterdir())
