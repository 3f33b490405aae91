"""The runtime layer: agents and the processes that run them.

The `Agent` base class, the agent process (`agent_runtime.AgentRuntime`: claim, run, settle),
the board a handler sees (`activation_board`), the test harness (`testing.AgentHarness`) and
`system.System`, which runs controller, compactor and agents in one process. Imports control,
compaction, board and store; never the edges.
"""
