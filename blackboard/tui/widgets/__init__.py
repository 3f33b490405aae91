"""Widgets of the TUI, one per module (edge layer; imports textual and the TUI's models)."""
