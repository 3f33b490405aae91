"""The board layer: the versioned board a writer sees (the write path).

`client.Board` (get, put, transact, update, batch, apply, history, watch), connections
(`connection.connect`), operations, schemas, the change feed (`watch`), proposals, retention,
snapshots and restore. Imports the store layer and below; never control, compaction, runtime
or the edges.
"""
