"""Paths the TUI tests run: the support policy (a copy, see support_policy.toml) and the
bundled reference agents."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POLICY = Path(__file__).resolve().parent / "support_policy.toml"
AGENTS = ROOT / "agents" / "support.py"
