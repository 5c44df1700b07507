"""What every engine shares: run parameters, status codes, and the recorded metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..algorithms import encode
from ..model import numpy_forward

RUNNING, DIVERGED, CONVERGED = 0, 1, 2

#: Scalar metrics recorded at every recorded step (SPEC §5), in this order.
METRICS = ("train_loss", "train_error", "test_loss", "test_error", "test_error_clean",
           "margin_min", "margin_max")


@dataclass(frozen=True)
class Params:
    """The scalars a kernel needs, resolved from a :class:`~signoise.config.RunConfig`."""

    q: float
    a: float
    use_bias: bool
    lr: float
    code: int
    theta: np.ndarray
    loss_threshold: float

    @classmethod
    def from_config(cls, cfg):
        code, theta = encode(cfg.algorithm.name, cfg.algorithm.params)
        return cls(q=float(cfg.model.q), a=float(cfg.model.scale), use_bias=bool(cfg.model.bias),
                   lr=float(cfg.train.lr), code=code, theta=theta,
                   loss_threshold=float(cfg.train.loss_threshold or 0.0))


def metrics_from_preacts(H, y, Ht, y_t, y_true_t, params) -> dict:
    """Train/test loss and 0-1 error (y f ≤ 0 counts as an error), and train margins."""
    f, loss, _, _ = numpy_forward(H, y, params.q, params.a)
    ft, loss_t, _, _ = numpy_forward(Ht, y_t, params.q, params.a)
    margins = y * f
    return {
        "train_loss": loss.mean(),
        "train_error": np.mean(margins <= 0),
        "test_loss": loss_t.mean(),
        "test_error": np.mean(y_t * ft <= 0),
        "test_error_clean": np.mean(y_true_t * ft <= 0),
        "margin_min": margins.min(),
        "margin_max": margins.max(),
    }
