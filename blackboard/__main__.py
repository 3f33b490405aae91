"""``python -m blackboard``: the command line, for processes started with ``sys.executable``
(the scenario runner starts controllers, compactors and agents this way). Edge layer.

A SIGTERM that arrives while the interpreter is still importing (before a command installs
its own handler, which stops it cleanly) ends the process at once with exit code 0: nothing
has started yet, so there is nothing to clean up. Without this, Python's default action
would kill it with -15, which a supervisor rightly reads as an unclean stop.
"""

import signal
import sys


def _stop_before_start(signum: int, frame: object) -> None:
    sys.exit(0)


signal.signal(signal.SIGTERM, _stop_before_start)

from blackboard.cli import main  # noqa: E402 (after the early handler, on purpose)

main()
