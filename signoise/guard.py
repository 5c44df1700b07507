"""Preflight: estimate memory and output size before any work, and warn about settings the
theorems do not cover (issue 12). The driver calls :func:`preflight` before allocating.

Estimates count float64 arrays only (8 bytes each), so they are lower bounds on the process's
peak; they decide refusals only when even that lower bound cannot fit.
"""

from __future__ import annotations

import warnings

from .constraints import reject

#: warn when a single output would take more than this on disk
DISK_WARN_BYTES = 1 << 30
#: warn when η exceeds the stability bound min(‖μ‖⁻², (σ_p² d)⁻¹) by this factor; the bound
#: holds "up to logs" (SPEC §6) and published runs use η ≈ 100 × it (Kou et al.: η = 0.1, d ~ 10³)
STABILITY_FACTOR = 1e3
#: a Wishart run needs d > n + 2m; warn when d is within this factor of it
WISHART_MARGIN = 1.5


class SignoiseWarning(UserWarning):
    """A setting outside what the theory or the machine comfortably covers."""


def _records(cfg) -> int:
    return cfg.train.steps // cfg.train.record_every + 1


def run_bytes(cfg, engine: str = "gram", record_rho: str = "full") -> int:
    """Lower bound on a run's memory in bytes: sampler arrays, weights, recorded arrays."""
    n, d, m = cfg.data.n, cfg.data.d, cfg.model.m
    total = 0
    if cfg.data.sampler == "explicit":
        total += (n + cfg.data.n_test) * d          # noise patches of train and test sets
    if engine == "weights":
        total += 2 * (2 * m * d)                    # W and its gradient
    total += (n + 2 * m) ** 2                       # Gram-type state
    per_record = 2 * m + 16 + (2 * m * n if record_rho == "full" else 2 * m)
    total += _records(cfg) * per_record
    return 8 * total


def output_bytes(cfg, record_rho: str = "full") -> int:
    """The recorded arrays' size in bytes (what a netCDF file or a store cell holds)."""
    m, n = cfg.model.m, cfg.data.n
    per_record = 2 * m + 16 + (2 * m * n if record_rho == "full" else 2 * m)
    return 8 * _records(cfg) * per_record


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None (no refusal)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _gb(b):
    return f"{b / 1e9:.3g} GB"


def preflight(cfgs, engine: str = "gram", record_rho: str = "full", available=None) -> list:
    """Check a run or a batch before any work.

    Parameters
    ----------
    cfgs : RunConfig or list of RunConfig
        The runs held in memory together.
    engine, record_rho : str
        As for :func:`signoise.simulate_batch`.
    available : int, optional
        Bytes available (default: MemAvailable).

    Returns
    -------
    list of str
        Warnings, each also emitted once with ``warnings.warn(..., SignoiseWarning)``, for the
        driver to record in the Dataset's attributes.

    Raises
    ------
    ConfigError
        When the estimated memory exceeds what is available; the message names the estimate
        and the cheaper alternatives.
    """
    cfgs = [cfgs] if not isinstance(cfgs, (list, tuple)) else list(cfgs)
    counts = {}
    for c in cfgs:                       # a batch repeats a few config objects many times
        counts[id(c)] = (c, counts.get(id(c), (c, 0))[1] + 1)
    cfgs = [c for c, _ in counts.values()]
    need = sum(k * run_bytes(c, engine, record_rho) for c, k in counts.values())
    available = available_bytes() if available is None else available
    if available is not None and need > available:
        c = max(cfgs, key=lambda c: run_bytes(c, engine, record_rho))
        hints = []
        if c.data.sampler == "explicit" and c.data.d > c.data.n + 2 * c.model.m:
            hints.append('data.sampler = "wishart" (no n·d arrays)')
        if record_rho == "full":
            hints.append('rho summaries (record_rho/--record-rho "summary")')
        hints.append(f"a larger train.record_every (now {c.train.record_every})")
        if engine == "weights":
            hints.append('engine "gram" (no m·d weights)')
        reject("memory", _gb(need), f"at most the {_gb(available)} available: try "
               f"{'; '.join(hints)}", context="(the estimate for these runs)")
    out = []
    for c in cfgs:
        out += _warnings_for(c, record_rho)
    out = list(dict.fromkeys(out))
    for text in out:
        warnings.warn(text, SignoiseWarning, stacklevel=2)
    return out


def _warnings_for(c, record_rho) -> list:
    out = []
    size = output_bytes(c, record_rho)
    if size > DISK_WARN_BYTES:
        out.append(f"the recorded results take about {_gb(size)}: raise train.record_every "
                   f"(now {c.train.record_every}) or record rho summaries")
    noise = c.data.sigma_p ** 2 * c.data.d
    signal = c.data.mu ** 2
    bound = 1.0 / max(noise, signal, 1e-300)
    if c.train.lr > STABILITY_FACTOR * bound:
        out.append(f"train.lr = {c.train.lr:g} is {c.train.lr / bound:.3g} × the stable step "
                   f"size min(‖μ‖⁻², (σ_p² d)⁻¹) = {bound:.3g} (SPEC §6): expect divergence")
    response = c.model.sigma0 * c.data.sigma_p * c.data.d ** 0.5
    if response > 1.0:
        out.append(f"the initial noise response σ₀ σ_p √d = {response:.3g} is not small "
                   "(the theorems assume it is): lower model.sigma0")
    if c.data.sampler == "wishart":
        floor = c.data.n + 2 * c.model.m
        if c.data.d < WISHART_MARGIN * floor:
            out.append(f"data.d = {c.data.d} is barely above n + 2m = {floor}: the Wishart "
                       "sampler's Gram matrices are near singular")
    return out


__all__ = ["SignoiseWarning", "preflight", "run_bytes", "output_bytes", "available_bytes"]
