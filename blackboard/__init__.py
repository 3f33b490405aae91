"""blackboard: many agents, each its own process, coordinating through a versioned Redis board.

The public API is what ``__all__`` lists; everything else is internal and may change.

    async with blackboard.connect(board="demo", writer="me") as board:
        e = await board.put("ticket/1", {"state": "new"}, expect=blackboard.ABSENT)
        await board.put("ticket/1", {"state": "open"}, expect=e.version)
"""

from blackboard.board.client import Batch, Board
from blackboard.board.connection import connect
from blackboard.board.ops import Apply, Delete, Fence, Put
from blackboard.board.retention import Retention
from blackboard.compaction.compactor import Compactor
from blackboard.compaction.merge import MergeRule
from blackboard.control.activation import Activation
from blackboard.control.controller import Controller
from blackboard.control.policy import Policy, parse_policy
from blackboard.control.policy_board import apply_policy
from blackboard.errors import (
    ActivationClosedError,
    AgentLoadError,
    BlackboardError,
    BoardNotEmptyError,
    BoardUnavailableError,
    ConflictError,
    CorruptEntryError,
    DeadlineExceededError,
    DurabilityError,
    DurabilityUnsupportedError,
    Fail,
    HistoryTrimmedError,
    IdempotencyKeyReusedError,
    InvalidKeyError,
    InvalidValueError,
    LeaseLostError,
    LibraryMissingError,
    MergePolicyError,
    PermissionDeniedError,
    PolicyError,
    Retry,
    RetryExhaustedError,
    ServerNotFoundError,
    SnapshotError,
    TelemetryUnavailableError,
    ValidationError,
)
from blackboard.runtime.agent import Agent
from blackboard.runtime.agent_runtime import AgentRuntime, Outcome
from blackboard.runtime.system import System
from blackboard.runtime.testing import AgentHarness
from blackboard.settings import Settings
from blackboard.store.durability import Durability
from blackboard.store.entry import ABSENT, ANY, Causation, Change, Entry, Proposal
from blackboard.store.server import RedisServer
from blackboard.version import __version__

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
    "BoardNotEmptyError",
    "BoardUnavailableError",
    "Causation",
    "Change",
    "Compactor",
    "ConflictError",
    "Controller",
    "CorruptEntryError",
    "DeadlineExceededError",
    "Delete",
    "Durability",
    "DurabilityError",
    "DurabilityUnsupportedError",
    "Entry",
    "Fail",
    "Fence",
    "HistoryTrimmedError",
    "IdempotencyKeyReusedError",
    "InvalidKeyError",
    "InvalidValueError",
    "LeaseLostError",
    "LibraryMissingError",
    "MergePolicyError",
    "MergeRule",
    "Outcome",
    "PermissionDeniedError",
    "Policy",
    "PolicyError",
    "Proposal",
    "Put",
    "RedisServer",
    "Retention",
    "Retry",
    "RetryExhaustedError",
    "ServerNotFoundError",
    "Settings",
    "SnapshotError",
    "System",
    "TelemetryUnavailableError",
    "ValidationError",
    "__version__",
    "apply_policy",
    "connect",
    "parse_policy",
]
