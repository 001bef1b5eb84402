"""Runs in formats other tools open: ``export_perfetto`` (Chrome JSON trace events for
ui.perfetto.dev and chrome://tracing)."""

from __future__ import annotations

from tracereplay.export.perfetto import DEFAULT_MAX_EVENTS, Exported, export_perfetto, trace_events

__all__ = ["DEFAULT_MAX_EVENTS", "Exported", "export_perfetto", "trace_events"]
