"""The campaign file's ``[faults]`` table: failing experiments and an unavailable backend.

The campaign loop's fault handling (``flows/faults.py``) reads it; ``docs/faults.md`` explains
each setting to users.
"""

from __future__ import annotations

from pydantic import Field

from sciwm.spec_base import Frozen


class FaultsSpec(Frozen):
    """``[faults]``: how the loop treats failing experiments and an unavailable backend."""

    max_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Tries of an experiment whose run fails transiently (the backend lost it, "
        "a worker died, the loop's time-out); after that it stays failed and the campaign "
        "goes on.",
    )
    retry_all_failures: bool = Field(
        default=False,
        description="Retry every failed run up to max_attempts, not only transient ones.",
    )
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="Wall-clock limit per experiment, from its submission; past it the run "
        "is cancelled and counts as a transient failure. Left out: no limit of the loop's own.",
    )
    same_failure_limit: int = Field(
        default=3,
        ge=0,
        description="Stop the campaign when the first N results of a run of the loop all "
        "failed with the same error; 0 turns this off.",
    )
    backoff_s: float = Field(
        default=1.0, ge=0, description="First wait before a retry or a new try of the backend."
    )
    max_backoff_s: float = Field(default=60.0, ge=0, description="Longest such wait.")
    unavailable_wait_s: float = Field(
        default=1800.0,
        ge=0,
        description="How long dispatch stays paused for an unavailable backend before the "
        "campaign stops (resumably).",
    )
