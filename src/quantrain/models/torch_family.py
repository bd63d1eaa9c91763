"""PyTorch families behind the model contract: ``mlp``, ``lstm``, ``cnn1d``, ``transformer``.

One training loop serves every family and both runners: a single process, and Ray Train's
data-parallel workers (``quantrain.orchestration.torch_train`` passes :class:`TrainHooks`; this
module never imports Ray). Budget: ``epochs`` (like ``n_estimators``) with early stopping on
``eval_set`` after ``early_stopping_rounds`` epochs without a better validation loss; the best
epoch's weights are kept and ``best_iteration_`` is that epoch. Class weights come in as
``sample_weight`` (a weighted loss). Same seed on CPU → identical predictions.

Native format (``model.npz``): the state dict as numpy arrays, read back with
``allow_pickle=False`` (no pickle anywhere); the architecture lives in ``meta.json``. ONNX comes
from torch's dynamo exporter at opset 20, one self-contained file with dynamic batch (and
sequence) axes; sequence families read ``(N, seq, F)`` windows built by
:func:`quantrain.models.windows.lookback_windows`.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from quantrain.errors import ModelError
from quantrain.features.windows import lookback_windows
from quantrain.models.base import FamilyTags, ModelFamily, Task
from quantrain.models.onnx_outputs import INPUT_NAME, normalise_outputs
from quantrain.models.registry import register
from quantrain.models.torch_nets import (
    CNN1dBody,
    HeadNet,
    LSTMBody,
    MLPBody,
    Served,
    TransformerBody,
    infer,
)

log = logging.getLogger(__name__)

NATIVE_FILE = "model.npz"
#: Opset the dynamo exporter writes; onnxruntime ≥ 1.17 runs it.
ONNX_OPSET = 20
#: Rows per forward pass when predicting (bounds memory for long histories).
PREDICT_CHUNK = 4096
#: Keys that drive training, not the network's shape.
TRAINING_DEFAULTS: Mapping[str, Any] = {
    "epochs": 30,
    "early_stopping_rounds": 5,
    "learning_rate": 1e-3,
    "weight_decay": 0.01,
    "batch_size": 256,
}
_POSITIVE_INTS = ("epochs", "batch_size", "hidden", "layers", "sequence_length", "kernel_size")


def _same_module(module: nn.Module) -> nn.Module:
    return module


def _same_value(value: float) -> float:
    return value


def _ignore(metrics: dict[str, float]) -> None:
    del metrics


@dataclass(frozen=True)
class TrainHooks:
    """How a data-parallel runner joins the training loop; the defaults are one process.

    Each epoch every worker draws the same seeded permutation of the training rows and takes
    rows ``rank::world_size`` of it (every row once per epoch across workers, no padding), in
    the same number of batches on every worker. ``wrap_model`` wraps the network (e.g. DDP);
    ``reduce_mean`` averages a scalar over workers so early stopping decides the same
    everywhere; ``report`` receives each epoch's metrics.
    """

    rank: int = 0
    world_size: int = 1
    wrap_model: Callable[[nn.Module], nn.Module] = _same_module
    reduce_mean: Callable[[float], float] = _same_value
    report: Callable[[dict[str, float]], None] = _ignore


@dataclass(frozen=True)
class _Training:
    epochs: int
    patience: int
    learning_rate: float
    weight_decay: float
    batch_size: int


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """Use ``n`` intra-op threads inside the block (workers share cores), then restore."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Deterministic algorithms and a private RNG stream seeded with ``seed``; the caller's
    global RNG state and determinism setting are restored afterwards."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    devices = [device.index or 0] if device.type == "cuda" else []
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.random.fork_rng(devices=devices, device_type=device.type):
            torch.manual_seed(seed)
            yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


class TorchFamily(ModelFamily):
    """The shared training loop, native format and ONNX export; subclasses build the body."""

    #: Set by :meth:`fit` for the duration of one fit (single process unless a runner says).
    _hooks: TrainHooks = TrainHooks()
    #: The architecture the fitted network was built with (restored from ``meta.json``).
    architecture_: dict[str, Any]
    net_: HeadNet
    sequence_length_: int | None = None
    #: Rows this process trained on, per epoch (a data-parallel worker sees its shard only).
    rows_seen_: list[int]

    # -- what each family adds --------------------------------------------------------------
    #: The network body (``torch_nets``) and the architecture params its constructor takes.
    body: ClassVar[Callable[..., nn.Module]]
    body_keys: ClassVar[tuple[str, ...]]

    def _body(self, n_features: int, n_outputs: int, arch: Mapping[str, Any]) -> nn.Module:
        """The family's network body, built from the architecture params it names."""
        return self.body(n_features, n_outputs, **{k: arch[k] for k in self.body_keys})

    def _check_architecture(self, arch: Mapping[str, Any]) -> None:
        """Family-specific rules on top of the shared type checks."""
        del arch

    # -- params -----------------------------------------------------------------------------
    @classmethod
    def unknown_params(cls, task: Task, params: Mapping[str, Any]) -> list[str]:
        del task
        return sorted(set(params) - set(cls.default_params))

    def _checked_params(self) -> tuple[_Training, dict[str, Any]]:
        """Training settings and architecture, validated with messages that name the key."""
        params = self.resolved_params()
        unknown = sorted(set(params) - set(self.default_params))
        if unknown:
            hint = " (quantile heads need xgboost or lightgbm)" if "quantile" in unknown else ""
            raise ModelError(
                f"{self.key}: unknown params {unknown}{hint}; "
                f"known: {', '.join(sorted(self.default_params))}"
            )
        for key in _POSITIVE_INTS:
            if key in params and not _is_int(params[key], minimum=1):
                raise ModelError(f"{self.key}: {key} must be an integer >= 1, got {params[key]!r}")
        if not _is_int(params["early_stopping_rounds"], minimum=0):
            raise ModelError(
                f"{self.key}: early_stopping_rounds must be an integer >= 0, "
                f"got {params['early_stopping_rounds']!r}"
            )
        for key, allowed, rule in (
            ("dropout", "in [0, 1)", lambda v: 0 <= v < 1),
            ("learning_rate", "> 0", lambda v: v > 0),
            ("weight_decay", ">= 0", lambda v: v >= 0),
        ):
            value = params[key]
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number and math.isfinite(value) and rule(value)):
                raise ModelError(f"{self.key}: {key} must be a number {allowed}, got {value!r}")
        arch = {k: v for k, v in params.items() if k not in TRAINING_DEFAULTS}
        self._check_architecture(arch)
        training = _Training(
            epochs=int(params["epochs"]),
            patience=int(params["early_stopping_rounds"]),
            learning_rate=float(params["learning_rate"]),
            weight_decay=float(params["weight_decay"]),
            batch_size=int(params["batch_size"]),
        )
        return training, arch

    def fixed_budget(self, iterations: int) -> dict[str, Any]:
        return {"epochs": max(1, iterations), "early_stopping_rounds": 0}

    def _network(self, n_features: int, arch: Mapping[str, Any]) -> HeadNet:
        return HeadNet(n_features, self._body(n_features, self._n_outputs(), arch))

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        """What the network reads for the rows of ``X``: the rows, or their lookback windows."""
        length = self.sequence_length_
        return X if length is None else lookback_windows(X, length)

    # -- fit ----------------------------------------------------------------------------------
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        eval_set: tuple[np.ndarray, np.ndarray] | None = None,
        sample_weight: np.ndarray | None = None,
        hooks: TrainHooks | None = None,
    ) -> Self:
        """The contract's ``fit``; ``hooks`` let a data-parallel runner take part."""
        self._hooks = hooks or TrainHooks()
        try:
            return super().fit(X, y, eval_set=eval_set, sample_weight=sample_weight)
        finally:
            del self._hooks

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: np.ndarray | None,
    ) -> None:
        training, arch = self._checked_params()
        if sample_weight is not None and len(sample_weight) != len(X):
            raise ModelError(f"sample_weight has {len(sample_weight)} rows but X has {len(X)}")
        self.architecture_ = arch
        self.sequence_length_ = arch.get("sequence_length") if self.tags.sequence else None
        device = torch.device(self.device)
        with _threads(self.n_jobs), _seeded(self.seed, device):
            net = self._network(X.shape[1], arch)
            net.inputs.fit(X)
            if self.task == "regression":
                net.fit_target(np.asarray(y, dtype=np.float64))
            net.to(device)
            self._train_loop(net, X, y, eval_set, sample_weight, training, device)
        self.net_ = net.cpu().eval()

    def _targets(self, net: HeadNet, y: np.ndarray, device: torch.device) -> torch.Tensor:
        if self.task == "classification":
            return torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)
        values = torch.as_tensor(np.asarray(y, dtype=np.float32), device=device)
        return (values - net.target_mean) / net.target_scale

    def _loss(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-row loss: cross-entropy on logits, or squared error on the standardised target."""
        if self.task == "classification":
            return F.cross_entropy(raw, target, reduction="none")
        return F.mse_loss(raw[:, 0], target, reduction="none")

    def _batch(self, inputs: np.ndarray, rows: np.ndarray, device: torch.device) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(inputs[rows], dtype=np.float32)).to(device)

    def _train_loop(
        self,
        net: HeadNet,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: np.ndarray | None,
        training: _Training,
        device: torch.device,
    ) -> None:
        """Epochs of shuffled mini-batches; early stopping keeps the best epoch's weights."""
        hooks = self._hooks
        model = hooks.wrap_model(net)
        optimiser = torch.optim.AdamW(
            model.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay
        )
        inputs = self._inputs(X)
        targets = self._targets(net, y, device)
        weights = torch.as_tensor(
            np.ones(len(X)) if sample_weight is None else sample_weight,
            dtype=torch.float32,
            device=device,
        )
        validate = eval_set is not None and training.patience > 0 and len(eval_set[0]) > 0
        rng = np.random.default_rng(self.seed)  # the same permutation on every worker
        per_worker = math.ceil(len(X) / hooks.world_size)
        n_batches = max(1, math.ceil(per_worker / training.batch_size))
        best_loss, best_state, best_epoch, waited = math.inf, None, 0, 0
        self.rows_seen_ = []
        for epoch in range(1, training.epochs + 1):
            mine = rng.permutation(len(X))[hooks.rank :: hooks.world_size]
            model.train()
            total = 0.0
            for rows in np.array_split(mine, n_batches):
                index = torch.from_numpy(rows).to(device)
                per_row = self._loss(model(self._batch(inputs, rows, device)), targets[index])
                w = weights[index]
                loss = (per_row * w).sum() / w.sum().clamp_min(1e-12)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(rows)
            self.rows_seen_.append(len(mine))
            metrics = {
                "epoch": float(epoch),
                "train_loss": hooks.reduce_mean(total / max(1, len(mine))),
                "rows_seen": float(len(mine)),
            }
            stop = False
            if validate:
                assert eval_set is not None
                val = hooks.reduce_mean(self._eval_loss(net, eval_set, device))
                metrics["val_loss"] = val
                if val < best_loss:
                    best_loss, best_epoch, waited = val, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    waited += 1
                    stop = waited >= training.patience
            hooks.report(metrics)
            if stop:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
            self.best_iteration_ = best_epoch
        else:
            self.best_iteration_ = len(self.rows_seen_)

    def _eval_loss(
        self, net: HeadNet, eval_set: tuple[np.ndarray, np.ndarray], device: torch.device
    ) -> float:
        """Mean unweighted loss on the validation rows (windows built from those rows)."""
        X_val, y_val = eval_set
        inputs = self._inputs(X_val)
        targets = self._targets(net, y_val, device)
        net.eval()
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(X_val), PREDICT_CHUNK):
                rows = np.arange(start, min(start + PREDICT_CHUNK, len(X_val)))
                raw = net(self._batch(inputs, rows, device))
                total += float(self._loss(raw, targets[start : start + len(rows)]).sum())
        return total / len(X_val)

    # -- predict ------------------------------------------------------------------------------
    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        classification = self.task == "classification"
        if len(X) == 0:
            return np.empty((0, self._n_outputs()) if classification else (0,))
        return self._served_rows(X, lambda x: infer(self.net_, x, classification))

    def _served_rows(
        self, X: np.ndarray, serve: Callable[[torch.Tensor], torch.Tensor]
    ) -> np.ndarray:
        """``serve`` over the network inputs of ``X`` in chunks (bounded memory), as float64."""
        inputs = self._inputs(X)
        parts: list[np.ndarray] = []
        with _threads(self.n_jobs), torch.no_grad():
            for start in range(0, len(X), PREDICT_CHUNK):
                chunk = np.ascontiguousarray(inputs[start : start + PREDICT_CHUNK])
                parts.append(serve(torch.from_numpy(chunk)).numpy())
        return np.concatenate(parts).astype(np.float64)

    def _importance(self) -> np.ndarray:
        """Networks have no split gain: importance comes from permutation (importance.csv)."""
        return np.zeros(self.n_features_in_)

    # -- native format ------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"best_iteration": self.best_iteration_, "architecture": self.architecture_}

    def _restore_state(self, state: Mapping[str, Any]) -> None:
        self.best_iteration_ = int(state.get("best_iteration", 0))
        self.architecture_ = dict(state["architecture"])
        length = self.architecture_.get("sequence_length")
        self.sequence_length_ = int(length) if self.tags.sequence and length else None

    def _save_native(self, path: Path) -> None:
        arrays = {k: v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        with path.open("wb") as handle:
            np.savez(handle, **arrays)

    def _load_native(self, path: Path) -> None:
        net = self._network(self.n_features_in_, self.architecture_)
        with np.load(path, allow_pickle=False) as archive:
            state = {k: torch.from_numpy(archive[k].copy()) for k in archive.files}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise ModelError(
                f"{path}: weights do not fit the {self.key} architecture: {error}"
            ) from None
        self.net_ = net.eval()

    # -- ONNX ---------------------------------------------------------------------------------
    def _convert_onnx(self, n_features: int) -> onnx.ModelProto:
        """Dynamo export of :class:`Served`: one self-contained graph, dynamic batch (and
        window length for sequence families), outputs renamed to the package interface."""
        served = self._served().eval()
        batch = torch.export.Dim("N", min=1)
        if self.sequence_length_ is None:
            example = torch.zeros(3, n_features)
            axes: dict[int, Any] = {0: batch}
        else:
            example = torch.zeros(3, max(2, self.sequence_length_) + 1, n_features)
            axes = {0: batch, 1: torch.export.Dim("seq", min=2)}
        _forget_rnn_kernels()
        with warnings.catch_warnings(), _threads(self.n_jobs):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                served,
                (example,),
                dynamo=True,
                dynamic_shapes=(axes,),
                input_names=[INPUT_NAME],
                opset_version=ONNX_OPSET,
                external_data=False,
                verbose=False,
            )
        if program is None:  # only when writing to a file, which we never do
            raise ModelError(f"{self.key}: the ONNX exporter returned no program")
        graph = program.model_proto
        dims = graph.graph.input[0].type.tensor_type.shape.dim
        frozen = [i for i in axes if not dims[i].dim_param]
        if frozen:
            raise ModelError(
                f"{self.key}: the ONNX exporter fixed input axes {frozen} to the example's "
                f"size ({[dims[i].dim_value for i in frozen]}); the graph would refuse other "
                "batch sizes or window lengths"
            )
        return normalise_outputs(graph, self.output_names())

    def _served(self) -> nn.Module:
        """The module the graph is exported from: its outputs are :meth:`output_names`."""
        return Served(self.net_, self.task == "classification")


def _forget_rnn_kernels() -> None:
    """Work around a torch 2.13 exporter bug: it swaps in a ``while_loop`` LSTM/GRU kernel for
    dynamic window lengths by editing ``py_kernels`` directly, without clearing the op's
    dispatch cache, so every export after the first in a process reuses the cached
    Python-loop kernel and freezes the window length to the example's. Clearing the cache
    first makes each export resolve the kernel afresh (the frozen-axis check catches a miss)."""
    for op in (torch.ops.aten.lstm.input, torch.ops.aten.gru.input):
        cache = getattr(op, "_dispatch_cache", None)
        if isinstance(cache, dict):
            cache.clear()


def _is_int(value: Any, *, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _tags(sequence: bool) -> FamilyTags:
    return FamilyTags(
        tasks=frozenset({"classification", "regression"}),
        gpu=True,
        warm_start=False,
        sequence=sequence,
        native_file=NATIVE_FILE,
    )


@register
class MLPFamily(TorchFamily):
    """A feed-forward network on each row's features."""

    key = "mlp"
    tags = _tags(sequence=False)
    default_params: ClassVar[Mapping[str, Any]] = {
        **TRAINING_DEFAULTS,
        "hidden": 64,
        "layers": 2,
        "dropout": 0.1,
    }

    body = MLPBody
    body_keys = ("hidden", "layers", "dropout")


@register
class LSTMFamily(TorchFamily):
    """An LSTM over each row's lookback window of ``sequence_length`` rows."""

    key = "lstm"
    tags = _tags(sequence=True)
    default_params: ClassVar[Mapping[str, Any]] = {
        **TRAINING_DEFAULTS,
        "sequence_length": 32,
        "hidden": 64,
        "layers": 1,
        "dropout": 0.1,
    }

    body = LSTMBody
    body_keys = ("hidden", "layers", "dropout")


@register
class CNN1dFamily(TorchFamily):
    """1-D convolutions over time in each lookback window."""

    key = "cnn1d"
    tags = _tags(sequence=True)
    default_params: ClassVar[Mapping[str, Any]] = {
        **TRAINING_DEFAULTS,
        "sequence_length": 32,
        "hidden": 64,
        "layers": 2,
        "kernel_size": 3,
        "dropout": 0.1,
    }

    def _check_architecture(self, arch: Mapping[str, Any]) -> None:
        if _is_int(arch["kernel_size"], minimum=1) and arch["kernel_size"] % 2 == 0:
            raise ModelError(
                f"cnn1d: kernel_size must be odd (the window keeps its length), "
                f"got {arch['kernel_size']}"
            )

    body = CNN1dBody
    body_keys = ("hidden", "layers", "dropout", "kernel_size")


@register
class TransformerFamily(TorchFamily):
    """A small transformer encoder over each lookback window."""

    key = "transformer"
    tags = _tags(sequence=True)
    default_params: ClassVar[Mapping[str, Any]] = {
        **TRAINING_DEFAULTS,
        "sequence_length": 32,
        "hidden": 64,
        "layers": 2,
        "heads": 4,
        "dropout": 0.1,
    }

    def _check_architecture(self, arch: Mapping[str, Any]) -> None:
        hidden, heads = arch["hidden"], arch["heads"]
        if not _is_int(heads, minimum=1):
            raise ModelError(f"transformer: heads must be an integer >= 1, got {heads!r}")
        if hidden % 2 or hidden % heads:
            raise ModelError(
                f"transformer: hidden must be even and divisible by heads; got hidden {hidden}, "
                f"heads {heads}"
            )

    body = TransformerBody
    body_keys = ("hidden", "layers", "dropout", "heads")
