"""Cascades: a head that reads other heads' outputs (``HeadConfig.inputs``) beside the features.

A downstream head must only ever see upstream outputs from models that never trained on the
row: otherwise it learns to trust an in-sample (over-confident) upstream and the trust breaks
live. So every upstream output travels in an :class:`OOFPredictions`, which records the rows
each of its models trained on, and :func:`cascade_inputs` — the one place cascade columns are
built — refuses any row whose prediction came from a model that trained on it.

Where the rows come from: a walk-forward fold's training rows get the upstream head's outputs
from an inner chronological walk-forward over those rows (rows before the first inner test
block have none and are dropped); its test rows get the fold's upstream model; the holdout
trains on the development folds' out-of-fold outputs; the final model trains on every
out-of-fold output (folds and holdout).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from quantrain.config import HeadConfig, JobConfig
from quantrain.errors import ConfigError, DataError
from quantrain.labels import target_def
from quantrain.labels.targets import meta_labels
from quantrain.models import ModelFamily
from quantrain.split import Fold, walk_forward
from quantrain.suite.dataset import Dataset, Target
from quantrain.suite.fit import Fitter, HeadFolds, fit_final, head_folds, plain_fit
from quantrain.suite.heads import TrainedHead


class CascadeLeakError(DataError):
    """An upstream output offered to a downstream head came from a model that trained on that
    row (in-sample), or a row has no upstream output at all."""


def output_columns(head: str, target: Target) -> tuple[str, ...]:
    """The columns an upstream head adds, named as ``Predictor`` names its outputs:
    ``<head>_p_<class>`` per class for a classifier, ``<head>`` for a regressor."""
    if target.classes:
        return tuple(f"{head}_p_{cls}" for cls in target.classes)
    return (head,)


@dataclass(frozen=True)
class OOFPredictions:
    """One head's outputs on ``rows`` (increasing dataset rows), with provenance: row ``i``
    was predicted by model ``model_of[i]``, which trained on the rows ``trained_on[model]``."""

    head: str
    columns: tuple[str, ...]
    rows: np.ndarray
    outputs: np.ndarray  # (len(rows), len(columns)), float64
    model_of: np.ndarray
    trained_on: tuple[np.ndarray, ...]

    @classmethod
    def from_models(
        cls,
        head: str,
        columns: Sequence[str],
        parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    ) -> OOFPredictions:
        """From ``(train_rows, predicted_rows, outputs)`` per model."""
        rows = [np.asarray(p[1], dtype=np.int64) for p in parts]
        outputs = [
            np.asarray(p[2], dtype=np.float64).reshape(len(r), -1)
            for p, r in zip(parts, rows, strict=True)
        ]
        model_of = [np.full(len(r), i, dtype=np.int64) for i, r in enumerate(rows)]
        return cls._sorted(
            head,
            tuple(columns),
            np.concatenate(rows) if rows else np.zeros(0, np.int64),
            np.concatenate(outputs) if outputs else np.zeros((0, len(columns))),
            np.concatenate(model_of) if model_of else np.zeros(0, np.int64),
            tuple(np.asarray(p[0], dtype=np.int64) for p in parts),
        )

    @classmethod
    def _sorted(
        cls,
        head: str,
        columns: tuple[str, ...],
        rows: np.ndarray,
        outputs: np.ndarray,
        model_of: np.ndarray,
        trained_on: tuple[np.ndarray, ...],
    ) -> OOFPredictions:
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        if len(rows) > 1 and (np.diff(rows) == 0).any():
            raise DataError(f"head {head!r}: two out-of-fold predictions for one row")
        if outputs.shape[1] != len(columns):
            raise DataError(
                f"head {head!r}: {outputs.shape[1]} output columns, expected {len(columns)}"
            )
        return cls(head, columns, rows, outputs[order], model_of[order], trained_on)

    def merged(self, other: OOFPredictions) -> OOFPredictions:
        """This head's predictions on its rows and ``other``'s (disjoint rows)."""
        return OOFPredictions._sorted(
            self.head,
            self.columns,
            np.concatenate([self.rows, other.rows]),
            np.concatenate([self.outputs, other.outputs]),
            np.concatenate([self.model_of, other.model_of + len(self.trained_on)]),
            self.trained_on + other.trained_on,
        )


def cascade_inputs(
    X: np.ndarray, rows: np.ndarray, upstream: Sequence[OOFPredictions]
) -> np.ndarray:
    """The downstream head's input for ``rows``: their feature rows with each upstream head's
    outputs appended, in ``upstream`` order. Refuses (:class:`CascadeLeakError`) a row with no
    upstream output, and a row whose output came from a model that trained on it."""
    rows = np.asarray(rows, dtype=np.int64)
    blocks = [np.asarray(X[rows], dtype=np.float32)]
    for up in upstream:
        at = np.searchsorted(up.rows, rows)
        found = (at < len(up.rows)) & (up.rows[np.minimum(at, len(up.rows) - 1)] == rows)
        if len(up.rows) == 0 or not found.all():
            missing = rows[~found] if len(up.rows) else rows
            raise CascadeLeakError(
                f"head {up.head!r} has no out-of-fold output for {len(missing)} of "
                f"{len(rows)} rows (first: row {int(missing[0])}); drop rows without one "
                "before building cascade inputs"
            )
        for model, train in enumerate(up.trained_on):
            mine = rows[up.model_of[at] == model]
            leaked = mine[np.isin(mine, train)]
            if len(leaked):
                raise CascadeLeakError(
                    f"head {up.head!r}: in-sample upstream predictions refused: its model "
                    f"{model} trained on {len(leaked)} of the rows it predicts here (first: "
                    f"row {int(leaked[0])}); a downstream head may only read out-of-fold "
                    "outputs of its inputs"
                )
        blocks.append(up.outputs[at].astype(np.float32))
    return np.hstack(blocks)


def primary_side(oof: OOFPredictions, rows: np.ndarray) -> np.ndarray:
    """The side a direction head's output takes on ``rows``: its most probable class, +1 BUY,
    −1 SELL, 0 otherwise."""
    at = np.searchsorted(oof.rows, rows)
    best = np.argmax(oof.outputs[at], axis=1)
    names = [c.removeprefix(f"{oof.head}_p_") for c in oof.columns]
    sides = np.array([1 if n == "BUY" else -1 if n == "SELL" else 0 for n in names])
    return sides[best]


def take_rows(data: Dataset, rows: np.ndarray) -> Dataset:
    """``rows`` of ``data`` as a dataset of their own; a label end maps to the last kept row
    at or before it, so purging on the result stays conservative."""
    rows = np.asarray(rows, dtype=np.int64)
    local_end = np.searchsorted(rows, data.label_end[rows], side="right") - 1
    return replace(
        data,
        X=data.X[rows],
        targets={name: values[rows] for name, values in data.targets.items()},
        label_end=np.maximum(local_end, np.arange(len(rows))).astype(np.int64),
        stamps=data.stamps.iloc[rows].reset_index(drop=True),
        bars=None if data.bars is None else data.bars[rows],
    )


def cascade_dataset(
    config: HeadConfig, data: Dataset, rows: np.ndarray, upstream: Sequence[OOFPredictions]
) -> Dataset:
    """``rows`` of ``data`` with the upstream columns appended, and a ``meta_label`` head's
    labels resolved from its direction input's side on each row."""
    sub = take_rows(data, rows)
    sub = replace(sub, X=cascade_inputs(data.X, rows, upstream))
    if target_def(config.target).resolved_by == "primary_side":
        primary = next(u for u in upstream if u.head in _direction_inputs(config, upstream))
        labels = meta_labels(data.targets[config.target][rows], primary_side(primary, rows))
        sub = replace(sub, targets={**sub.targets, config.target: labels})
    return sub


def _direction_inputs(config: HeadConfig, upstream: Sequence[OOFPredictions]) -> list[str]:
    return [u.head for u in upstream if any(c.endswith("_p_BUY") for c in u.columns)]


def inner_oof(
    config: HeadConfig,
    data: Dataset,
    train_rows: np.ndarray,
    job: JobConfig,
    columns: Sequence[str],
    *,
    n_jobs: int = 1,
    fit: Fitter = plain_fit,
) -> OOFPredictions:
    """Out-of-fold outputs of the upstream head ``config`` on a fold's ``train_rows``: a
    chronological walk-forward over those rows alone (purged, embargoed as the job says)."""
    sub = take_rows(data, train_rows)
    try:
        folds = walk_forward(
            len(train_rows),
            n_folds=job.split.n_folds,
            label_end=sub.label_end,
            mode=job.split.mode if job.split.mode != "purged_kfold" else "expanding",
            embargo=job.split.embargo,
        )
    except ConfigError as error:
        raise ConfigError(
            f"head {config.name!r}: the inner walk-forward its cascade needs over a fold's "
            f"{len(train_rows)} training rows failed ({error}); supply more history or fewer "
            "split.n_folds"
        ) from None
    run = head_folds(config, sub, folds, job, n_jobs=n_jobs, importance=False, fit=fit)
    parts = [
        (train_rows[f.train], train_rows[f.test], out)
        for f, out in zip(folds, run.outputs, strict=True)
    ]
    return OOFPredictions.from_models(config.name, columns, parts)


def cascade_fold(
    config: HeadConfig,
    data: Dataset,
    fold: Fold,
    train_oof: Sequence[OOFPredictions],
    test_oof: Sequence[OOFPredictions],
) -> tuple[Dataset, Fold]:
    """One fold of a downstream head: its training rows that have every upstream's
    out-of-fold output (the others are dropped) and its test rows, with the upstream columns,
    and the fold in that dataset's positions."""
    keep = np.asarray(fold.train, dtype=np.int64)
    for up in train_oof:
        keep = keep[np.isin(keep, up.rows)]
    if len(keep) < 2:
        raise ConfigError(
            f"head {config.name!r}: fold {fold.index} keeps {len(keep)} training rows with "
            "out-of-fold upstream outputs; supply more history or fewer split.n_folds"
        )
    test = np.asarray(fold.test, dtype=np.int64)
    rows = np.union1d(keep, test)
    merged = [a.merged(b) for a, b in zip(train_oof, test_oof, strict=True)]
    sub = cascade_dataset(config, data, rows, merged)
    local = Fold(
        index=fold.index,
        train=np.searchsorted(rows, keep),
        test=np.searchsorted(rows, test),
        purged=fold.purged,
        embargoed=fold.embargoed,
    )
    return sub, local


def cascade_folds(
    config: HeadConfig,
    data: Dataset,
    folds: Sequence[Fold],
    upstream: Mapping[str, tuple[HeadConfig, OOFPredictions]],
    job: JobConfig,
    *,
    n_jobs: int = 1,
    fit: Fitter = plain_fit,
) -> tuple[HeadFolds, list[OOFPredictions]]:
    """``head_folds`` for a downstream head: per fold, the inner out-of-fold upstream outputs
    on its training rows and the fold's upstream models on its test rows. Also returns what
    the last fold's test rows read of each upstream head (the parity check's inputs)."""
    result = HeadFolds()
    total = sum(len(f.test) for f in folds)
    tests: list[OOFPredictions] = []
    for fold in folds:
        train_oof, test_oof = [], []
        for name in config.inputs:
            head, walk = upstream[name]
            train_oof.append(
                inner_oof(head, data, fold.train, job, walk.columns, n_jobs=n_jobs, fit=fit)
            )
            test_oof.append(_restricted(walk, fold.test))
        sub, local = cascade_fold(config, data, fold, train_oof, test_oof)
        run = head_folds(config, sub, [local], job, n_jobs=n_jobs, fit=fit)
        result.metrics += run.metrics
        result.rounds += run.rounds
        result.outputs += run.outputs
        result.truth += run.truth
        assert run.importance is not None
        share = run.importance * len(fold.test) / total
        result.importance = share if result.importance is None else result.importance + share
        result.importance_method = run.importance_method
        result.last_model = run.last_model
        tests = test_oof
    return result, tests


def _restricted(oof: OOFPredictions, rows: np.ndarray) -> OOFPredictions:
    """``oof`` on ``rows`` only (each with its model's provenance)."""
    keep = np.isin(oof.rows, rows)
    return replace(oof, rows=oof.rows[keep], outputs=oof.outputs[keep], model_of=oof.model_of[keep])


def walk_forward_oof(
    name: str, columns: Sequence[str], folds: Sequence[Fold], outputs: Sequence[np.ndarray]
) -> OOFPredictions:
    """A head's walk-forward outputs: fold ``i``'s model trained on its training rows and
    predicted its test rows."""
    return OOFPredictions.from_models(
        name, columns, [(f.train, f.test, out) for f, out in zip(folds, outputs, strict=True)]
    )


@dataclass(frozen=True)
class Upstream:
    """What a downstream head reads of a trained upstream head: its config and its
    out-of-fold outputs on the development folds and (when there is one) the holdout."""

    config: HeadConfig
    folds: OOFPredictions
    holdout: OOFPredictions | None


def upstream_of(head: TrainedHead, folds: Sequence[Fold], kept_out: Fold | None) -> Upstream:
    """A base head's out-of-fold record, as its downstream heads read it."""
    columns = output_columns(head.config.name, head.target)
    walk = walk_forward_oof(head.config.name, columns, folds, _split(head))
    held = None
    if kept_out is not None and head.holdout_outputs is not None:
        held = OOFPredictions.from_models(
            head.config.name, columns, [(kept_out.train, kept_out.test, head.holdout_outputs)]
        )
    return Upstream(head.config, walk, held)


def _split(head: TrainedHead) -> list[np.ndarray]:
    """The head's concatenated fold outputs back into folds (``fold_sizes`` in order)."""
    bounds = np.cumsum(head.fold_sizes)[:-1]
    return list(np.split(head.oos_outputs, bounds))


def cascade_order(heads: Sequence[HeadConfig]) -> list[HeadConfig]:
    """Heads that read no other head first, then the cascade heads (one level deep)."""
    return [h for h in heads if not h.inputs] + [h for h in heads if h.inputs]


def fit_cascade_head(
    config: HeadConfig,
    data: Dataset,
    development: Dataset,
    folds: Sequence[Fold],
    kept_out: Fold | None,
    upstream: Mapping[str, Upstream],
    job: JobConfig,
    *,
    parity_rows: int,
    n_jobs: int = 1,
    fit: Fitter = plain_fit,
    warm_from: ModelFamily | None = None,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> TrainedHead:
    """A downstream head end to end: walk-forward folds on inner out-of-fold upstream outputs,
    the holdout trained on the development folds' out-of-fold outputs, and the final model on
    every out-of-fold output (folds, then holdout)."""
    ups = [upstream[name] for name in config.inputs]
    on_stage(f"{config.name} cascade folds")
    run, tests = cascade_folds(
        config,
        development,
        folds,
        {u.config.name: (u.config, u.folds) for u in ups},
        job,
        n_jobs=n_jobs,
        fit=fit,
    )
    held = None
    if kept_out is not None and all(u.holdout is not None for u in ups):
        on_stage(f"{config.name} holdout")
        sub, local = cascade_fold(
            config, data, kept_out, [u.folds for u in ups], [u.holdout for u in ups if u.holdout]
        )
        held = head_folds(config, sub, [local], job, n_jobs=n_jobs, importance=False, fit=fit)
    on_stage(f"{config.name} final fit")
    every = [
        u.folds if u.holdout is None or held is None else u.folds.merged(u.holdout) for u in ups
    ]
    final_rows = every[0].rows
    final_data = cascade_dataset(config, data, final_rows, every)
    final = fit_final(
        config, final_data, job, run.budget(), n_jobs=n_jobs, fit=fit, warm_from=warm_from
    )
    last = np.asarray(folds[-1].test)[-parity_rows:]
    return TrainedHead.from_runs(
        config,
        family=job.family_of(config),
        target=final_data.final_target(config.target),
        model=final,
        run=run,
        held=held,
        folds=list(folds),
        parity_rows=cascade_inputs(development.X, last, tests),
        upstream_columns=tuple(c for u in ups for c in u.folds.columns),
        upstream=tuple(config.inputs),
    )
