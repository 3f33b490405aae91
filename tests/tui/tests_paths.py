"""Paths of the bundled policy and reference agents the TUI tests run."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "policies" / "support.toml"
AGENTS = ROOT / "agents" / "support.py"
