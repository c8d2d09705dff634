"""Pieces of the Markdown model cards the recipes write."""

from __future__ import annotations

import json
from dataclasses import asdict


def rate(value: float | None) -> str:
    """A rate with three decimals, or "–" where it is undefined."""
    return "–" if value is None else f"{value:.3f}"


def table_cell(text: str) -> str:
    """Free text (generated, perhaps with newlines or pipes) as one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def config_section(cfg) -> str:
    """The card's last section: the run's resolved config."""
    return f"## Config\n```yaml\n{json.dumps(asdict(cfg), indent=2)}\n```\n"
