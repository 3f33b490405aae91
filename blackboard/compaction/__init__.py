"""The compaction layer: reconciling divergent entries and keeping history bounded (the
reconcile path).

Merge strategies (pure), the merge commit, escalations of merges to a human, the compactor
process and the retention sweep of finished activations. Imports the board and store layers
and below; never control, runtime or the edges.
"""
