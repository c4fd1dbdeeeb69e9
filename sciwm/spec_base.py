"""The base of every table of a campaign file: frozen, and unknown keys are errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """A campaign-file table: immutable once read; a misspelt key is rejected, not ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


__all__ = ["Frozen"]
