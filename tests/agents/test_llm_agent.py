"""agents/llm.py against a fake chat-completions API on a loopback port (no test touches the
network): answers, 429 with Retry-After, 503, stalls, dropped connections and refusals, with
the harness, by calling the handler, and end to end in a `blackboard.System`."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import blackboard
from blackboard.control import steering
from blackboard.runtime.agent import load_agent

ROOT = Path(__file__).resolve().parents[2]
LLMAgent = load_agent(f"{ROOT / 'agents' / 'llm.py'}:LLMAgent")
llm: Any = sys.modules[LLMAgent.__module__]

ANSWER = {"answer": "Refunds take 5 days.", "confidence": 0.9}


@dataclass
class Seen:
    """One request the fake API received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class FakeAPI:
    """A tiny HTTP/1.1 chat-completions server. Each request plays the next step of `script`
    ("answer", "text", "429" or "429:<Retry-After>", "503", "400", "garbage", "stall",
    "drop"), then "answer" once the script is spent."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.seen: list[Seen] = []
        self.hung_up = 0  # stalled requests whose client closed the connection
        self.url = ""
        self._server: asyncio.Server | None = None
        self._release = asyncio.Event()
        self._handlers: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"

    async def close(self) -> None:
        self._release.set()
        assert self._server is not None
        self._server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            request_line, *lines = head.split("\r\n")
            headers = {}
            for line in lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            path = request_line.split(" ")[1]
            self.seen.append(Seen(path, headers, json.loads(body or b"{}"), time.monotonic()))
            step = self.script.pop(0) if self.script else "answer"
            if step == "drop":
                return
            if step == "stall":
                await self._stall(reader)
                return
            writer.write(self._response(step))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _stall(self, reader: asyncio.StreamReader) -> None:
        """Answer nothing until the client hangs up (counted) or the test ends."""
        eof = asyncio.ensure_future(reader.read(1))
        released = asyncio.ensure_future(self._release.wait())
        await asyncio.wait([eof, released], return_when=asyncio.FIRST_COMPLETED)
        if eof.done() and not eof.exception() and eof.result() == b"":
            self.hung_up += 1
        eof.cancel()
        released.cancel()

    def _response(self, step: str) -> bytes:
        status, extra, payload = 200, {}, b""
        if step in ("answer", "text"):
            content = json.dumps(ANSWER) if step == "answer" else "Probably five days?"
            payload = json.dumps(
                {
                    "id": "chatcmpl-1",
                    "model": "fake-model",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
                }
            ).encode()
        elif step.startswith("429"):
            status, extra = 429, {"Retry-After": step.partition(":")[2] or "2"}
            payload = b'{"error": {"message": "rate limited"}}'
        elif step in ("503", "400"):
            status, payload = int(step), b'{"error": {"message": "no"}}'
        elif step == "garbage":
            payload = b'{"hello": "world"}'
        reason = {200: "OK", 400: "Bad Request", 429: "Too Many Requests", 503: "Unavailable"}
        head = [f"HTTP/1.1 {status} {reason[status]}", "Content-Type: application/json"]
        head += [f"Content-Length: {len(payload)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in extra.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("BASE_URL", "MODEL", "API_KEY_VAR", "TIMEOUT", "PRICE_PER_1K", "OUTPUT"):
        monkeypatch.delenv(f"BLACKBOARD_LLM_{name}", raising=False)
    monkeypatch.setenv("FAKE_LLM_KEY", "sk-test")
    yield


@pytest.fixture
async def api() -> AsyncIterator[FakeAPI]:
    fake = FakeAPI()
    await fake.start()
    yield fake
    await fake.close()


def agent_for(api: FakeAPI, **options: Any) -> Any:
    defaults = {"base_url": api.url, "model": "fake-model", "api_key_var": "FAKE_LLM_KEY"}
    return LLMAgent(**{**defaults, **options})


def activation(value: Any = "How long does a refund take?") -> blackboard.Activation:
    return blackboard.Activation(
        id="llm:0123", role="llm", key="question/1", version=1, value=value
    )


# -- pure parts ---------------------------------------------------------------------------


def test_confidence_is_taken_from_the_answer() -> None:
    assert llm.parse_answer('{"answer": "yes", "confidence": 0.7}', 0.3) == ("yes", 0.7)
    fenced = '```json\n{"answer": {"days": 5}, "confidence": 1.5}\n```'
    assert llm.parse_answer(fenced, 0.3) == ({"days": 5}, 1.0)
    assert llm.parse_answer('{"answer": "yes"}', 0.3) == ("yes", 0.3)
    assert llm.parse_answer('{"answer": "yes", "confidence": true}', 0.3) == ("yes", 0.3)
    assert llm.parse_answer("I think so", 0.25) == ("I think so", 0.25)
    assert llm.parse_answer("[1, 2]", 0.3) == ("[1, 2]", 0.3)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert llm.retry_after("2") == 2.0
    assert llm.retry_after("0.5") == 0.5
    assert llm.retry_after("-3") == 0.0
    assert llm.retry_after(None) is None and llm.retry_after("soon") is None
    date = "Wed, 21 Oct 2015 07:28:30 GMT"
    assert llm.retry_after(date, now=1445412480.0) == 30.0


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "BLACKBOARD_LLM_BASE_URL": "http://localhost:8000/v1/",
        "BLACKBOARD_LLM_MODEL": "m",
        "BLACKBOARD_LLM_API_KEY_VAR": "MY_KEY",
        "BLACKBOARD_LLM_TIMEOUT": "5",
        "BLACKBOARD_LLM_PRICE_PER_1K": "0.002",
        "MY_KEY": "sk-1",
    }
    cfg = llm.LLMConfig.from_env(env)
    assert (cfg.base_url, cfg.model, cfg.api_key) == ("http://localhost:8000/v1", "m", "sk-1")
    assert (cfg.timeout, cfg.price_per_1k, cfg.output) == (5.0, 0.002, "answer")
    assert llm.LLMConfig.from_env(env, {"model": "other", "timeout": "1"}).model == "other"
    no_var = {k: v for k, v in env.items() if k != "BLACKBOARD_LLM_API_KEY_VAR"}
    assert llm.LLMConfig.from_env(no_var).api_key is None  # no key unless a variable is named
    with pytest.raises(ValueError, match="MY_KEY, which is not set"):
        llm.LLMConfig.from_env({k: v for k, v in env.items() if k != "MY_KEY"})
    with pytest.raises(ValueError, match="BLACKBOARD_LLM_MODEL"):
        llm.LLMConfig.from_env({"BLACKBOARD_LLM_BASE_URL": "http://x"})
    monkeypatch.setenv("BLACKBOARD_LLM_BASE_URL", "http://from-env/v1")
    monkeypatch.setenv("BLACKBOARD_LLM_MODEL", "env-model")
    assert LLMAgent().config.model == "env-model"


def test_the_llm_policy_and_the_guide_s_policy_examples_validate() -> None:
    policy = blackboard.parse_policy((ROOT / "policies" / "llm.toml").read_text(), "llm.toml")
    assert policy.threshold("llm") == 0.6 and policy.escalation_target("llm") == "human"
    assert policy.limits("llm").retry.attempts == 6
    guide = (ROOT / "docs" / "agents.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", guide, re.S)
    assert len(blocks) >= 2
    for block in blocks:
        blackboard.parse_policy(block, "docs/agents.md")


# -- the handler against the fake API ------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "raised", "after", "reason"),
    [
        ("429", blackboard.Retry, 2.0, "answered 429"),
        ("429:0.25", blackboard.Retry, 0.25, "answered 429"),
        ("503", blackboard.Retry, None, "answered 503"),
        ("drop", blackboard.Retry, None, "connection to the API failed"),
        ("stall", blackboard.Retry, None, "timed out (ReadTimeout)"),
        ("400", blackboard.Fail, None, "refused the request: 400"),
        ("garbage", blackboard.Fail, None, "not a chat completion"),
    ],
)
async def test_failures_map_to_retry_or_fail(
    api: FakeAPI, step: str, raised: type[Exception], after: float | None, reason: str
) -> None:
    api.script = [step]
    agent = agent_for(api, timeout="0.3")
    await agent.setup(None)
    try:
        with pytest.raises(raised) as info:
            await agent.handle(activation(), None)  # it raises before touching the board
    finally:
        await agent.teardown()
    assert reason in str(info.value)
    if raised is blackboard.Retry:
        assert info.value.after == after  # type: ignore[attr-defined]
    assert len(api.seen) == 1


async def test_an_answer_is_written_with_confidence_tokens_and_cost(
    api: FakeAPI, board: blackboard.Board
) -> None:
    await board.put("question/1", {"subject": "refund", "text": "How long?"})
    agent = agent_for(api, price_per_1k="0.5")
    async with blackboard.AgentHarness(agent, board) as harness:
        outcome = await harness.activate("question/1")
    assert outcome.status == "ok", outcome.error
    answer = await board.get("question/1/answer")
    assert answer is not None
    assert answer.value == {
        "answer": "Refunds take 5 days.",
        "confidence": 0.9,
        "model": "fake-model",
        "tokens": {"prompt": 12, "completion": 8, "total": 20},
        "cost": 0.01,
        "attempt": 1,
    }
    assert (await board.get("stats/llm/tokens")).value == 20  # type: ignore[union-attr]
    assert (await board.get("stats/llm/cost")).value == pytest.approx(0.01)  # type: ignore[union-attr]
    [request] = api.seen
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["idempotency-key"] == outcome.activation.idempotency_key
    assert request.body["model"] == "fake-model"
    system, user = request.body["messages"]
    assert system["role"] == "system" and '"confidence"' in system["content"]
    assert json.loads(user["content"]) == {"subject": "refund", "text": "How long?"}


async def test_a_reply_that_is_not_json_gets_a_low_confidence(
    api: FakeAPI, board: blackboard.Board
) -> None:
    api.script = ["text"]
    await board.put("question/1", "How long does a refund take?")
    async with blackboard.AgentHarness(agent_for(api, output="draft"), board) as harness:
        assert (await harness.activate("question/1")).status == "ok"
    draft = await board.get("question/1/draft")
    assert draft is not None
    assert draft.value["answer"] == "Probably five days?" and draft.value["confidence"] == 0.3
    assert api.seen[0].body["messages"][1]["content"] == "How long does a refund take?"


async def test_429_through_the_harness_is_a_retryable_failure_that_writes_nothing(
    api: FakeAPI, board: blackboard.Board
) -> None:
    api.script = ["429"]
    await board.put("question/1", "hi")
    async with blackboard.AgentHarness(agent_for(api), board) as harness:
        outcome = await harness.activate("question/1")
    assert outcome.status == "failed" and outcome.retryable
    assert outcome.error == "Retry: the API answered 429"
    assert await board.get("question/1/answer") is None


async def test_the_deadline_cancels_the_request_and_closes_its_connection(
    api: FakeAPI, board: blackboard.Board
) -> None:
    api.script = ["stall"]
    await board.put("question/1", "hi")
    async with blackboard.AgentHarness(agent_for(api, timeout="30"), board) as harness:
        outcome = await harness.activate("question/1", deadline=0.3)
    assert outcome.status == "failed" and outcome.retryable
    assert "DeadlineExceededError" in (outcome.error or "")
    for _ in range(100):
        if api.hung_up:
            break
        await asyncio.sleep(0.01)
    assert api.hung_up == 1


# -- end to end: a controller, the role's retry policy, the agent runtime ------------------

POLICY = """
name = "qa"
[roles.llm]
escalate_to = "human"
threshold = 0.5
[roles.llm.retry]
attempts = 5
base = 0.01
cap = 0.05

[[rule]]
name = "answer"
on = "question/*"
role = "llm"
"""


async def test_transient_failures_are_retried_until_an_answer_with_one_idempotency_key(
    api: FakeAPI, board: blackboard.Board
) -> None:
    api.script = ["503", "stall", "drop", "429:0.2"]
    agent = agent_for(api, timeout="0.3")
    async with blackboard.System(board, policy=POLICY, agents=[agent]) as system:
        await board.put("question/1", "How long does a refund take?")
        await system.until_idle(within=30)
    answer = await board.get("question/1/answer")
    assert answer is not None and answer.value["attempt"] == 5
    assert answer.value["answer"] == "Refunds take 5 days."
    assert answer.value["tokens"]["total"] == 20
    assert len(api.seen) == 5
    keys = {s.headers["idempotency-key"] for s in api.seen}
    assert keys == {answer.causation.activation}  # type: ignore[union-attr]
    assert api.seen[4].at - api.seen[3].at >= 0.2  # the Retry-After of the 429 was honoured
    assert (await board.get("stats/llm/tokens")).value == 20  # type: ignore[union-attr]
    assert await steering.dead_letters(board) == []


async def test_a_400_is_a_dead_letter_at_once(api: FakeAPI, board: blackboard.Board) -> None:
    api.script = ["400"]
    async with blackboard.System(board, policy=POLICY, agents=[agent_for(api)]) as system:
        await board.put("question/1", "?")
        await system.until_idle(within=20)
        [letter] = await steering.dead_letters(board, "llm")
    assert letter["attempt"] == 1 and "Fail: the API refused the request: 400" in letter["error"]
    assert len(api.seen) == 1 and await board.get("question/1/answer") is None


async def test_stopping_the_system_cancels_a_stalled_request(
    api: FakeAPI, board: blackboard.Board
) -> None:
    api.script = ["stall"]
    settings = board.settings.model_copy(update={"shutdown_grace": 0.1})
    agent = agent_for(api, timeout="30")
    async with blackboard.System(board, policy=POLICY, agents=[agent], settings=settings):
        await board.put("question/1", "?")
        for _ in range(500):
            if api.seen:
                break
            await asyncio.sleep(0.01)
        assert api.seen
    # the runtime stopped (as on SIGTERM): the handler was cancelled, the request closed,
    # and the activation released for another agent of the role
    for _ in range(100):
        if api.hung_up:
            break
        await asyncio.sleep(0.01)
    assert api.hung_up == 1
    [act_id] = [k.decode() for k in await board.redis.hkeys(board.keys_.open_activations)]
    record = await steering.activation(board, act_id)
    assert record is not None and record["state"] == "granted"
