"""Small shared type aliases (kept free of heavy imports)."""

from __future__ import annotations

#: A parameter value: a float, an int or a categorical choice.
Value = float | int | str
