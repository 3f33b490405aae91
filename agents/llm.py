"""An LLM agent: answers an entry by asking an OpenAI-compatible chat-completions API.

    export BLACKBOARD_LLM_BASE_URL=https://api.openai.com/v1   # or a local vLLM, Ollama...
    export BLACKBOARD_LLM_MODEL=gpt-4o-mini
    export BLACKBOARD_LLM_API_KEY_VAR=OPENAI_API_KEY           # the variable holding the key
    blackboard agent run agents/llm.py:LLMAgent --board qa

An activation of role ``llm`` on ``question/7`` sends the entry's value as the prompt (a
string as it is, anything else as JSON) and writes ``question/7/answer`` = {answer,
confidence, model, tokens, cost, attempt}; it also adds the tokens and the cost to
``stats/llm/tokens`` and ``stats/llm/cost``. The model is asked to reply in JSON with
"answer" and "confidence" (0 to 1); a reply that is not such JSON is kept as the answer with a
low confidence, so a policy's escalation threshold sends it to a human (policies/llm.toml).

Failures: 429, 408 and 5xx answers, timeouts and dropped connections raise
`blackboard.Retry` (with the Retry-After header's delay when given); other 4xx answers and a
200 that is not a chat completion raise `blackboard.Fail`. Every request carries
``Idempotency-Key: <activation.idempotency_key>``, the same on every attempt, so an API that
honours it bills a rerun once. The tokens recorded are those of the run that committed.

Settings come from ``BLACKBOARD_LLM_*`` variables, and options override them
(``-o model=... -o timeout=20``): base_url, model, api_key_var, timeout (seconds per
request, default 60), price_per_1k (cost per 1000 tokens, default 0), output (the suffix of
the result key, default "answer"), low_confidence (given to a non-JSON reply, default 0.3).
Subclass to serve another role: ``class Answerer(LLMAgent): role = "specialist"``.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

import blackboard

SYSTEM_PROMPT = (
    "Answer the user's request. Reply with one JSON object and nothing else: "
    '{"answer": <your answer>, "confidence": <a number from 0 to 1: how sure you are>}.'
)
RETRYABLE_STATUS = {408, 429}  # and every 5xx: the server may answer next time


@dataclass(frozen=True, slots=True)
class LLMConfig:
    """Where and how to ask; `from_env` reads it."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0
    price_per_1k: float = 0.0
    output: str = "answer"
    low_confidence: float = 0.3

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] = os.environ, options: Mapping[str, Any] | None = None
    ) -> LLMConfig:
        """``BLACKBOARD_LLM_*`` variables, overridden by `options`. Raises ValueError for a
        missing base URL or model, or an API key variable that is named but unset."""

        def get(name: str, default: str | None = None) -> str | None:
            if options and options.get(name) is not None:
                return str(options[name])
            return env.get(f"BLACKBOARD_LLM_{name.upper()}", default)

        base_url, model = get("base_url"), get("model")
        if not base_url or not model:
            raise ValueError("set BLACKBOARD_LLM_BASE_URL and BLACKBOARD_LLM_MODEL")
        # the key is read only from the variable named: a key is never sent to a base URL
        # the user did not pair it with (local servers need none)
        key_var = get("api_key_var")
        api_key = (env.get(key_var) or None) if key_var else None
        if key_var and api_key is None:
            raise ValueError(f"BLACKBOARD_LLM_API_KEY_VAR names {key_var}, which is not set")
        return cls(
            base_url=base_url.rstrip("/"),
            model=model,
            api_key=api_key,
            timeout=float(get("timeout", "60") or 60),
            price_per_1k=float(get("price_per_1k", "0") or 0),
            output=get("output", "answer") or "answer",
            low_confidence=float(get("low_confidence", "0.3") or 0.3),
        )


def prompt_of(value: Any) -> str:
    """The prompt an entry's value makes: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def parse_answer(text: str, low_confidence: float) -> tuple[Any, float]:
    """(answer, confidence) from the model's reply: its JSON when it has an "answer", else the
    text itself with `low_confidence`. The confidence is clamped to [0, 1]."""
    body = text.strip()
    if body.startswith("```"):  # models like to fence JSON in markdown
        body = body.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(body)
    except ValueError:
        return text, low_confidence
    if not isinstance(data, dict) or "answer" not in data:
        return text, low_confidence
    raw = data.get("confidence")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return data["answer"], low_confidence
    return data["answer"], min(1.0, max(0.0, float(raw)))


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def check_response(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a successful completion. Raises blackboard.Retry for a transient
    status (with its Retry-After), blackboard.Fail for any other error or a malformed body."""
    status = response.status_code
    if status in RETRYABLE_STATUS or status >= 500:
        after = retry_after(response.headers.get("retry-after"))
        raise blackboard.Retry(f"the API answered {status}", after=after)
    if status >= 400:
        raise blackboard.Fail(f"the API refused the request: {status} {response.text[:200]}")
    try:
        body = response.json()
        if not isinstance(body, dict):
            raise TypeError(f"a JSON {type(body).__name__}, not an object")
        str(body["choices"][0]["message"]["content"])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise blackboard.Fail(f"the API's reply is not a chat completion: {exc!r}") from None
    return body


class LLMAgent(blackboard.Agent):
    """Answers each activation's entry with one chat completion (see the module)."""

    role = "llm"
    concurrency = 4

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.config = LLMConfig.from_env(os.environ, options)
        self.client: httpx.AsyncClient | None = None

    async def setup(self, board: Any) -> None:
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        self.client = httpx.AsyncClient(
            base_url=self.config.base_url, headers=headers, timeout=self.config.timeout
        )

    async def teardown(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def complete(self, prompt: str, idempotency_key: str) -> dict[str, Any]:
        """One chat completion. Raises blackboard.Retry or blackboard.Fail (`check_response`).
        Cancelling the task (deadline, SIGTERM) closes the request at once."""
        if self.client is None:
            await self.setup(None)
        assert self.client is not None
        request = {
            "model": self.config.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": prompt},
            ],
        }
        try:
            response = await self.client.post(
                "/chat/completions", json=request, headers={"Idempotency-Key": idempotency_key}
            )
        except httpx.TimeoutException as exc:
            raise blackboard.Retry(f"the API timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise blackboard.Retry(f"the connection to the API failed: {exc!r}") from exc
        return check_response(response)

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        reply = await self.complete(prompt_of(activation.value), activation.idempotency_key)
        text = reply["choices"][0]["message"]["content"]
        answer, confidence = parse_answer(str(text), self.config.low_confidence)
        usage = reply.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
        total = int(usage.get("total_tokens") or prompt_tokens + completion_tokens)
        cost = round(total / 1000 * self.config.price_per_1k, 8)
        await board.put(
            f"{activation.key}/{self.config.output}",
            {
                "answer": answer,
                "confidence": confidence,
                "model": str(reply.get("model") or self.config.model),
                "tokens": {
                    "prompt": prompt_tokens,
                    "completion": completion_tokens,
                    "total": total,
                },
                "cost": cost,
                "attempt": activation.attempt,
            },
        )
        await board.apply("stats/llm/tokens", "add", total)
        await board.apply("stats/llm/cost", "add", float(cost))
