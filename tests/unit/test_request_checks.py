"""What the HTTP face checks without a server: JSON depth, Host and Origin, log-safe text."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venvserve.api.jsonbody import depth_exceeds, parse_object
from venvserve.api.origin import HostPolicy, host_name
from venvserve.api.requestlog import printable
from venvserve.errors import BadRequest

LIMIT = 8

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab[]{}"\\\n\u00e9', max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(alphabet='k[]{}"\\', max_size=3),
                                                                      children, max_size=3),
    max_leaves=40)


def depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@settings(max_examples=200, deadline=None)
@given(value=json_values, ascii_only=st.booleans(), indent=st.sampled_from([None, 1]))
def test_the_depth_check_agrees_with_the_true_depth(value, ascii_only, indent):
    """Brackets inside strings (escaped or not) never count; nothing deeper than the limit passes."""
    raw = json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode()
    assert depth_exceeds(raw, LIMIT) == (depth(value) > LIMIT)


def test_a_deep_body_is_refused_before_python_parses_it():
    for raw in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b"[" * 100_000):
        assert depth_exceeds(raw, 64)
        with pytest.raises(BadRequest) as caught:
            parse_object(raw, 64)
        assert caught.value.code == "json_too_deep"
    assert not depth_exceeds(b'{"a": "' + b"[" * 1000 + b'"}', 64)
    assert parse_object(b'{"a": [[1]]}', 64) == {"a": [[1]]}


@pytest.mark.parametrize("raw, code", [(b"[1]", "invalid_json"), (b"{bad", "invalid_json"), (b"", "invalid_json")])
def test_parse_object_refuses_what_is_not_an_object(raw, code):
    with pytest.raises(BadRequest) as caught:
        parse_object(raw, 64)
    assert caught.value.code == code


def test_host_names_with_ports_and_brackets():
    assert host_name("Example.org:8000") == "example.org"
    assert host_name("[::1]:8000") == "::1"
    assert host_name("[::1]") == "::1"
    assert host_name("localhost") == "localhost"


def test_the_host_policy_of_a_loopback_server():
    policy = HostPolicy("127.0.0.1", ["ocr.example.org", "*.lan.example"])
    for ok in ("127.0.0.1:8000", "localhost", "LOCALHOST:1", "[::1]:8000", "ocr.example.org", "a.b.lan.example:9"):
        assert policy.host_ok(ok), ok
    for bad in ("evil.example", "127.0.0.1.evil.example", "lan.example", "10.0.0.1", "localhost.evil", ""):
        assert not policy.host_ok(bad), bad


def test_a_server_bound_to_every_interface_answers_to_addresses_but_not_to_strange_names():
    policy = HostPolicy("0.0.0.0")
    assert policy.host_ok("192.168.1.20:8000") and policy.host_ok("[fe80::1]:8000")
    assert not policy.host_ok("rebind.evil.example:8000")
    assert HostPolicy("127.0.0.1", ["*"]).host_ok("anything.example")


def test_origins():
    policy = HostPolicy("127.0.0.1", allowed_origins=["https://app.example.org/"])
    assert policy.origin_ok("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert policy.origin_ok("https://app.example.org", "127.0.0.1:8000")
    for bad in ("null", "http://127.0.0.1:8001", "https://evil.example", "file://", "127.0.0.1:8000"):
        assert not policy.origin_ok(bad, "127.0.0.1:8000"), bad
    assert not policy.origin_ok("http://127.0.0.1:8000", None)
    assert HostPolicy("127.0.0.1", allowed_origins=["*"]).origin_ok("https://any.example", "x")


def test_printable_escapes_what_could_forge_or_hide_a_log_line():
    assert printable("/a\nGET /forged 200") == "/a\\nGET /forged 200"
    assert printable("/a\r\x1b[2J\x00\u2028b") == "/a\\r\\x1b[2J\\x00\\u2028b"
    assert printable("/v1/models/é/infer") == "/v1/models/é/infer"
