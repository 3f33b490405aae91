"""Structured logs: one JSON object per line with the process's fields and, inside a run,
the activation's; the text format is unchanged; bad options are refused."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from runners import eventually, running

import blackboard
from blackboard.telemetry import configure_logging, logs
from blackboard.telemetry.traceparent import format_traceparent, parse_traceparent, trace_id_of

POLICY = """
name = "l"
[[rule]]
name = "work"
on = "job/*"
role = "worker"
"""


class Chatty(blackboard.Agent):
    """Logs from the handler: a sync one (a thread) keeps the activation's fields."""

    role = "worker"

    def handle(self, activation: blackboard.Activation, board: Any) -> None:
        logging.getLogger("chatty").info("working on %s", activation.key)
        board.put(f"done/{activation.key[4:]}", {"ok": True})


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream, role="worker", agent="w-1")
    try:
        yield stream
    finally:
        configure_logging("warning", "text")
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)


def _lines(err: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in err.splitlines() if x.startswith("{")]


async def test_a_handlers_log_line_names_its_activation(
    board: blackboard.Board, json_logs: io.StringIO
) -> None:
    async with running(board, POLICY, [Chatty()]):
        await board.put("job/1", {"n": 1})
        await eventually(lambda: board.get("done/1"), what="done/1")
    lines = _lines(json_logs.getvalue())
    [working] = [x for x in lines if x["message"] == "working on job/1"]
    assert working["level"] == "info" and working["logger"] == "chatty"
    assert working["role"] == "worker" and working["agent"] == "w-1"
    assert working["key"] == "job/1" and working["attempt"] == 1
    assert working["activation"].startswith("worker:") and working["time"].endswith("Z")
    started = [x for x in lines if "started on board" in x["message"]]
    assert started and "activation" not in started[0]  # outside a run: no activation fields


def test_extra_fields_and_errors_in_json(json_logs: io.StringIO) -> None:
    log = logging.getLogger("blackboard.test")
    log.info("took over", extra={"activation": "a:1", "key": "k", "attempt": 2})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    [took, failed] = _lines(json_logs.getvalue())
    assert took["activation"] == "a:1" and took["attempt"] == 2
    assert failed["level"] == "error" and "ValueError: boom" in failed["error"]
    assert logs.structured()


def test_bad_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("info", "yaml")
    with pytest.raises(ValueError, match="log level"):
        configure_logging("loud", "text")


def test_traceparent_is_strict() -> None:
    tp = format_traceparent(0xABC, 0x12, 1)
    assert tp == "00-00000000000000000000000000000abc-0000000000000012-01"
    assert parse_traceparent(tp) == (0xABC, 0x12, 1) and parse_traceparent(tp.encode())
    assert trace_id_of(tp) == "00000000000000000000000000000abc"
    for bad in (
        None, "", "junk", tp.upper(), "01" + tp[2:], tp + "-x", tp.replace("abc", "000"),
        "00-" + "0" * 32 + "-0000000000000012-01", "00-" + "a" * 32 + "-" + "0" * 16 + "-01",
        b"\xff" * 55,
    ):  # fmt: skip
        assert parse_traceparent(bad) is None, bad
