"""Quantile heads are judged by pinball loss and coverage, not by MAE."""

from __future__ import annotations

import numpy as np
import pytest

from quantrain.evaluate import higher_is_better, regression_metrics
from quantrain.evaluate.metrics import pinball_loss


def test_pinball_loss_weights_under_and_over_prediction_by_q() -> None:
    y = np.array([1.0, 2.0, 3.0])
    # Predict 2 everywhere at q = 0.9: one under-prediction by 1 (cost 0.9), one over by 1 (0.1).
    assert pinball_loss(y, np.full(3, 2.0), 0.9) == pytest.approx((0.9 + 0.0 + 0.1) / 3)


def test_the_true_quantile_beats_other_constants_and_covers_q() -> None:
    rng = np.random.default_rng(0)
    y = rng.exponential(1.0, 200_000)
    q = 0.8
    truth = np.full_like(y, -np.log(1 - q))  # exponential quantile function
    best = pinball_loss(y, truth, q)
    for other in (0.5 * truth, 1.5 * truth):
        assert best < pinball_loss(y, other, q)
    metrics = regression_metrics(y, truth, train_values=y, quantile=q)
    assert metrics["coverage"] == pytest.approx(q, abs=0.005)
    assert metrics["pinball"] == pytest.approx(metrics["baseline_pinball"], rel=0.01)


def test_plain_regression_heads_get_no_quantile_metrics() -> None:
    y = np.arange(10.0)
    assert "pinball" not in regression_metrics(y, y, train_values=y)
    assert not higher_is_better("stop_loss_q90.pinball")


def test_quantile_heads_are_tuned_on_pinball_loss() -> None:
    from quantrain.config import build_job
    from quantrain.tuning.search import head_metric

    job = build_job({"suite": "full"})
    heads = {h.name: h for h in job.suite.heads}
    assert head_metric(job, heads["stop_loss_q90"]) == ("pinball", False)
    assert head_metric(job, heads["position_size"])[0] == job.tune.metric["regression"]
