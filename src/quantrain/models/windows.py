"""The window length a sequence family reads (the windows themselves are
``quantrain.features.windows``: serving builds them without loading any model library)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quantrain.models.base import ModelFamily


def sequence_length_of(model: ModelFamily) -> int | None:
    """The window length a sequence family's graph reads; None for row-wise families."""
    if not model.tags.sequence:
        return None
    fitted = getattr(model, "sequence_length_", None)  # what a fitted or loaded model uses
    return int(fitted if fitted is not None else model.resolved_params()["sequence_length"])
