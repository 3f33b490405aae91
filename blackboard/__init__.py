"""blackboard: many agents, each its own process, coordinating through a versioned Redis board.

The public API is what ``__all__`` lists; everything else is internal and may change.

    async with blackboard.connect(board="demo", writer="me") as board:
        e = await board.put("ticket/1", {"state": "new"}, expect=blackboard.ABSENT)
        await board.put("ticket/1", {"state": "open"}, expect=e.version)
"""

from blackboard.activation import Activation
from blackboard.agent import Agent
from blackboard.board import Batch, Board
from blackboard.connection import connect
from blackboard.controller import Controller
from blackboard.entry import ABSENT, ANY, Causation, Change, Entry
from blackboard.errors import (
    ActivationClosedError,
    AgentLoadError,
    BlackboardError,
    BoardUnavailableError,
    ConflictError,
    CorruptEntryError,
    DeadlineExceededError,
    HistoryTrimmedError,
    IdempotencyKeyReusedError,
    InvalidKeyError,
    InvalidValueError,
    LeaseLostError,
    PermissionDeniedError,
    PolicyError,
    RetryExhaustedError,
    ServerNotFoundError,
    ValidationError,
)
from blackboard.ops import Apply, Delete, Fence, Put
from blackboard.policy import Policy, parse_policy
from blackboard.runtime import AgentRuntime, Outcome
from blackboard.server import RedisServer
from blackboard.settings import Settings
from blackboard.testing import AgentHarness

__version__ = "0.1.0"

__all__ = [
    "ABSENT",
    "ANY",
    "Activation",
    "ActivationClosedError",
    "Agent",
    "AgentHarness",
    "AgentLoadError",
    "AgentRuntime",
    "Apply",
    "Batch",
    "BlackboardError",
    "Board",
    "BoardUnavailableError",
    "Causation",
    "Change",
    "ConflictError",
    "Controller",
    "CorruptEntryError",
    "DeadlineExceededError",
    "Delete",
    "Entry",
    "Fence",
    "HistoryTrimmedError",
    "IdempotencyKeyReusedError",
    "InvalidKeyError",
    "InvalidValueError",
    "LeaseLostError",
    "Outcome",
    "PermissionDeniedError",
    "Policy",
    "PolicyError",
    "Put",
    "RedisServer",
    "RetryExhaustedError",
    "ServerNotFoundError",
    "Settings",
    "ValidationError",
    "__version__",
    "connect",
    "parse_policy",
]
