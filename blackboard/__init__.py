"""blackboard: many agents, each its own process, coordinating through a versioned Redis board.

The public API is what ``__all__`` lists; everything else is internal and may change.

    async with blackboard.connect(board="demo", writer="me") as board:
        e = await board.put("ticket/1", {"state": "new"}, expect=blackboard.ABSENT)
        await board.put("ticket/1", {"state": "open"}, expect=e.version)
"""

from blackboard.activation import Activation
from blackboard.agent import Agent
from blackboard.board import Batch, Board
from blackboard.compactor import Compactor
from blackboard.connection import connect
from blackboard.controller import Controller
from blackboard.durability import Durability
from blackboard.entry import ABSENT, ANY, Causation, Change, Entry, Proposal
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
from blackboard.merge import MergeRule
from blackboard.ops import Apply, Delete, Fence, Put
from blackboard.policy import Policy, parse_policy
from blackboard.policy_board import apply_policy
from blackboard.retention import Retention
from blackboard.runtime import AgentRuntime, Outcome
from blackboard.server import RedisServer
from blackboard.settings import Settings
from blackboard.system import System
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
