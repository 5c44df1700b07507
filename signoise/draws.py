"""Per-step random inputs of the stochastic rules, drawn outside the kernels from the run's
own generator (DESIGN.md principle 4): they do not depend on threads, batching or chunking."""

from __future__ import annotations

import numpy as np

from . import algorithms as A


def needs_eval_noise(code) -> bool:
    return code in (A.NOISY_EVAL, A.ANTI_PGD)


def draw_inputs(prm, rng: np.random.Generator, t0: int, k: int, n: int, m: int, width: int):
    """Random inputs of steps t0 .. t0+k−1, drawn outside the kernels (DESIGN.md principle 4).

    ``prm``: the run record (:func:`~signoise.algorithms.run_record`); ``width``: the engine's
    noise draws per filter (its ``noise_width``). Returns ``(omega_t
    (k|0, n), ysign_t (k|0, n), zeta_t (k|0, 2, m, width))``: per-step example weights (sgd,
    msgd), label signs (label_noise_gd), and Gaussian weight noise already scaled (noisy_eval,
    anti_pgd, pgd: s; grad_noise: −η s). Draws fill arrays in step order, so the numbers do not
    depend on how the steps are split into chunks.
    """
    code = prm["code"]
    omega = np.empty((0, n))
    ysign = np.empty((0, n))
    zeta = np.empty((0, 2, m, width))
    if code == A.SGD:
        b = int(prm["batch_size"])
        chosen = np.argsort(rng.random((k, n)), axis=1)[:, :b]
        omega = np.zeros((k, n))
        np.put_along_axis(omega, chosen, 1.0 / b, axis=1)
    elif code == A.MSGD:
        kind, keep, s = prm["mask_kind"], prm["keep"], prm["mask_scale"]
        if kind == A.MaskKind.BERNOULLI:
            mask = (rng.random((k, n)) < keep) / keep
        else:
            e = rng.standard_normal((k, n))
            if kind == A.MaskKind.COV:
                e = e - e.mean(axis=1, keepdims=True)
            mask = 1.0 + s * e
        omega = mask / n
    elif code == A.LABEL_NOISE_GD:
        ysign = np.where(rng.random((k, n)) < prm["p_step"], -1.0, 1.0)
    elif code in (A.NOISY_EVAL, A.ANTI_PGD, A.PGD, A.GRAD_NOISE):
        s = prm["noise_std"]
        zeta = (-prm["lr"] * s if code == A.GRAD_NOISE else s) * rng.standard_normal((k, 2, m, width))
    return omega, ysign, zeta
