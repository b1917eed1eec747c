"""A worker's output: chunks cut into bounded printable lines, a tail, the model's log ring;
the worker's environment and its one-line boot reason."""

import asyncio

from venvserve.workers import output
from venvserve.workers.logring import LogRing
from venvserve.workers.output import MAX_LINE_CHARS, OutputPump
from venvserve.workers.process import BOOT_FAILURE_PREFIX, boot_reason, worker_environment


def pump_of(lines: list) -> OutputPump:
    return OutputPump("m", lines.append)


def test_lines_end_at_newline_or_carriage_return_and_blank_ones_are_dropped():
    seen = []
    pump = pump_of(seen)
    pump.feed(b"one\ntwo\r\nthr")
    pump.feed(b"ee\r 10%\r 20%\r\n\n\n")
    pump.close()
    assert seen == ["one", "two", "three", " 10%", " 20%"]
    assert pump.tail(2) == [" 10%", " 20%"]


def test_a_megabyte_line_is_cut_and_the_next_line_is_whole():
    seen = []
    pump = pump_of(seen)
    for _ in range(16):
        pump.feed(b"x" * 65536)  # 1 MiB, no newline yet
    pump.feed(b"\nafter\n")
    assert len(seen) == 2
    assert seen[0].startswith("x" * MAX_LINE_CHARS) and "more bytes" in seen[0]
    assert len(seen[0]) < MAX_LINE_CHARS + 40
    assert seen[1] == "after"


def test_binary_and_control_characters_come_out_printable():
    seen = []
    pump = pump_of(seen)
    pump.feed(b"\x00\x1b[31mred\x1b[0m\x07\xff\xfe tab\there\x85\n")
    [line] = seen
    assert line.isprintable() or "\t" in line
    assert "\\x1b[31mred" in line and "\\x00" in line and "\\x07" in line and "\ufffd" in line
    assert "\ttab" not in line and "tab\there" in line  # a tab stays a tab


def test_ten_thousand_tracebacks_in_one_go_keep_a_bounded_tail():
    seen = []
    pump = pump_of(seen)
    trace = b"Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nValueError: boom\n"
    pump.feed(trace * 10_000)
    pump.feed(b"last words\n")
    assert len(seen) == 30_001
    assert len(pump.lines) == output.TAIL_LINES
    assert pump.tail(1) == ["last words"]


def test_the_gateways_log_gets_a_bounded_share_and_a_count_of_the_rest(caplog):
    pump = OutputPump("m")
    with caplog.at_level("INFO", logger="venvserve.workers"):
        pump.feed(b"line\n" * 5000)
        pump.close()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) <= output.LOG_LINES_PER_S + 1
    assert "4950 more lines not shown here" in messages[-1]


def test_the_pump_reads_a_stream_to_its_end_and_no_bad_chunk_stops_it():
    async def run():
        stream = asyncio.StreamReader()
        seen = []
        pump = OutputPump("m", seen.append)
        calls = {"n": 0}
        feed = pump.feed

        def flaky(chunk):
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("a bug while reading one chunk")
            feed(chunk)

        pump.feed = flaky
        task = asyncio.create_task(pump.pump(stream))
        stream.feed_data(b"lost\n")
        await asyncio.sleep(0)
        stream.feed_data(b"kept\npartial")
        stream.feed_eof()
        await asyncio.wait_for(task, 5)
        return seen

    assert asyncio.run(run()) == ["kept", "partial"]


def test_the_log_ring_keeps_the_last_lines_and_followers_get_new_ones():
    async def run():
        ring = LogRing(size=3)
        for i in range(5):
            ring.append(42, f"l{i}")
        assert [line.text for line in ring.tail(10)] == ["l2", "l3", "l4"]
        assert ring.tail(1)[0].pid == 42
        follower = ring.follow(start_tail=2)
        got = [(await follower.__anext__()).text, (await follower.__anext__()).text]
        waiting = asyncio.ensure_future(follower.__anext__())
        await asyncio.sleep(0)
        assert not waiting.done()
        ring.append(43, "new")
        got.append((await asyncio.wait_for(waiting, 5)).text)
        await follower.aclose()
        return got

    assert asyncio.run(run()) == ["l3", "l4", "new"]


def test_the_worker_environment_has_no_gateway_secrets_nor_interpreter_overrides():
    base = {"PATH": "/bin", "HF_TOKEN": "hub", "VENVSERVE_API_KEY": "a", "VENVSERVE_ADMIN_KEY": "b",
            "VENVSERVE_API_KEY_FILE": "/k", "VENVSERVE_SOME_TOKEN": "c", "VENVSERVE_SECRET": "d",
            "VENVSERVE_DATA_DIR": "/d", "VIRTUAL_ENV": "/v", "PYTHONHOME": "/h", "PYTHONSTARTUP": "/s",
            "PYTHONPATH": "/p"}
    env = worker_environment({"EXTRA": "1"}, base)
    assert {"PATH", "HF_TOKEN", "VENVSERVE_DATA_DIR", "EXTRA"} <= set(env)
    assert not {"VENVSERVE_API_KEY", "VENVSERVE_ADMIN_KEY", "VENVSERVE_API_KEY_FILE", "VENVSERVE_SOME_TOKEN",
                "VENVSERVE_SECRET", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONPATH"} & set(env)
    assert env["PYTHONUNBUFFERED"] == "1"


def test_a_boot_reason_is_the_workers_last_word_never_a_traceback():
    lines = ["Traceback (most recent call last):", '  File "/srv/x.py", line 3, in load',
             "RuntimeError: no weights", BOOT_FAILURE_PREFIX + "RuntimeError: no weights in /models"]
    assert boot_reason(lines) == "RuntimeError: no weights in /models"
    assert boot_reason(lines[:3]) == "RuntimeError: no weights"
    assert boot_reason(["Traceback (most recent call last):", '  File "x"']) == ""
    assert boot_reason([]) == ""
