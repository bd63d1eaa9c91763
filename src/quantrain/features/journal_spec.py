"""The feature recipe of a journal-trained package: which flattened trade fields, in which
order, encoded with which fixed vocabularies. Hashed, so a bot can tell when quantrain would
encode the same trade record differently from training."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, model_validator

from quantrain.data.journal import (
    CATEGORICAL_CODES,
    JOURNAL_FEATURES,
    check_known_at_entry,
    encode_features,
)
from quantrain.errors import ConfigError

#: Bump when flattening or encoding of journal fields changes.
JOURNAL_CODE_VERSION = "1"


class JournalSpec(BaseModel):
    """Ordered journal fields as model inputs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["journal"] = "journal"
    name: str = "journal"
    features: tuple[str, ...] = JOURNAL_FEATURES

    @model_validator(mode="before")
    @classmethod
    def _check_stamp(cls, data: Any) -> Any:
        """Accept what ``to_json_dict`` wrote; refuse other encoding code or a wrong hash."""
        if not isinstance(data, Mapping):
            return data
        body = dict(data)
        version = body.pop("journal_code_version", None)
        expected = body.pop("spec_hash", None)
        body.pop("vocabularies", None)
        if version is not None and version != JOURNAL_CODE_VERSION:
            raise ConfigError(
                f"journal feature spec written by encoding version {version!r}; this quantrain "
                f"encodes version {JOURNAL_CODE_VERSION!r}: retrain, or use the quantrain that "
                "wrote it"
            )
        if expected is not None and cls.model_validate(body).spec_hash() != expected:
            raise ConfigError("journal feature spec does not match its spec_hash (edited?)")
        return body

    @model_validator(mode="after")
    def _known_at_entry(self) -> JournalSpec:
        """No input known only after the trade opened, in a job or in a loaded package."""
        check_known_at_entry(self.features, "journal features")
        return self

    def _canonical(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "features": list(self.features),
            "vocabularies": {k: dict(v) for k, v in sorted(CATEGORICAL_CODES.items())},
            "journal_code_version": JOURNAL_CODE_VERSION,
        }

    def columns(self) -> list[str]:
        return list(self.features)

    def spec_hash(self) -> str:
        canonical = json.dumps(self._canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def warmup_bars(self, timeframe: str | None = None) -> int:
        return 0  # each trade record stands alone

    def to_json_dict(self) -> dict[str, Any]:
        return {**self._canonical(), "spec_hash": self.spec_hash()}

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The model inputs for flattened trade records (NaN where a field is missing)."""
        return encode_features(frame, self.features)


def journal_spec(features: Sequence[str] | None = None) -> JournalSpec:
    return JournalSpec(features=tuple(features)) if features else JournalSpec()
