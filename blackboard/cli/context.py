"""Shared pieces of the CLI: the root app, common options, output, error handling.

Every error reaches the user as one line on stderr: `run()` turns a BlackboardError into
``error: ...`` and exit code 1, and the root command (`OneLineErrors`) turns a bad argument
into ``error: ...`` and exit code 2 (typer would draw a box around the usage). Board data is
printed through `terminal_text` / `cell`, which show control characters as escapes and keep
rich from reading ``[...]`` in a value as markup. Imports the engine (connect, settings,
errors, board.names, policy) and typer/rich/orjson; never imported by the engine.
"""

from __future__ import annotations

import asyncio
import base64
import re
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import orjson
import pydantic
import typer
from rich.console import Console
from rich.markup import escape
from typer._click.exceptions import ClickException, UsageError  # typer vendors click
from typer.core import TyperGroup

from blackboard.board.names import check_board
from blackboard.control.policy import Policy, decode_policy, parse_policy
from blackboard.errors import BlackboardError, BoardUnavailableError, InvalidKeyError, PolicyError
from blackboard.store.entry import ABSENT, ANY, Change, Entry, Expect

T = TypeVar("T")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

# C0 and C1 controls, DEL, and the Unicode line separators and bidirectional overrides that
# can rearrange what a terminal shows
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_KEEP_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_JSON_UNESCAPED = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
MAX_WRITER_LENGTH = 200


def _escaped(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def terminal_text(text: object, *, lines: bool = False) -> str:
    """`text` safe to print on a terminal: control characters (escape sequences, bell,
    backspace, bidirectional overrides) are shown as ``\\xNN`` escapes; newlines and tabs
    too, unless `lines`. Print it with ``markup=False``, or use `cell`."""
    pattern = _CONTROL_KEEP_LINES if lines else _CONTROL
    return pattern.sub(_escaped, str(text))


def cell(text: object) -> str:
    """`terminal_text` for a place that rich reads as markup (a table cell, a styled line)."""
    return escape(terminal_text(text))


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with `code`."""
    err.print(f"error: {terminal_text(message)}", highlight=False, markup=False)
    raise typer.Exit(code)


class OneLineErrors(TyperGroup):
    """The root command: a bad argument is one line on stderr and exit code 2 (typer would
    print the usage and a box), any other click error one line and its own exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # no arguments: the help, shown
                if self.rich_markup_mode is None:  # rich mode has printed it already
                    exc.show()
                sys.exit(exc.exit_code)
            where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
            err.print(
                f"error: {where}{terminal_text(exc.format_message())} (see --help)",
                highlight=False,
                markup=False,
            )
            sys.exit(exc.exit_code)
        except ClickException as exc:
            err.print(
                f"error: {terminal_text(exc.format_message())}", highlight=False, markup=False
            )
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print("aborted", highlight=False, markup=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="blackboard",
    help="Agents coordinating through a versioned Redis blackboard.",
    cls=OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _board_name(value: str) -> str:
    try:
        return check_board(value)
    except InvalidKeyError as exc:
        raise typer.BadParameter(f"{value!r}: {exc.reason}") from None


def writer_id(value: str | None) -> str | None:
    """A writer, agent or user id given on the command line: 1 to 200 printable characters
    (it is shown to everyone who reads the board). Raises typer.BadParameter."""
    if value is None:
        return None
    if not value or len(value) > MAX_WRITER_LENGTH or not value.isprintable():
        raise typer.BadParameter(f"{value!r}: use 1 to {MAX_WRITER_LENGTH} printable characters")
    return value


BoardOpt = Annotated[
    str,
    typer.Option(
        "--board", "-b", envvar="BLACKBOARD_BOARD", help="Board name.", callback=_board_name
    ),
]
RedisOpt = Annotated[
    str | None,
    typer.Option(
        "--redis",
        envvar="BLACKBOARD_REDIS_URL",
        help="Redis URL (redis://, rediss://, unix://). Required for commands that keep data.",
    ),
]
SERVE_WAIT = 30.0
"""Seconds a long-running process (controller, compactor, agent) keeps trying to reach a
server that is down or restarting before it gives up with exit 1."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (one object per line).")]


def need_url(url: str | None) -> str:
    """The URL, or exit 2 with a line saying how to get one."""
    if not url:
        fail(
            "no Redis URL: pass --redis URL or set BLACKBOARD_REDIS_URL "
            "(`blackboard server` starts a private one and prints its URL)",
            2,
        )
    return url


def _hint(exc: BlackboardError) -> str:
    """What most likely went wrong, for the errors whose own text does not say."""
    text = str(exc)
    if not isinstance(exc, BoardUnavailableError):
        return ""
    if "reset by peer" in text or "Connection closed by server" in text:
        return (
            " (the server closed the connection at once: it may expect TLS (use rediss://), "
            "or a client certificate (set BLACKBOARD_TLS_CERT_FILE and BLACKBOARD_TLS_KEY_FILE)"
            ")"
        )
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            " (the server's certificate is not trusted: set BLACKBOARD_TLS_CA_FILE to the CA "
            "that signed it)"
        )
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return " (the server does not speak TLS: use redis:// for it)"
    if "CERTIFICATE_REQUIRED" in text or "certificate required" in text:
        return (
            " (the server wants a client certificate: set BLACKBOARD_TLS_CERT_FILE and "
            "BLACKBOARD_TLS_KEY_FILE)"
        )
    return ""


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro`; a BlackboardError becomes one line on stderr and exit code 1."""
    try:
        return asyncio.run(coro)
    except BlackboardError as exc:
        fail(f"{exc}{_hint(exc)}")
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except asyncio.CancelledError:  # stopped by force: stuck past the shutdown grace
        fail("stopped by force: still busy after the shutdown grace (a reply never came?)")


def read_policy_file(path: Path) -> tuple[str, Policy]:
    """The text of a policy file and the policy it holds; a file that cannot be read or is
    not a valid policy is one line on stderr and exit code 2."""
    try:
        source = decode_policy(path.read_bytes(), str(path))
        return source, parse_policy(source, str(path))
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", 2)
    except PolicyError as exc:
        fail(str(exc), 2)


def parse_expect(text: str | None) -> int | Expect:
    """--expect: a version number, 'absent' or 'any'."""
    if text is None or text == "any":
        return ANY
    if text == "absent":
        return ABSENT
    try:
        version = int(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: use a version number, 'absent' or 'any'") from None
    if version < 1:
        raise typer.BadParameter("a version is a number >= 1")
    return version


def parse_json(text: str, what: str = "value") -> Any:
    """A JSON document from the command line ('-' reads stdin); bad JSON exits 2."""
    if text == "-":
        text = sys.stdin.read()
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"{what} is not valid JSON: {exc}") from None


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return {"$base64": base64.b64encode(obj).decode()}
    if isinstance(obj, pydantic.BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _json_escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def dumps(obj: Any) -> str:
    """JSON text of `obj` that is safe on a terminal: JSON escapes C0 controls itself, and
    the few other controls (which can only occur inside strings) are escaped here too."""
    text = orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()
    return _JSON_UNESCAPED.sub(_json_escape, text)


def entry_dict(e: Entry) -> dict[str, Any]:
    c = e.causation
    return {
        "key": e.key,
        "value": e.value,
        "version": e.version,
        "revision": e.revision,
        "writer": e.writer,
        "time": e.time.isoformat(),
        "schema": e.schema,
        "schema_version": e.schema_version,
        "causation": None if c is None else {"activation": c.activation, "depth": c.depth},
        "deleted": e.deleted,
        "kind": e.kind,
    }


def change_dict(c: Change) -> dict[str, Any]:
    return {
        "revision": c.revision,
        "key": c.key,
        "version": c.version,
        "kind": c.kind,
        "value": c.value,
        "writer": c.writer,
        "time": c.time.isoformat(),
        "activation": c.activation,
    }
