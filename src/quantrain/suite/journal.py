"""Trade journals as training data: one asset's trades → features, targets and purge spans.

A trade's outcome is known only when it closes, so each row's label reaches to the last trade
opened before its close; purging then keeps overlapping trades out of training windows, exactly
as it does for triple-barrier labels on bars.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from quantrain.data import DataSource, symbol_key
from quantrain.data.journal import Journal, journal_targets, read_journal
from quantrain.errors import DataError
from quantrain.features.journal_spec import JournalSpec
from quantrain.suite.dataset import Dataset, target_of

#: What the summary's timeframe column says for a journal-trained package.
JOURNAL_TIMEFRAME = "trades"


def journal_inputs(
    path: str, symbols: Sequence[str] | None = None
) -> tuple[list[DataSource], dict[str, pd.DataFrame], Journal]:
    """One source per asset in the journal, with that asset's trade rows (the driver reads the
    journal once and ships each asset's rows to its task)."""
    journal = read_journal(path)
    assets = sorted(journal.frame["asset"].unique())
    if symbols is not None:
        wanted = [symbol_key(s) for s in symbols]
        unknown = sorted(set(wanted) - set(assets))
        if unknown:
            raise DataError(
                f"{path}: no trades for {', '.join(unknown)}; assets in the journal: "
                f"{', '.join(assets)}\n  fix: request assets the journal has"
            )
        assets = [a for a in assets if a in wanted]
    frames = {
        asset: journal.frame[journal.frame["asset"] == asset].reset_index(drop=True)
        for asset in assets
    }
    sources = [DataSource(asset, "", path) for asset in assets]
    return sources, frames, journal


def build_journal_dataset(
    frame: pd.DataFrame, spec: JournalSpec, targets: Sequence[str], *, symbol: str
) -> tuple[Dataset, int]:
    """Rows with every needed outcome, in opening order; also how many rows were dropped."""
    ordered = frame.sort_values("opened_at", kind="stable").reset_index(drop=True)
    all_targets = journal_targets(ordered)
    keep = np.ones(len(ordered), dtype=bool)
    for name in targets:
        keep &= np.isfinite(all_targets[name])
    rows = ordered[keep].reset_index(drop=True)
    opened = rows["opened_at"].to_numpy("datetime64[ns]")
    closed = rows["closed_at"].fillna(rows["opened_at"]).to_numpy("datetime64[ns]")
    # The label of trade i is known at its close: it overlaps every trade opened until then.
    label_end = np.maximum(np.searchsorted(opened, closed, side="right") - 1, np.arange(len(rows)))
    data = Dataset(
        X=spec.matrix(rows),
        targets={
            name: (
                all_targets[name][keep].astype(np.int64)
                if target_of(name).task == "classification"
                else all_targets[name][keep]
            )
            for name in targets
        },
        label_end=label_end.astype(np.int64),
        stamps=rows["opened_at"],
        columns=tuple(spec.columns()),
    )
    return data, int((~keep).sum())


def journal_fingerprint(frame: pd.DataFrame, data: Dataset) -> dict[str, Any]:
    """Rows, span and sha256 of exactly what the models were trained on."""
    digest = hashlib.sha256(np.ascontiguousarray(data.X).tobytes())
    for name in sorted(data.targets):
        digest.update(np.ascontiguousarray(data.targets[name], dtype=np.float64).tobytes())
    return {
        "rows": len(data.X),
        "trades_in_journal": len(frame),
        "first": data.stamps.iloc[0].isoformat() if len(data.X) else None,
        "last": data.stamps.iloc[-1].isoformat() if len(data.X) else None,
        "sha256": digest.hexdigest(),
    }
