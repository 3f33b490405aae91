"""Screens of the TUI, one per module (edge layer; imports textual, the TUI's models and
widgets, and the engine's data classes)."""
