"""``Predictor``: what a trading bot calls. Loads a verified package and runs every head on ONNX.

Features are recomputed from raw OHLCV with the exact recipe in ``features.json``; a package
whose recipe hashes differently under this quantrain is refused rather than silently drifting.
Sequence heads (manifest ``sequence_length``) read each bar's lookback window of feature rows,
built by the same ``lookback_windows`` as in training and in the parity gate.

A package with a trading policy (manifest ``policy``) also gets each bar's *action*: the side,
size and barrier distances of the exact rule its backtest traded (``quantrain.policy``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort
import pandas as pd
from pydantic import ValidationError

from quantrain.data.journal import flatten_record
from quantrain.errors import ConfigError, DataError, PackageError
from quantrain.features import FeatureSpec, atr, compute_feature_matrix, compute_features
from quantrain.features.journal_spec import JournalSpec
from quantrain.features.windows import lookback_windows
from quantrain.names import DEFAULT_CHANNEL
from quantrain.package.drift import REFERENCE_FILE, Reference
from quantrain.package.layout import (
    FEATURES,
    HEADS_DIR,
    MANIFEST,
    ONNX_FILE,
    load_manifest,
    read_manifest,
    verify_package,
)
from quantrain.package.manifest import Manifest, parse_manifest
from quantrain.package.session import onnx_session
from quantrain.package.transforms import ServedTransforms, recipe_hash
from quantrain.policy import (
    ACTION_NAMES,
    TradingPolicy,
    direction_columns,
    direction_probabilities,
)

if TYPE_CHECKING:
    from quantrain.models import ModelFamily
    from quantrain.package.live import LivePredictor

OHLCV_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
#: Bars of history after which the standard set's slowest recursive feature has forgotten its
#: seed: the 1h RSI / ATR (Wilder, 14 hourly bars) of a 5m series. Measured on ETH-BTC, the
#: newest row's largest relative difference to full-history features is 1.6e-4 with 1000 bars,
#: 2.9e-6 with 2000 and 5.2e-9 with 3000.
RECOMMENDED_HISTORY = 3000


@dataclass(frozen=True)
class _Head:
    name: str
    task: str
    classes: list[str] | None
    session: ort.InferenceSession
    input_name: str
    sequence_length: int | None
    #: The output columns: the head's name, then a classifier's ``<name>_p_<class>``; a
    #: regressor's graph output ``value`` is ``<name>``, any other output ``<name>_<output>``.
    columns: tuple[str, ...]
    #: The graph's output names as the manifest lists them.
    outputs: tuple[str, ...] = ("value",)
    #: The feature columns a head with selected features reads (None: all of them).
    inputs: np.ndarray | None = None
    #: Cascade heads: upstream output columns appended after the features, in order.
    upstream_columns: tuple[str, ...] = ()


def load_feature_spec(root: Path, manifest: Manifest) -> FeatureSpec | JournalSpec:
    """The package's feature recipe, refused if this quantrain would compute it differently."""
    recipe: type[FeatureSpec] | type[JournalSpec] = (
        JournalSpec if manifest.features.kind == "journal" else FeatureSpec
    )
    try:
        spec = recipe.model_validate(json.loads((root / FEATURES).read_text()))
    except (ConfigError, ValidationError) as error:
        raise PackageError(f"{root}: feature hash mismatch in {FEATURES}: {error}") from None
    expected = manifest.features.hash
    ours = recipe_hash(spec.spec_hash(), manifest.features.transforms)
    if ours != expected:
        raise PackageError(
            f"{root}: feature hash mismatch: the package was built with {expected[:12]}…, this "
            f"quantrain computes {ours[:12]}… for the same recipe (feature code "
            "changed). Install the quantrain version in the manifest or re-train."
        )
    return spec


def load_native_head(root: str | Path, head: str) -> ModelFamily:
    """The head's native model (for analysis and parity checks; bots use ONNX). Needs the
    training install: the model libraries load here, never in a bot's ``Predictor``."""
    from quantrain.models import get_family

    manifest = load_manifest(root)
    if head not in manifest.heads:
        raise PackageError(f"{root}: no head {head!r}; heads: {', '.join(manifest.heads)}")
    family = get_family(manifest.heads[head].family)
    return family.load(Path(root) / HEADS_DIR / head)


#: A sequence head's window beyond this is not one quantrain trains (and would not fit in memory).
MAX_SEQUENCE_LENGTH = 10_000


def _checked(head: _Head, manifest: Path) -> _Head:
    """Refuse a head whose manifest entry does not describe its ONNX graph (input name and
    rank, window length, output and class count), before a bar is fed to it."""
    inputs, outputs = head.session.get_inputs(), head.session.get_outputs()
    rank = 2 if head.sequence_length is None else 3
    problem = None
    if [i.name for i in inputs] != [head.input_name]:
        problem = f"input {head.input_name!r}, graph reads {[i.name for i in inputs]}"
    elif len(inputs[0].shape) != rank:
        problem = f"a rank-{rank} input, graph's is rank {len(inputs[0].shape)}"
    elif head.sequence_length is not None and not 1 <= head.sequence_length <= MAX_SEQUENCE_LENGTH:
        problem = f"a window of {head.sequence_length} rows"
    elif head.upstream_columns and head.sequence_length is not None:
        problem = "a sequence head reading upstream heads, which quantrain does not serve"
    elif head.task == "classification":
        width = outputs[1].shape[-1] if len(outputs) == 2 and outputs[1].shape else None
        if len(outputs) != 2 or (isinstance(width, int) and width != len(head.classes or [])):
            problem = f"{len(head.classes or [])} classes, graph gives {width}"
    elif [o.name for o in outputs] != list(head.outputs):
        problem = f"outputs {list(head.outputs)}, graph gives {[o.name for o in outputs]}"
    if problem:
        raise PackageError(
            f"{manifest}: head {head.name!r}: the manifest says {problem}; fix: pull or "
            "re-train the package (its manifest and graphs do not belong together)"
        )
    return head


def _reference(root: Path, manifest: Mapping[str, Any]) -> Reference | None:
    """The package's recorded training distribution, when it has one (packages since 0.1)."""
    if REFERENCE_FILE not in manifest["files"]:
        return None
    path = root / REFERENCE_FILE
    try:
        return Reference(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PackageError(f"{path}: not a feature reference quantrain wrote ({error})") from None


class Predictor:
    """Run every head of a package on raw OHLCV bars."""

    def __init__(self, path: str | Path, *, verify: bool = True) -> None:
        self.path = Path(path)
        #: The manifest as plain JSON (what bots in other languages read) and typed.
        self.manifest = verify_package(self.path) if verify else read_manifest(self.path)
        self.package = parse_manifest(self.manifest, str(self.path / MANIFEST))
        self.spec = load_feature_spec(self.path, self.package)
        self.warmup_bars = self.spec.warmup_bars(self.package.timeframe)
        #: Bars a window needs before its features equal training's (``features_complete``).
        measured = self.package.features.history_bars
        self.history_bars = RECOMMENDED_HISTORY if measured is None else measured
        self.reference = _reference(self.path, self.manifest)
        raw_policy = self.package.policy
        try:
            self.policy = None if raw_policy is None else TradingPolicy.from_dict(raw_policy)
        except (ConfigError, TypeError) as error:
            raise PackageError(f"{self.path}: manifest policy is malformed: {error}") from None
        self.transforms = ServedTransforms(
            self.path,
            self.spec.columns(),
            self.package.features.transforms,
            self.manifest["files"],
        )
        self._heads = [
            _checked(
                _Head(
                    name=name,
                    task=entry.task,
                    classes=entry.classes,
                    session=self._session(name),
                    input_name=entry.onnx_input,
                    sequence_length=entry.sequence_length,
                    columns=_columns(name, entry.task, entry.classes, entry.onnx_outputs),
                    outputs=tuple(entry.onnx_outputs),
                    inputs=self._inputs_of(name, entry.input_columns),
                    upstream_columns=tuple(entry.upstream_columns or ()),
                ),
                self.path / MANIFEST,
            )
            # Upstream heads first: a cascade head reads their outputs (one level deep).
            for name, entry in sorted(
                self.package.feature_heads().items(), key=lambda item: bool(item[1].upstream)
            )
        ]
        risk = self.package.risk_head()
        self._risk = None if risk is None else self._session(risk.name)

    def _inputs_of(self, head: str, columns: list[str] | None) -> np.ndarray | None:
        """Positions of a head's selected columns among the feature and transform columns."""
        if columns is None:
            return None
        known = self.transforms.columns
        missing = [c for c in columns if c not in known]
        if missing:
            raise PackageError(
                f"{self.path / MANIFEST}: head {head!r} reads columns {missing} the feature "
                "recipe does not make; fix: pull or re-train the package"
            )
        return np.array([known.index(c) for c in columns], dtype=np.int64)

    def _session(self, head: str) -> ort.InferenceSession:
        """The head's ONNX graph in a session; a file that is not a graph onnxruntime can run
        (even one whose checksum matches) is a damaged package, not a crash."""
        path = self.path / HEADS_DIR / head / ONNX_FILE
        try:
            return onnx_session(path.read_bytes())
        except OSError as error:
            raise PackageError(f"{path}: cannot read the head's ONNX graph: {error}") from None
        except Exception as error:  # onnxruntime raises its own types (InvalidProtobuf, Fail…)
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise PackageError(
                f"{path}: onnxruntime cannot load head {head!r}: {first}; fix: pull or "
                "re-train the package (its files may have been replaced)"
            ) from None

    @classmethod
    def from_store(
        cls,
        uri: str,
        symbol: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        suite: str | None = None,
        cache_dir: str | Path | None = None,
    ) -> Predictor:
        """The package ``channel`` points at, pulled (verified) into a local cache.

        A version already in the cache is re-verified, not downloaded again. The cache is
        ``cache_dir``, else ``$QUANTRAIN_CACHE_DIR``, else ``~/.cache/quantrain/packages``.
        """
        from quantrain.store import open_store  # the store imports this package

        store = open_store(uri)
        suite, version = store.resolve(symbol, suite=suite, channel=channel)
        root = Path(
            cache_dir
            or os.environ.get("QUANTRAIN_CACHE_DIR")
            or Path.home() / ".cache" / "quantrain" / "packages"
        )
        target = root / symbol / suite / version
        store.pull(symbol, target, suite=suite, version=version)
        return cls(target)

    @property
    def heads(self) -> list[str]:
        return [h.name for h in self._heads]

    @property
    def window_rows(self) -> int:
        """Feature rows the longest-sighted head reads per bar (1 without sequence heads): a
        bar's outputs are complete once it and the ``window_rows - 1`` bars before it are past
        the feature warm-up."""
        return max([h.sequence_length or 1 for h in self._heads], default=1)

    def risk_multiplier(self, state: Mapping[str, float]) -> float:
        """The size multiplier for the next trade from the bot's equity state (seed 002's risk
        model, clamped to [0.10, 1.25] inside the graph); 1.0 when the package has none.

        ``state`` keys: equity_ratio, drawdown, win_rate_10, win_rate_20, profit_factor_10,
        consecutive_losses, atr_pct (see ``quantrain.evaluate.risk.state_features``).
        """
        if self._risk is None:
            return 1.0
        entry = self.package.risk_head()
        assert entry is not None and entry.input_columns is not None
        missing = [c for c in entry.input_columns if c not in state]
        if missing:
            raise PackageError(f"risk_multiplier needs {', '.join(missing)} in the state")
        row = np.array([[state[c] for c in entry.input_columns]], dtype=np.float32)
        (value,) = self._risk.run(None, {entry.onnx_input: row})
        return float(np.ravel(value)[0])

    def _bars_spec(self) -> FeatureSpec:
        if isinstance(self.spec, JournalSpec):
            raise PackageError(
                f"{self.path}: this package was trained on trade-journal records, not OHLCV "
                "bars; call predict_records(records) (or `quantrain predict` with a journal file)"
            )
        return self.spec

    def _check_columns(self, ohlcv: pd.DataFrame) -> None:
        missing = [c for c in OHLCV_COLUMNS if c not in ohlcv.columns]
        if missing:
            raise PackageError(
                f"predict needs OHLCV columns {', '.join(OHLCV_COLUMNS)}; missing {missing}"
            )

    def feature_matrix(self, ohlcv: pd.DataFrame) -> pd.DataFrame:
        """The model inputs for every bar of ``ohlcv`` (NaN where the warm-up is not over)."""
        spec = self._bars_spec()
        self._check_columns(ohlcv)
        return compute_features(ohlcv, spec)

    def predict(self, ohlcv: pd.DataFrame, *, last: int | None = None) -> pd.DataFrame:
        """One row per bar (or the ``last`` bars): each head's label/probabilities or value.

        Bars inside the feature warm-up get NaN outputs and ``features_complete = False``
        (a sequence head's output is NaN until its whole window is past the warm-up).
        Features are computed over every bar given, so with ``last`` the sequence heads' windows
        still reach back before the last bars. Recursive features (EMAs) start at the first bar
        given, so pass at least ``RECOMMENDED_HISTORY`` bars for values that match training to
        ~1e-8.
        """
        rows = slice(-last, None) if last else slice(None)
        timestamps = ohlcv["timestamp"].iloc[rows].reset_index(drop=True)
        return pd.DataFrame({"timestamp": timestamps, **self._outputs(ohlcv, rows)})

    def predict_latest(self, ohlcv: pd.DataFrame) -> dict[str, Any]:
        """The newest bar only, as a plain dict: the per-bar call of a live bot (no pandas out)."""
        outputs = self._outputs(ohlcv, slice(-1, None))
        return {"timestamp": ohlcv["timestamp"].iloc[-1]} | {
            name: values.tolist()[0] for name, values in outputs.items()
        }

    def live(self, history: pd.DataFrame) -> LivePredictor:
        """This package fed one bar at a time: warm up on ``history`` (at least
        ``history_bars`` bars for complete features), then ``update(bar)`` per new bar."""
        from quantrain.package.live import LivePredictor

        return LivePredictor(self, history)

    def predict_file(self, path: str | Path) -> pd.DataFrame:
        """Every row's outputs for a data file: OHLCV bars, or a trade journal when the package
        was trained on one (what ``quantrain predict`` runs)."""
        if isinstance(self.spec, JournalSpec):
            from quantrain.data.journal import read_journal

            return self.predict_records(read_journal(path).frame)
        from quantrain.data import read_ohlcv

        frame = read_ohlcv(path).frame
        if len(frame) <= self.warmup_bars:
            raise DataError(
                f"{path}: {len(frame)} bars, but this package's features need "
                f"{self.warmup_bars} bars of warm-up, so every output would be empty; fix: "
                f"pass more history (at least {RECOMMENDED_HISTORY} bars match training)"
            )
        return self.predict(frame)

    def predict_records(self, records: Sequence[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
        """Journal packages: each head's output for trade records (nested dicts as journaled, or
        the flattened frame ``read_journal`` returns). Missing fields are allowed: the trees
        route them as in training; ``features_complete`` says which records had every field."""
        if not isinstance(self.spec, JournalSpec):
            raise PackageError(
                f"{self.path}: this package reads OHLCV bars; call predict(ohlcv) instead"
            )
        frame = (
            records
            if isinstance(records, pd.DataFrame)
            else pd.DataFrame([flatten_record(r) for r in records])
        )
        X = np.ascontiguousarray(self.spec.matrix(frame), np.float32)
        finite = np.isfinite(X)
        # Fields that training rows sometimes lacked may be missing here too.
        needed = (
            np.ones(X.shape[1], bool) if self.reference is None else self.reference.never_missing()
        )
        complete = np.asarray(finite[:, needed].all(axis=1))
        ids = frame["id"] if "id" in frame.columns else pd.Series(range(len(frame)))
        outputs = {**self.run_heads(X, slice(None), None), **self.drift(X)}
        return pd.DataFrame(
            {"id": ids.reset_index(drop=True), "features_complete": complete, **outputs}
        )

    def drift(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """``ood_score`` (share of features outside their training 0.5–99.5 % band) and
        ``ood`` (above the threshold fit on training rows); nothing for older packages."""
        if self.reference is None:
            return {}
        score, flag = self.reference.score(X)
        return {"ood_score": score, "ood": flag}

    def _outputs(self, ohlcv: pd.DataFrame, rows: slice) -> dict[str, np.ndarray]:
        """Every head's outputs for ``rows`` of the window, as arrays, plus completeness and,
        with a policy, the action."""
        spec = self._bars_spec()
        self._check_columns(ohlcv)
        X = np.ascontiguousarray(compute_feature_matrix(ohlcv, spec), np.float32)
        usable = np.asarray(np.isfinite(X).all(axis=1))
        # Complete = what training saw: every feature defined AND enough history before the
        # row for recursive features to forget where the window started.
        complete = usable & (np.arange(len(X)) >= self.history_bars)
        outputs = {
            "features_complete": complete[rows],
            **self.run_heads(X, rows, usable),
            **self.drift(X[rows]),
        }
        if self.policy is not None:
            high, low, close = (ohlcv[c].to_numpy(np.float64) for c in ("high", "low", "close"))
            atr_rows = atr(high, low, close, self.policy.atr_period)[rows]
            outputs.update(self.actions(self.policy, outputs, atr_rows, close[rows]))
        return outputs

    def actions(
        self,
        policy: TradingPolicy,
        outputs: Mapping[str, np.ndarray],
        atr_rows: np.ndarray,
        reference: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """The policy's action per bar, for a bot that is flat: side, size, the take-profit and
        stop distances, and their levels if filled at ``reference`` (the bar's close). With the
        package's ``entry: next_open`` the bot fills at the next open and places the levels at
        ``fill ± distance`` (``action_side`` gives the sign)."""
        head = next(h for h in self._heads if h.name == policy.direction_head)
        assert head.classes is not None
        probs = np.column_stack([outputs[f"{head.name}_p_{cls}"] for cls in head.classes])
        p_sell, p_buy = direction_probabilities(probs, head.classes)
        pred_r = None if policy.size_head is None else outputs[policy.size_head]
        p_take = policy.p_take_of(outputs)
        act = policy.actions(p_sell, p_buy, pred_r, atr_rows, p_take)
        side = act["side"]
        return {
            "action": np.asarray([ACTION_NAMES[int(v)] for v in side], dtype=object),
            "action_side": side,
            "action_size": act["size"],
            "tp_distance": act["tp_distance"],
            "sl_distance": act["sl_distance"],
            "take_profit": reference + side * act["tp_distance"],
            "stop_loss": reference - side * act["sl_distance"],
        }

    def run_heads(
        self, X: np.ndarray, rows: slice, complete: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """Each head's outputs for ``rows`` of the feature matrix ``X`` (every row so far, in
        time order). ``complete`` marks rows with every feature; None serves every row."""
        out: dict[str, np.ndarray] = {}
        X = self.transforms.apply(X)
        for head in self._heads:
            feed, usable = _head_input(head, X, rows, complete)
            if head.upstream_columns:
                feed, finite = _with_upstream(head, feed, out)
                usable = usable & finite
            out.update(self._run_head(head, feed, usable))
        return out

    def run_heads_last(self, X: np.ndarray, complete: np.ndarray) -> dict[str, Any]:
        """``run_heads`` for the newest row of ``X`` alone, as Python scalars: the same graphs
        on the same input as the batch path (``LivePredictor``'s per-bar call, without the
        one-element arrays)."""
        out: dict[str, Any] = {}
        X = self.transforms.apply(X)
        for head in self._heads:
            length = head.sequence_length
            # The row itself, or its window: ``_head_input`` for the last row of a full ring.
            feed = X[-1:] if length is None else X[-length:][None]
            if head.inputs is not None:
                feed = np.ascontiguousarray(feed[..., head.inputs])
            usable = bool(complete[-1]) if length is None else bool(complete[-length:].all())
            if head.upstream_columns:
                feed, finite = _with_upstream(head, feed, out)
                usable = usable and bool(finite[0])
            results = head.session.run(None, {head.input_name: feed})
            if head.task == "classification":
                assert head.classes is not None
                if usable:
                    values = [head.classes[int(results[0][0])], *results[1][0].tolist()]
                else:
                    values = [None, *(math.nan for _ in head.classes)]
                out.update(zip(head.columns, values, strict=True))
            else:
                for column, result in zip(head.columns, results, strict=True):
                    out[column] = result.item(0) if usable else math.nan
        return out

    def drift_last(self, row: np.ndarray) -> dict[str, Any]:
        """``drift`` for one feature row, as Python scalars."""
        if self.reference is None:
            return {}
        score, flag = self.reference.score_row(row)
        return {"ood_score": score, "ood": flag}

    def action_last(
        self, policy: TradingPolicy, outputs: Mapping[str, Any], atr: float, reference: float
    ) -> dict[str, Any]:
        """``actions`` for one bar from ``run_heads_last``'s outputs, as Python scalars."""
        head = next(h for h in self._heads if h.name == policy.direction_head)
        assert head.classes is not None
        sell, buy = direction_columns(head.classes)
        probs = head.columns[1:]
        pred_r = None if policy.size_head is None else outputs[policy.size_head]
        p_take = policy.p_take_of(outputs)
        side, size, tp, sl = policy.action(
            outputs[probs[sell]], outputs[probs[buy]], pred_r, atr, p_take
        )
        return {
            "action": ACTION_NAMES[side],
            "action_side": side,
            "action_size": size,
            "tp_distance": tp,
            "sl_distance": sl,
            "take_profit": reference + side * tp,
            "stop_loss": reference - side * sl,
        }

    def _run_head(self, head: _Head, X: np.ndarray, usable: np.ndarray) -> dict[str, np.ndarray]:
        results = head.session.run(None, {head.input_name: X})
        if head.task == "classification":
            assert head.classes is not None
            probs = np.asarray(results[1], dtype=np.float64)
            probs[~usable] = np.nan
            labels = np.asarray(head.classes, dtype=object)[np.asarray(results[0])]
            labels[~usable] = None
            cols: dict[str, np.ndarray] = {head.name: labels}
            for i, cls in enumerate(head.classes):
                cols[f"{head.name}_p_{cls}"] = probs[:, i]
            return cols
        out = {}
        for column, result in zip(head.columns, results, strict=True):
            values = np.asarray(result, dtype=np.float64).reshape(-1)
            values[~usable] = np.nan
            out[column] = values
        return out


def _with_upstream(
    head: _Head, feed: np.ndarray, out: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """A cascade head's input: its feature rows with its upstream heads' outputs (already in
    ``out``, arrays or one bar's floats) appended, and which rows have all of them."""
    extra = np.column_stack([out[c] for c in head.upstream_columns]).astype(np.float64)
    return np.hstack([feed, extra.astype(np.float32)]), np.asarray(np.isfinite(extra).all(axis=1))


def _columns(
    name: str, task: str, classes: list[str] | None, outputs: list[str]
) -> tuple[str, ...]:
    """A head's output columns (see ``_Head.columns``)."""
    if task == "classification":
        return (name, *(f"{name}_p_{cls}" for cls in classes or []))
    return tuple(name if output == "value" else f"{name}_{output}" for output in outputs)


def _head_input(
    head: _Head, X: np.ndarray, rows: slice, complete: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """What ``head``'s graph reads for ``rows`` (the rows, or their lookback windows over all
    of ``X``) and which of those rows it can answer (its whole input is complete)."""
    if complete is None:
        complete = np.ones(len(X), dtype=bool)
    if head.inputs is not None:
        X = np.ascontiguousarray(X[:, head.inputs])
    length = head.sequence_length
    if length is None:
        return X[rows], complete[rows]
    windows = np.ascontiguousarray(lookback_windows(X, length)[rows])
    usable = lookback_windows(complete[:, None], length)[rows].all(axis=(1, 2))
    return windows, np.asarray(usable)
