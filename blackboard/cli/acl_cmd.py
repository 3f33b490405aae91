"""`blackboard acl generate`: Redis ACL users per role from a policy (edge layer).

Writes an ACL file (password hashes only) and one password file per user (mode 0600); with
`--apply` it also creates the users on a running server as the connecting (admin) user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from blackboard.board.connection import redis_from_url
from blackboard.cli.context import (
    BoardOpt,
    RedisOpt,
    app,
    err,
    fail,
    need_url,
    out,
    read_policy_file,
    run,
)
from blackboard.control.acl import acl_users, apply_users, render_aclfile, write_secrets
from blackboard.errors import BlackboardError
from blackboard.settings import Settings
from blackboard.store import deploy as server

acl_app = typer.Typer(help="Least-privilege Redis ACL users per role.", no_args_is_help=True)
app.add_typer(acl_app, name="acl")


@acl_app.command("generate")
def generate(
    policy: Annotated[Path, typer.Option(help="Policy file whose roles get users.")],
    board: BoardOpt = "demo",
    secrets_dir: Annotated[
        Path,
        typer.Option(help="Directory for one password file per user (created, mode 0600)."),
    ] = Path("secrets"),
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the ACL file here (default: stdout).")
    ] = None,
    apply: Annotated[
        bool, typer.Option(help="Also create the users on the server given by --redis.")
    ] = False,
    redis: RedisOpt = None,
) -> None:
    """Write ACL users for a board: one per role, the controller and the compactor."""
    parsed = read_policy_file(policy)[1]
    try:
        users = acl_users(parsed, board)
    except BlackboardError as exc:
        fail(str(exc), 2)
    try:
        hashes = write_secrets(users, secrets_dir)
    except BlackboardError as exc:  # an unsafe or unusable password file: named in the error
        fail(str(exc))
    except (OSError, ValueError, IndexError) as exc:  # unwritable, or a file that is not one
        reason = exc.strerror if isinstance(exc, OSError) else "a password file is unreadable"
        fail(f"cannot use the password files in {secrets_dir}: {reason}")
    text = render_aclfile(users, hashes)
    if out_file is None:
        out.print(text, highlight=False, markup=False, end="")
    else:
        try:
            out_file.write_text(text)
        except OSError as exc:
            fail(f"cannot write {out_file}: {exc.strerror}")
        err.print(f"wrote {out_file}", highlight=False, markup=False)
    err.print(
        f"password files in {secrets_dir}/ (give each process its own: "
        "BLACKBOARD_REDIS_USERNAME=<user> BLACKBOARD_REDIS_PASSWORD_FILE=<file>)",
        highlight=False,
        markup=False,
    )
    for user in users:
        err.print(f"  {user.name}: {user.purpose}", highlight=False, markup=False)
        if user.name.startswith(f"bb:{board}:role:") and "no `writes` given" in user.purpose:
            err.print(
                f"warning: {user.purpose} (add writes = [...] to its [roles] table)",
                highlight=False,
                markup=False,
            )
    if apply:
        url = need_url(redis)

        async def go() -> None:
            client = redis_from_url(url, Settings())
            try:
                await apply_users(client, users, hashes)
                await server.load_library(client)  # role users may not load it themselves
            finally:
                await client.aclose()

        run(go())
        err.print(
            f"created {len(users)} users and loaded functions library {server.LIBRARY_VERSION}",
            highlight=False,
            markup=False,
        )
