"""The store layer: everything that knows how a board is laid out in Redis.

Key names (`keys`), value and entry encoding (`codec`, `entry`), the server-side functions
library (`functions`, sources in `lua/`), the transport that sends function calls
(`transport`), durability levels, the lease primitive, and the lifecycle of embedded and
replicated servers. Imports only `blackboard.errors`, `blackboard.settings` and
`blackboard.telemetry`; every layer above builds its Redis keys and function calls here.
"""
