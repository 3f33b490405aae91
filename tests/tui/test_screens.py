"""Pilot tests: every screen of the TUI driven by keys (and the mouse) against real boards."""

from __future__ import annotations

from textual.widgets import DataTable, Input
from tui_pilot import running, shows, until
from tui_scenario import eventually, support_scenario, ticket
from tui_snapshots import screen_text

import blackboard
from blackboard.compaction.compactor import Compactor
from blackboard.compaction.merge import rules_from_document
from blackboard.control.read import ControlReader
from blackboard.tui.escalations import read_escalations
from blackboard.tui.screens.edit_screen import EditScreen
from blackboard.tui.screens.entries_screen import EntriesScreen
from blackboard.tui.screens.entry_screen import EntryScreen
from blackboard.tui.screens.escalations_screen import EscalationsScreen
from blackboard.tui.screens.help_screen import HelpScreen
from blackboard.tui.screens.log_screen import LogScreen
from blackboard.tui.screens.pick_screen import PickScreen
from blackboard.tui.screens.reason_screen import ReasonScreen
from blackboard.tui.widgets.row_table import RowTable


async def fill(board: blackboard.Board, n: int, prefix: str) -> None:
    async with board.batch() as b:
        for i in range(n):
            b.put(f"{prefix}{i:04d}", {"n": i})


async def test_entries_filter_scroll_live_and_open(tui_board: blackboard.Board) -> None:
    await fill(tui_board, 300, "job/")
    await tui_board.bind(writer="bot").put("cfg/a", {"x": 1})
    async with running(tui_board) as (app, pilot):
        assert isinstance(app.screen, EntriesScreen)
        await until(pilot, shows(pilot, "301 entries", "cfg/a", "job/0000"))
        table = app.screen.query_one(RowTable)
        await pilot.press("end")  # the last page is read on demand
        await until(pilot, shows(pilot, "job/0299"))
        assert table.cursor == 300
        await pilot.press("home", "down", "down")
        assert table.cursor == 2
        # live: a new entry appears without a reload, an update changes its row in place
        await tui_board.put("cfg/b", {"y": 2})
        await tui_board.bind(writer="bot").put("cfg/a", {"x": "new"})
        await until(pilot, shows(pilot, "302 entries", "cfg/b", '{"x":"new"}'))
        # filter by writer: a scan
        await pilot.press("slash")
        assert isinstance(app.focused, Input) and app.focused.id == "pattern"
        await pilot.press("tab", "tab")  # to the writer field
        await pilot.press(*"bot", "enter")
        await until(pilot, shows(pilot, "writer=bot", "1 matched", "cfg/a"))
        assert "job/0000" not in screen_text(app)
        await pilot.press("c")  # clear
        await until(pilot, shows(pilot, "302 entries"))
        # pattern filter by typing
        await pilot.press("slash", *"job/01*", "enter")
        await until(pilot, shows(pilot, "job/01* · 100 entries", "job/0100"))
        # the mouse: click the third row, double click opens it
        await pilot.click(RowTable, offset=(5, 3))
        assert table.cursor == 2
        await pilot.click(RowTable, offset=(5, 3), times=2)
        await until(pilot, lambda: isinstance(app.screen, EntryScreen))
        assert isinstance(app.screen, EntryScreen) and app.screen.key == "job/0102"
        await pilot.press("escape")
        assert isinstance(app.screen, EntriesScreen)
        await pilot.press("slash", *"bad key!", "enter")
        await pilot.pause()
        assert "job/01* · 100 entries" in screen_text(app)  # the refused pattern changed nothing


async def test_entries_divergent_only(tui_board: blackboard.Board) -> None:
    await fill(tui_board, 10, "p/")
    await tui_board.bind(writer="a").propose("p/0003", 1)
    await tui_board.bind(writer="b").propose("p/0003", 2)
    async with running(tui_board) as (_app, pilot):
        await until(pilot, shows(pilot, "10 entries"))
        await pilot.press("d")
        await until(pilot, shows(pilot, "divergent", "1 matched", "p/0003"))
        await tui_board.bind(writer="a").propose("p/0007", 1)
        await tui_board.bind(writer="b").propose("p/0007", 2)
        await until(pilot, shows(pilot, "2 matched", "p/0007"))


async def test_entry_detail_versions_diff_and_live(tui_board: blackboard.Board) -> None:
    for i in range(3):
        await tui_board.put("doc/1", {"title": "t", "rev": i})
    await tui_board.bind(writer="p1").propose("doc/1", {"title": "x"}, confidence=0.4)
    async with running(tui_board) as (app, pilot):
        await until(pilot, shows(pilot, "doc/1"))
        await pilot.press("enter")
        await until(pilot, shows(pilot, "3 versions kept", "1 proposals", '+  "rev": 2'))
        assert "p1" in screen_text(app) and "0.40" in screen_text(app)
        await pilot.press("down", "down", "a")  # v1 on the left, v3 (newest) on the right
        await until(pilot, shows(pilot, "--- v1 by tester", '-  "rev": 0'))
        await pilot.press("up", "b")  # v2 on the right
        await until(pilot, shows(pilot, "+++ v2 by tester", '+  "rev": 1'))
        await tui_board.put("doc/1", {"title": "t", "rev": 9})
        await until(pilot, shows(pilot, "4 versions kept"))
        await pilot.press("escape")
        assert isinstance(app.screen, EntriesScreen)


async def test_log_pause_search_older_and_open(tui_board: blackboard.Board) -> None:
    await fill(tui_board, 600, "old/")
    await tui_board.put("ticket/1", {"subject": "printer"})
    async with running(tui_board, start="log") as (app, pilot):
        assert isinstance(app.screen, LogScreen)
        await until(pilot, shows(pilot, "ticket/1", "following"))
        await pilot.press("space")
        await tui_board.put("ticket/2", {"subject": "held"})
        await until(pilot, shows(pilot, "PAUSED", "1 new held"))
        assert "ticket/2" not in screen_text(app)
        await pilot.press("space")
        await until(pilot, shows(pilot, "ticket/2", "following"))
        await pilot.press("slash", *"printer", "enter")
        await until(pilot, shows(pilot, "search 'printer'", "1 changes"))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, EntryScreen))
        assert app.screen.key == "ticket/1"  # type: ignore[attr-defined]
        await pilot.press("escape", "escape")  # back, then clear the search
        await until(pilot, shows(pilot, "501 changes"))  # it started with the last 500
        await pilot.press("o")
        await until(pilot, shows(pilot, "602 changes"))


async def test_agents_and_agenda_views(tui_board: blackboard.Board) -> None:
    async with support_scenario(tui_board, agents={"Triage": {"latency": 30.0}}):
        await tui_board.put("ticket/7", ticket(tier="vip"))
        async with running(tui_board, start="agents") as (app, pilot):
            await until(pilot, shows(pilot, "triage-t", "closed", "1/8"), what="the agent")
            await until(pilot, shows(pilot, "ticket/7@v1"), what="its claim")
            assert "controller lease: " in screen_text(app)
            await pilot.press("4")
            await until(pilot, shows(pilot, "claimed", "triage-t", "triage-vip", "; priority 100"))
            await until(pilot, shows(pilot, "refused", "superseded by a rule of higher"))
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, EntryScreen))
            await until(pilot, shows(pilot, "controller decisions", "granted triage"))


async def test_escalations_approve_edit_reject_and_stale(tui_board: blackboard.Board) -> None:
    async with support_scenario(tui_board):
        for n in (1, 2, 3):
            await tui_board.put(f"ticket/{n}", ticket())

        async def three() -> bool:
            return len(await read_escalations(ControlReader(tui_board))) == 3

        await eventually(three, what="three escalations")
        async with running(tui_board, start="escalations") as (app, pilot):
            screen = app.screen
            assert isinstance(screen, EscalationsScreen)
            await until(pilot, shows(pilot, "3 waiting for a human", "ticket/1/answer@v1"))
            # approve the first
            await pilot.press("a")
            await until(pilot, shows(pilot, "approved ticket/1/answer", "wrote v2 as human:alice"))
            await until(pilot, shows(pilot, "2 waiting for a human"))
            # edit the second: the editor opens with its value
            await pilot.press("home", "e")
            await until(pilot, lambda: isinstance(app.screen, EditScreen))
            editor = app.screen
            editor.query_one("TextArea").text = "{not json"  # type: ignore[attr-defined]
            await pilot.press("ctrl+s")
            await until(pilot, shows(pilot, "not valid JSON"))
            editor.query_one("TextArea").text = '{"answer": "call us", "confidence": 1}'  # type: ignore[attr-defined]
            await pilot.press("ctrl+s")
            await until(pilot, shows(pilot, "edited ticket/2/answer"))
            assert (await tui_board.get("ticket/2/answer")).value == {  # type: ignore[union-attr]
                "answer": "call us", "confidence": 1,
            }  # fmt: skip
            # a stale view: the third moves on under the view, then the human approves
            await until(pilot, shows(pilot, "1 waiting for a human"))
            await tui_board.put("ticket/3/answer", {"answer": "meanwhile", "confidence": 1.0})
            await pilot.press("a")
            await until(pilot, shows(pilot, "conflict: ticket/3/answer is at version 2"))
            assert (await tui_board.get("ticket/3/answer")).value["answer"] == "meanwhile"  # type: ignore[union-attr]
            await pilot.press("R")
            await until(pilot, shows(pilot, "stale"))
            # reject asks first (with a reason); escape keeps everything
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ReasonScreen))
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, EscalationsScreen))
            assert await tui_board.get("ticket/3/answer") is not None


async def test_escalations_reject_and_merge_pick(tui_board: blackboard.Board) -> None:
    rules = rules_from_document({"merge": [{"pattern": "contract/*", "strategy": "escalate"}]})
    compactor = Compactor(tui_board.bind(writer="compactor"), rules=rules)
    await tui_board.bind(writer="a").propose("contract/1", {"clause": "A"})
    await tui_board.bind(writer="b").propose("contract/1", {"clause": "B"})
    await compactor.run(until_idle=True)
    async with support_scenario(tui_board):
        await tui_board.put("ticket/5", ticket())
        async with running(tui_board, start="escalations") as (app, pilot):
            await until(pilot, shows(pilot, "2 waiting for a human", "ticket/5/answer"), 15)
            table = app.screen.query_one(DataTable)
            row = next(i for i, it in enumerate(app.screen.items) if it.kind == "merge")  # type: ignore[attr-defined]
            table.move_cursor(row=row)
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, PickScreen))
            await pilot.press("down", "enter")
            await until(pilot, shows(pilot, "approved contract/1"))
            doc = await tui_board.get("sys/escalations/merge/contract/1")
            assert doc is not None and doc.value["decision"] == {"clause": "B"}
            assert doc.value["decided_by"] == "human:alice"
            await until(pilot, shows(pilot, "1 waiting for a human"))
            await pilot.press("home", "r")
            await until(pilot, lambda: isinstance(app.screen, ReasonScreen))
            app.screen.query_one(Input).value = "off topic > specialist"
            await pilot.press("enter")
            await until(pilot, shows(pilot, "rejected ticket/5/answer", "deleted as human:alice"))
            assert await tui_board.get("ticket/5/answer") is None
            # the reason is on the record and the specialist got the item back
            from blackboard.control.decisions import explain

            async def sent_back() -> bool:
                said = [d["reasons"] for d in await explain(tui_board, "ticket/5/answer")]
                want = ["reject by human:alice: off topic", "rejected and sent back to specialist"]
                return want in said

            assert await eventually(sent_back)


async def test_help_screen_lists_keys(tui_board: blackboard.Board) -> None:
    async with running(tui_board) as (app, pilot):
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = screen_text(app)
        assert "Divergent only" in text and "Escalations" in text
        await pilot.press("escape")
        assert isinstance(app.screen, EntriesScreen)
        for key, view in (("2", "log"), ("3", "agents"), ("4", "agenda"), ("5", "escalations")):
            await pilot.press(key)
            assert app.current_mode == view
            await until(pilot, shows(pilot, f" {view}  ·  board"))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "Approve" in screen_text(app)
        await pilot.press("q")  # closes help, does not quit
        assert app.is_running and isinstance(app.screen, EscalationsScreen)
