"""``python -m blackboard``: the command line, for processes started with ``sys.executable``
(the scenario runner starts controllers, compactors and agents this way). Edge layer."""

from blackboard.cli import main

main()
