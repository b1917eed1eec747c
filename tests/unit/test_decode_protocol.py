"""The decoder wire (length-prefixed JSON frames) and the page-size arithmetic, with malformed input."""

import asyncio
import io
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venvserve.decode.limits import MIN_DPI, DecoderLimits, death_error, fit_dpi, pixels, pool_size
from venvserve.decode.protocol import MAX_FRAME, ProtocolError, encode, read_frame, read_frame_async


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def read_async(data: bytes):
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_frame_async(reader)

    return asyncio.run(go())


READERS = [lambda data: read_frame(io.BytesIO(data)), read_async]


@pytest.mark.parametrize("read", READERS, ids=["blocking", "async"])
def test_a_frame_round_trips(read):
    message = {"op": "render", "path": "/spool/x.pdf", "index": 3, "dpi": 200.0, "text": "ünïcode"}
    assert read(encode(message)) == message


@pytest.mark.parametrize("read", READERS, ids=["blocking", "async"])
def test_clean_end_of_stream_is_none(read):
    assert read(b"") is None


MALFORMED = {
    "header_cut_short": b"\x00\x00",
    "body_cut_short": frame(b'{"ok": true}')[:-3],
    "zero_length": struct.pack(">I", 0),
    "length_over_limit": struct.pack(">I", MAX_FRAME + 1) + b"{}",
    "length_4_gib": b"\xff\xff\xff\xff",
    "not_utf8": frame(b"\xff\xfe{}"),
    "not_json": frame(b"{ok: true}"),
    "json_array": frame(b"[1, 2]"),
    "json_string": frame(b'"ok"'),
    "json_null": frame(b"null"),
    "nested_too_deep": frame(b"[" * 100_000 + b"]" * 100_000),
    "nan_free_garbage": frame(b"\x00" * 16),
}


@pytest.mark.parametrize("read", READERS, ids=["blocking", "async"])
@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frames_raise_protocol_error(read, data):
    with pytest.raises(ProtocolError):
        read(data)


def test_two_frames_in_one_stream_are_read_one_by_one():
    stream = io.BytesIO(encode({"a": 1}) + encode({"b": 2}))
    assert read_frame(stream) == {"a": 1}
    assert read_frame(stream) == {"b": 2}
    assert read_frame(stream) is None


def test_encoding_refuses_a_frame_over_the_limit():
    with pytest.raises(ProtocolError):
        encode({"x": "a" * MAX_FRAME})


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_any_object_round_trips(message):
    assert read_frame(io.BytesIO(encode(message))) == json.loads(json.dumps(message))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_are_a_frame_or_a_protocol_error(data):
    try:
        message = read_frame(io.BytesIO(data))
    except ProtocolError:
        return
    assert message is None or isinstance(message, dict)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=40))
def test_arbitrary_payload_behind_a_valid_header(payload):
    try:
        assert isinstance(read_frame(io.BytesIO(frame(payload))), dict)
    except ProtocolError:
        pass


# -- page-size arithmetic -------------------------------------------------

def test_a_letter_page_renders_at_the_asked_dpi():
    assert fit_dpi(612, 792, 200, 60_000_000) == 200.0


def test_a_huge_page_is_rendered_at_a_lower_dpi_within_the_cap():
    dpi = fit_dpi(14400, 14400, 200, 60_000_000)
    assert MIN_DPI <= dpi < 200
    assert pixels(14400, 14400, dpi) <= 60_000_000


def test_a_page_that_cannot_fit_even_at_the_lowest_dpi_is_refused():
    assert fit_dpi(14400, 14400, 200, 1_000_000) is None


@pytest.mark.parametrize("width, height", [(0, 792), (612, -1), (float("inf"), 10), (float("nan"), 10)])
def test_a_page_without_area_is_refused(width, height):
    assert fit_dpi(width, height, 200, 60_000_000) is None


@settings(max_examples=300, deadline=None)
@given(st.floats(1, 20000), st.floats(1, 20000), st.integers(36, 600), st.integers(10_000, 200_000_000))
def test_fitted_dpi_never_exceeds_the_cap_or_the_asked_dpi(width, height, dpi, cap):
    fitted = fit_dpi(width, height, dpi, cap)
    if fitted is not None:
        assert MIN_DPI <= fitted <= dpi
        assert pixels(width, height, fitted) <= cap


def test_pool_size_defaults_to_one_per_core_up_to_four():
    assert [pool_size(0, n) for n in (None, 1, 2, 16)] == [1, 1, 2, 4]
    assert pool_size(7, 2) == 7


@pytest.mark.parametrize("returncode, timed_out, status, code", [
    (None, True, 422, "document_too_complex"),
    (-24, False, 422, "document_too_complex"),  # SIGXCPU: the CPU limit
    (-6, False, 422, "document_too_complex"),  # SIGABRT: an allocation refused under RLIMIT_AS
    (-9, False, 422, "document_too_complex"),
    (1, False, 400, "invalid_pdf"),
])
def test_a_decoders_death_is_the_clients_json_error(returncode, timed_out, status, code):
    error = death_error("pdf", returncode, timed_out, DecoderLimits())
    assert (error.status, error.code) == (status, code)
    assert "/" not in error.message
