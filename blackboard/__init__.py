"""blackboard: many agents, each its own process, coordinating through a versioned Redis board.

The public API is what ``__all__`` lists; everything else is internal and may change.

    async with blackboard.connect(board="demo", writer="me") as board:
        e = await board.put("ticket/1", {"state": "new"}, expect=blackboard.ABSENT)
        await board.put("ticket/1", {"state": "open"}, expect=e.version)
"""

from blackboard.board import Batch, Board
from blackboard.connection import connect
from blackboard.entry import ABSENT, ANY, Causation, Change, Entry
from blackboard.errors import (
    BlackboardError,
    BoardUnavailableError,
    ConflictError,
    CorruptEntryError,
    HistoryTrimmedError,
    IdempotencyKeyReusedError,
    InvalidKeyError,
    InvalidValueError,
    LeaseLostError,
    PermissionDeniedError,
    RetryExhaustedError,
    ServerNotFoundError,
    ValidationError,
)
from blackboard.ops import Apply, Delete, Fence, Put
from blackboard.server import RedisServer
from blackboard.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "ABSENT",
    "ANY",
    "Apply",
    "Batch",
    "BlackboardError",
    "Board",
    "BoardUnavailableError",
    "Causation",
    "Change",
    "ConflictError",
    "CorruptEntryError",
    "Delete",
    "Entry",
    "Fence",
    "HistoryTrimmedError",
    "IdempotencyKeyReusedError",
    "InvalidKeyError",
    "InvalidValueError",
    "LeaseLostError",
    "PermissionDeniedError",
    "Put",
    "RedisServer",
    "RetryExhaustedError",
    "ServerNotFoundError",
    "Settings",
    "ValidationError",
    "__version__",
    "connect",
]
