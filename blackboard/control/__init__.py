"""The control layer: who may act on each change (the control path).

Policies and their rules (pure), guards and the agenda (pure), admission, the controller's
loop and its fenced grant batches, activations, decisions and `explain`, operators' steering,
the read API the edges use, and the ACL per role. Imports the board and store layers and
below; never compaction, runtime or the edges.
"""
