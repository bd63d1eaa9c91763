"""One head over the walk-forward folds: fit on each fold's training rows (early stopping on
their purged, most recent slice), score its held-out rows, then fit the final model on every row.

Shared by the pipeline (which keeps everything) and by tuning (which only needs the fold scores),
so a tuned trial and a packaged head are trained by exactly the same code.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from quantrain.config import HeadConfig, JobConfig
from quantrain.errors import ConfigError
from quantrain.evaluate import classification_metrics, regression_metrics
from quantrain.evaluate.importance import importance_values
from quantrain.evaluate.metrics import gaussian_metrics, task_metrics
from quantrain.features import FeatureRecipe
from quantrain.labels import average_uniqueness
from quantrain.models import ModelFamily, get_family, resolve_device
from quantrain.models.variants import variant_params
from quantrain.models.windows import sequence_length_of
from quantrain.split import Fold, holdout
from quantrain.suite.dataset import Dataset, target_of
from quantrain.suite.select import select_columns
from quantrain.suite.transforms import FittedTransforms, fit_transforms


class Fitter(Protocol):
    """How a model is fit: in this process (``plain_fit``), or data-parallel on Ray Train
    (``orchestration.gbdt_train``), which hands back the same family object."""

    def __call__(
        self,
        model: ModelFamily,
        X: np.ndarray,
        y: np.ndarray,
        *,
        eval_set: tuple[np.ndarray, np.ndarray] | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> ModelFamily: ...


def plain_fit(
    model: ModelFamily,
    X: np.ndarray,
    y: np.ndarray,
    *,
    eval_set: tuple[np.ndarray, np.ndarray] | None = None,
    sample_weight: np.ndarray | None = None,
) -> ModelFamily:
    return model.fit(X, y, eval_set=eval_set, sample_weight=sample_weight)


@dataclass
class HeadFolds:
    """What the folds of one head produced: metrics per fold, the round budgets early stopping
    chose, out-of-sample outputs in time order and (optionally) importance on held-out rows."""

    metrics: list[dict[str, float]] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)
    truth: list[np.ndarray] = field(default_factory=list)
    importance: np.ndarray | None = None
    importance_method: str = ""
    last_model: ModelFamily | None = None
    #: Per fold, the columns (of the transformed matrix) its model read.
    selected: list[np.ndarray] = field(default_factory=list)

    def pooled(self) -> dict[str, float]:
        """Row-weighted mean over folds: every out-of-sample row counts once."""
        rows = np.array([m["rows"] for m in self.metrics])
        pooled = {
            k: float(np.average([m[k] for m in self.metrics], weights=rows))
            for k in self.metrics[0]
            if k != "rows"
        }
        pooled["rows"] = float(rows.sum())
        return pooled

    def budget(self) -> int:
        """The round budget for the final model: the median of what the folds chose."""
        return int(np.median(self.rounds))


def balanced_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse class frequency so a rare class counts as much as a common one."""
    counts = np.bincount(y.astype(np.int64), minlength=n_classes).astype(np.float64)
    per_class = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return per_class[y.astype(np.int64)]


def reward_weights(reward: np.ndarray, beta: float) -> np.ndarray:
    """Reward-weighted regression (Peters & Schaal 2007): ``exp(beta * r / scale)`` with
    ``scale`` the rewards' standard deviation, normalised to mean 1 over the rows given (the
    fit rows: no other row's reward takes part). A missing reward counts as 0."""
    r = np.nan_to_num(np.asarray(reward, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if len(r) == 0:
        return r
    scale = float(r.std())
    scale = scale if scale > 0 else 1.0
    weights = np.exp(beta * (r - r.max()) / scale)  # the max subtracted: no overflow
    return weights / weights.mean()


def row_rewards(data: Dataset, head: HeadConfig) -> np.ndarray:
    """Each row's realised R of the trade it would open (the direction label's trade, the
    better side for HOLD), from the triple-barrier labels."""
    if data.labels is None or data.bars is None:
        raise ConfigError(
            f"head {head.name!r}: weighting: reward needs triple-barrier labels (OHLCV data); "
            "this dataset has none. fix: drop weighting from the head"
        )
    return np.asarray(data.labels.r_multiple[data.bars], dtype=np.float64)


def sample_weights(
    model: ModelFamily,
    y: np.ndarray,
    label_end: np.ndarray,
    job: JobConfig,
    *,
    reward: np.ndarray | None = None,
    reward_beta: float = 1.0,
) -> np.ndarray | None:
    """Per-row training weights: balanced classes for classifiers, times each row's average
    label uniqueness among the rows fit (``split.sample_weights: uniqueness``), so a run of
    overlapping labels counts about as much as one independent label, times the reward
    weights of the fit rows' ``reward`` when given. ``label_end`` is in the fit rows' own
    positions."""
    weights = None
    if reward is not None:
        weights = reward_weights(reward, reward_beta)
    if model.task == "classification":
        assert model.n_classes is not None
        balanced = balanced_weights(y, model.n_classes)
        weights = balanced if weights is None else weights * balanced
    if job.split.sample_weights == "uniqueness":
        local = np.minimum(np.asarray(label_end, dtype=np.int64), len(y) - 1)
        uniqueness = average_uniqueness(np.maximum(local, np.arange(len(y))))
        weights = uniqueness if weights is None else weights * uniqueness
    return weights


def new_model(
    config: HeadConfig,
    job: JobConfig,
    n_jobs: int,
    params: Mapping[str, Any] | None = None,
) -> ModelFamily:
    """A fresh, unfitted model for ``config``: its variant's preset, overlaid with the head's
    params, overlaid with ``params``."""
    family = job.family_of(config)
    target = target_of(config.target)
    preset = variant_params(family, job.variant_of(config), where=f"head {config.name!r}")
    return get_family(family)(
        target.task,
        {**preset, **config.params, **(params or {})},
        n_classes=len(target.classes) if target.classes else None,
        seed=job.seed,
        device=resolve_device(job.model.device, family=family),
        n_jobs=n_jobs,
    )


def with_column_positions(config: HeadConfig, columns: list[str]) -> HeadConfig:
    """``config`` with a ``columns`` param of feature names (``gmm_regime``) turned into their
    positions in the feature matrix, which is what a model sees; unknown names are refused."""
    given = config.params.get("columns")
    if not isinstance(given, list | tuple) or not all(isinstance(c, str) for c in given):
        return config
    unknown = [c for c in given if c not in columns]
    if unknown:
        near = {m for c in unknown for m in difflib.get_close_matches(c, columns, n=2)}
        hint = f" (did you mean {', '.join(sorted(near))}?)" if near else ""
        raise ConfigError(
            f"head {config.name!r}: params.columns names {unknown}, not in the feature set"
            f"{hint}; fix: use names from the package's features.json columns"
        )
    positions = [columns.index(c) for c in given]
    return config.model_copy(update={"params": {**config.params, "columns": positions}})


def fit_on(
    model: ModelFamily,
    data: Dataset,
    y: np.ndarray,
    rows: np.ndarray,
    job: JobConfig,
    fit: Fitter = plain_fit,
    head: HeadConfig | None = None,
) -> ModelFamily:
    """Fit on ``rows`` with early stopping on their purged, most recent slice; ``head``'s
    weighting reads the rewards of the fit rows only."""
    local_end = np.searchsorted(rows, data.label_end[rows], side="right") - 1
    inner = holdout(len(rows), test_fraction=job.split.validation_fraction, label_end=local_end)
    fit_rows, val_rows = rows[inner.train], rows[inner.test]
    weights = sample_weights(
        model, y[fit_rows], local_end[inner.train], job, **_reward_of(head, data, fit_rows)
    )
    return fit(
        model,
        rows_of(data.X, fit_rows),
        y[fit_rows],
        eval_set=(rows_of(data.X, val_rows), y[val_rows]),
        sample_weight=weights,
    )


def _reward_of(head: HeadConfig | None, data: Dataset, rows: np.ndarray) -> dict[str, Any]:
    """``sample_weights``' reward arguments for ``head`` on ``rows`` ({} without weighting)."""
    if head is None or head.weighting != "reward":
        return {}
    return {"reward": row_rewards(data, head)[rows], "reward_beta": float(head.reward_beta)}


def rows_of(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``X[rows]``, as a view when ``rows`` is one run of consecutive rows (walk-forward
    training and test rows are): no copy of the training matrix per fit."""
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and bool(np.all(np.diff(rows) == 1)):
        return X[int(rows[0]) : int(rows[-1]) + 1]
    return X[rows]


def outputs_of(model: ModelFamily, X: np.ndarray) -> np.ndarray:
    """Probabilities ``(n, classes)`` for classifiers, values ``(n,)`` for regressors."""
    return model.predict_proba(X) if model.task == "classification" else model.predict(X)


def held_out_outputs(model: ModelFamily, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Outputs for the held-out ``rows``. A sequence head also reads the ``L - 1`` feature rows
    before the first one as its window's history (features are causal and no label is read),
    so its first held-out rows are scored as a live bot would see them, not on padding."""
    length = sequence_length_of(model)
    if length is None or length < 2 or len(rows) == 0:
        return outputs_of(model, rows_of(X, rows))
    history = np.arange(max(0, int(rows[0]) - length + 1), int(rows[0]))
    return outputs_of(model, X[np.concatenate([history, rows])])[len(history) :]


def score(
    model: ModelFamily, y_test: np.ndarray, out: np.ndarray, y_train: np.ndarray
) -> dict[str, float]:
    """Out-of-sample metrics of ``out`` (already predicted) against ``y_test``."""
    if model.task == "classification":
        return classification_metrics(y_test, out, train_labels=y_train)
    if out.ndim == 2:  # a composite target: one column per task
        return task_metrics(y_test, out, train_values=y_train, tasks=model.output_names())
    quantile = model.params.get("quantile")
    return regression_metrics(
        y_test, out, train_values=y_train, quantile=None if quantile is None else float(quantile)
    )


def head_view(
    config: HeadConfig,
    data: Dataset,
    y: np.ndarray,
    train_rows: np.ndarray | None,
    job: JobConfig,
    transforms: FittedTransforms | None = None,
) -> tuple[Dataset, np.ndarray]:
    """What one head's model reads for one fit: the rows with the fold-fitted transforms'
    columns appended, then the columns its selection keeps, chosen on ``train_rows`` only
    (None: every row, the final model). Returns that view and the kept column indices."""
    X = data.X if transforms is None else transforms.apply(data.X)
    columns = data.columns if transforms is None else transforms.columns()
    select = job.suite.select_of(config)
    if select is None:
        return replace(data, X=X, columns=columns), np.arange(X.shape[1])
    rows = slice(None) if train_rows is None else train_rows
    keep = select_columns(
        select,
        X[rows],
        y[rows],
        target_of(config.target).task,
        seed=job.seed,
        where=f"head {config.name!r}: select",
    )
    kept = tuple(columns[i] for i in keep) if columns else ()
    return replace(data, X=np.ascontiguousarray(X[:, keep]), columns=kept), keep


def fold_transforms(
    data: Dataset, folds: Sequence[Fold], job: JobConfig
) -> list[FittedTransforms | None]:
    """The suite's transforms fit on each fold's training rows (None per fold without any):
    fit once and shared by every head."""
    if not job.suite.transforms:
        return [None] * len(folds)
    return [fit_transforms(job.suite.transforms, data, fold.train, seed=job.seed) for fold in folds]


def scale_metrics(
    model: ModelFamily, X_test: np.ndarray, y_test: np.ndarray, y_train: np.ndarray
) -> dict[str, float]:
    """For a head whose graph also gives a ``scale`` (a distributional head): its likelihood
    and 90 % coverage beside one Gaussian fitted to the training rows; {} for other heads."""
    names = model.output_names()
    if "scale" not in names:
        return {}
    outputs = dict(zip(names, model.native_outputs(X_test), strict=True))
    return gaussian_metrics(y_test, outputs["value"], outputs["scale"], train_values=y_train)


def head_folds(
    config: HeadConfig,
    data: Dataset,
    folds: list[Fold],
    job: JobConfig,
    *,
    n_jobs: int = 1,
    params: Mapping[str, Any] | None = None,
    importance: bool = True,
    fit: Fitter = plain_fit,
    on_fold: Callable[[int], None] | None = None,
    transforms: Sequence[FittedTransforms | None] | None = None,
) -> HeadFolds:
    """Train and score one head on every fold. ``params`` override the head's own (tuning);
    ``importance=False`` skips the held-out importance (permutation importance is slow);
    ``on_fold`` is told each fold's position as it starts (progress); ``transforms`` are the
    suite's transforms already fit per fold (``fold_transforms``; fit here when not given)."""
    result = HeadFolds()
    total_test = sum(len(f.test) for f in folds)
    fitted = fold_transforms(data, folds, job) if transforms is None else transforms
    for position, fold in enumerate(folds):
        if on_fold is not None:
            on_fold(position)
        y, _ = data.fold_target(config.target, fold.train)  # binned targets: fit on train rows
        view, keep = head_view(config, data, y, fold.train, job, fitted[position])
        model = fit_on(
            new_model(config, job, n_jobs, params), view, y, fold.train, job, fit, head=config
        )
        out = held_out_outputs(model, view.X, fold.test)
        metrics = score(model, y[fold.test], out, y[fold.train])
        metrics.update(scale_metrics(model, view.X[fold.test], y[fold.test], y[fold.train]))
        result.metrics.append(metrics)
        result.rounds.append(model.best_iteration_)
        result.outputs.append(out)
        result.truth.append(y[fold.test])
        result.selected.append(keep)
        if importance:
            values, result.importance_method = importance_values(
                model, rows_of(view.X, fold.test), y[fold.test], seed=job.seed
            )
            step = fitted[position]
            width = data.X.shape[1] if step is None else len(step.columns())
            if result.importance is None:
                result.importance = np.zeros(width)
            result.importance[keep] += values * len(fold.test) / total_test
        result.last_model = model
    return result


def fit_final(
    config: HeadConfig,
    data: Dataset,
    job: JobConfig,
    budget: int,
    *,
    n_jobs: int = 1,
    params: Mapping[str, Any] | None = None,
    fit: Fitter = plain_fit,
    warm_from: ModelFamily | None = None,
) -> ModelFamily:
    """The head's final model on every labelled row, trained for the folds' round budget
    (no validation slice is left to early-stop on).

    With ``warm_from`` (a previous package's model of this head) the budget's rounds are added
    to its trees. Only the final fit is warm-started: the folds train from scratch, because
    the previous model saw rows that are their test rows, and a fold must never start from it.
    """
    probe = new_model(config, job, n_jobs, params)
    final = new_model(config, job, n_jobs, {**(params or {}), **probe.fixed_budget(budget)})
    if warm_from is not None:
        final.warm_start_from(warm_from)
    y, _ = data.fold_target(config.target)  # binned targets: fit on all rows
    rows = np.arange(len(y))
    weights = sample_weights(final, y, data.label_end, job, **_reward_of(config, data, rows))
    return fit(final, data.X, y, sample_weight=weights)


# -- warm start: continue a previous package's boosters ------------------------------------


def warm_start_path(template: str, symbol: str) -> str:
    """The previous package of ``symbol``: ``{symbol}`` in the job's path is replaced."""
    return template.replace("{symbol}", symbol)


def warm_start_problems(
    manifest: Mapping[str, Any], job: JobConfig, symbol: str, spec: FeatureRecipe
) -> list[str]:
    """Every difference that makes continuing the previous trees meaningless: another symbol,
    another feature recipe, a head whose target, family, task or classes changed."""
    problems = []
    if manifest.get("symbol") != symbol:
        problems.append(
            f"symbol differs: the package is {manifest.get('symbol')!r}, not {symbol!r}"
        )
    features = manifest.get("features", {})
    if features.get("hash") != spec.spec_hash():
        theirs, ours = list(features.get("columns", [])), spec.columns()
        only_theirs = [c for c in theirs if c not in ours]
        only_ours = [c for c in ours if c not in theirs]
        detail = f"; only in the package: {only_theirs}" if only_theirs else ""
        detail += f"; only in this job: {only_ours}" if only_ours else ""
        problems.append(
            f"feature hash differs: the package has {features.get('name')!r} "
            f"{str(features.get('hash'))[:12]} ({len(theirs)} columns), this job "
            f"{spec.name!r} {spec.spec_hash()[:12]} ({len(ours)} columns){detail}"
        )
    if job.suite.transforms or any(job.suite.select_of(h) for h in job.suite.heads):
        problems.append(
            "suite.transforms / select are fit anew on each run's rows, so the previous trees "
            "read other inputs"
        )
    heads = manifest.get("heads", {})
    for head in job.suite.heads:
        entry = heads.get(head.name)
        if entry is None:
            problems.append(
                f"head {head.name!r}: not in the package (its heads: {', '.join(heads)})"
            )
            continue
        target = target_of(head.target)
        family = job.family_of(head)
        expected = {
            "target": head.target,
            "family": family,
            "task": target.task,
            "classes": list(target.classes) if target.classes else None,
            "upstream": list(head.inputs) or None,  # a cascade head's graph reads these too
        }
        for key, want in expected.items():
            if entry.get(key) != want:
                problems.append(
                    f"head {head.name!r}: {key} differs: the package has {entry.get(key)!r}, "
                    f"this job has {want!r}"
                )
        if not get_family(family).tags.warm_start:
            problems.append(f"head {head.name!r}: family {family!r} cannot warm start")
    return problems


def warm_start_models(
    path: str, job: JobConfig, symbol: str, spec: FeatureRecipe
) -> dict[str, ModelFamily]:
    """The previous package's model per head, after :func:`warm_start_problems` found none."""
    from quantrain.package import load_native_head, verify_package

    manifest = verify_package(path)
    problems = warm_start_problems(manifest, job, symbol, spec)
    if problems:
        raise ConfigError(
            f"cannot warm-start {symbol} from {path}:\n  - "
            + "\n  - ".join(problems)
            + "\n  fix: warm-start from a package trained with this job's features and heads, "
            "or train from scratch (drop --warm-start / warm_start)"
        )
    return {head.name: load_native_head(path, head.name) for head in job.suite.heads}
