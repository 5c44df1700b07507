"""Run configuration: frozen specs whose fields carry their own rules; TOML load and dump.

Sections and keys follow DESIGN.md ("Public contract"). Every value is checked when a spec is
built, and the error names the key, the value given and what is allowed.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from .algorithms import ALGORITHMS, check_against_config
from .algorithms import validate as validate_algorithm
from .constraints import Bool, Choice, ConfigError, Int, Real, reject, unknown_key


def _f(default, constraint, doc="", quiet=False):
    """A dataclass field whose metadata holds its constraint and documentation. A ``quiet``
    field is left out of :meth:`to_dict` (and the TOML) at its default: an option added later,
    so that the configs written before it existed read and compare unchanged."""
    return field(default=default, metadata={"constraint": constraint, "doc": doc,
                                            "quiet": quiet})


class _Section:
    """Validation shared by all spec sections: each field's constraint, then cross-field checks."""

    _name = ""

    def __post_init__(self):
        for f in fields(self):
            constraint = f.metadata.get("constraint")
            if constraint is not None:
                value = constraint(f"{self._name}.{f.name}", getattr(self, f.name))
                object.__setattr__(self, f.name, value)
        self._check()

    def _check(self):
        pass

    @classmethod
    def from_dict(cls, d: dict):
        known = {f.name for f in fields(cls)}
        for key in d:
            if key not in known:
                unknown_key(f"{cls._name}.{key}", known)
        return cls(**d)

    def to_dict(self):
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None
                and not (f.metadata.get("quiet") and getattr(self, f.name) == f.default)}


@dataclass(frozen=True)
class DataSpec(_Section):
    """Signal-noise patch data (SPEC §1; Cao et al. 2022, Kou et al. 2023).

    ``mu_norm`` is ‖μ‖; ``snr`` = ‖μ‖ / (σ_p √d); give exactly one. ``flip`` is the label-flip
    rate p; ``flip_exact`` flips exactly round(p·n_c) labels in each true class c instead of
    each with probability p (separates the theory from finite-sample flip fluctuations).
    ``noise``: "projected" ξ ~ N(0, σ_p²(I − μμᵀ/‖μ‖²)), or "isotropic" N(0, σ_p² I).
    """

    _name = "data"
    n: int = _f(20, Int(1), "training examples")
    d: int = _f(500, Int(2), "patch dimension")
    mu_norm: float | None = _f(None, Real(0.0, optional=True), "signal norm ‖μ‖")
    snr: float | None = _f(None, Real(0.0, optional=True), "‖μ‖/(σ_p √d)")
    sigma_p: float = _f(1.0, Real(0.0, low_open=True), "noise scale σ_p")
    flip: float = _f(0.0, Real(0.0, 0.5, high_open=True), "label-flip rate p")
    flip_exact: bool = _f(False, Bool(), "exactly round(p·n_c) flipped labels in each class c "
                          "(default: each label flips independently with probability p)",
                          quiet=True)
    n_test: int = _f(2000, Int(1), "test examples")
    noise: str = _f("projected", Choice(("projected", "isotropic")))
    sampler: str = _f("explicit", Choice(("explicit", "wishart")),
                      "how data are drawn: explicit arrays, or d-free Gram matrices (SPEC §3)")

    def _check(self):
        if self.mu_norm is not None and self.snr is not None:
            reject("data.mu_norm", self.mu_norm, "exactly one of data.mu_norm and data.snr",
                   context=f"with data.snr = {self.snr!r}")
        if self.mu_norm is None and self.snr is None:
            reject("data.mu_norm", None, "exactly one of data.mu_norm and data.snr",
                   context="with data.snr = None")
        if self.n > self.d - 1:
            reject("data.n", self.n, f"n <= d - 1 = {self.d - 1} (the n noise patches and μ "
                   "must be linearly independent in R^d)", context=f"with data.d = {self.d}")

    @property
    def mu(self) -> float:
        """‖μ‖, resolved from ``mu_norm`` or ``snr``."""
        if self.mu_norm is not None:
            return self.mu_norm
        return self.snr * self.sigma_p * math.sqrt(self.d)

    @property
    def SNR(self) -> float:
        return self.mu / (self.sigma_p * math.sqrt(self.d))


@dataclass(frozen=True)
class ModelSpec(_Section):
    """Two-layer CNN f = F_{+1} − F_{−1}, F_j = a Σ_r Σ_p σ(⟨w_{j,r}, x^(p)⟩ + b_{j,r}) (SPEC §2).

    σ(z) = max(0, z)^q. The readout scale a is 1/m for ``filter_pool = "mean"`` (theory) or 1
    for "sum", times 1/2 for ``patch_pool = "mean"`` (the Kou et al. code, SPEC §7).
    ``init``: "gaussian" N(0, σ0²) weights; "uniform" U(−1/√d, 1/√d) (PyTorch's default).
    ``bias``: a trainable bias per filter (initialised like the weights; zero if gaussian).

    ``readout``: "fixed" keeps the second layer at ±a (the model of Cao et al.); "trainable"
    trains the readout weights a_{j,r} of F_j = Σ_r a_{j,r} Σ_p σ(⟨w_{j,r}, x^(p)⟩ + b_{j,r})
    with the filters (SPEC §2). ``readout_init``: "constant" a_{j,r} = a (the mean-field
    scaling 1/m of Cao et al.); "gaussian" a_{j,r} ~ N(0, 1/m) and "sign" a_{j,r} = ±1/√m with
    a fair random sign (the standard 1/√m scaling of a two-layer network, the setting of
    Orvieto et al.'s width analysis), each times 1/2 with ``patch_pool = "mean"``.
    """

    _name = "model"
    m: int = _f(10, Int(1), "filters per class")
    q: float = _f(3.0, Real(1.0), "activation power q >= 1")
    sigma0: float = _f(0.01, Real(0.0, low_open=True), "initial weight scale σ0")
    init: str = _f("gaussian", Choice(("gaussian", "uniform")))
    bias: bool = _f(False, Bool())
    filter_pool: str = _f("mean", Choice(("mean", "sum")))
    patch_pool: str = _f("sum", Choice(("sum", "mean")))
    readout: str = _f("fixed", Choice(("fixed", "trainable")), "train the second layer too",
                      quiet=True)
    readout_init: str = _f("constant", Choice(("constant", "gaussian", "sign")),
                           "initial second-layer weights a_{j,r}", quiet=True)

    @property
    def readout_scale(self) -> float:
        """The readout scale a of F_j."""
        return (1.0 / self.m if self.filter_pool == "mean" else 1.0) * (
            0.5 if self.patch_pool == "mean" else 1.0)

    @property
    def per_filter_readout(self) -> bool:
        """Whether the kernels need the (2, m) readout a_{j,r} instead of the scalar a."""
        return self.readout == "trainable" or self.readout_init != "constant"


@dataclass(frozen=True)
class AlgorithmSpec:
    """An algorithm name from :data:`signoise.algorithms.ALGORITHMS` and its parameters."""

    name: str = "gd"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "params", validate_algorithm(self.name, dict(self.params)))

    @classmethod
    def from_dict(cls, d: dict):
        d = dict(d)
        name = d.pop("name", "gd")
        return cls(name=name, params=d)

    def to_dict(self):
        return {"name": self.name, **{k: v for k, v in self.params.items() if v is not None}}


@dataclass(frozen=True)
class TrainSpec(_Section):
    """Training loop: learning rate η, steps, recording, optional early stop."""

    _name = "train"
    lr: float = _f(0.05, Real(0.0, low_open=True), "learning rate η")
    steps: int = _f(1000, Int(1))
    record_every: int = _f(10, Int(1))
    loss_threshold: float | None = _f(None, Real(0.0, low_open=True, optional=True),
                                      "stop once the training loss is below this")

    def _check(self):
        if self.record_every > self.steps:
            reject("train.record_every", self.record_every,
                   f"an integer <= train.steps = {self.steps}")


def _grid_values(key, spec):
    """Expand one grid axis: a list, {linspace = [a, b, k]} or {geomspace = [a, b, k]}."""
    import numpy as np

    if isinstance(spec, list):
        if not spec:
            reject(f"sweep.grid.{key}", spec, "a non-empty list")
        return list(spec)
    if isinstance(spec, dict) and len(spec) == 1:
        (kind, args), = spec.items()
        if kind in ("linspace", "geomspace") and isinstance(args, list) and len(args) == 3:
            a, b, k = args
            Real()(f"sweep.grid.{key}.{kind}[0]", a)
            Real()(f"sweep.grid.{key}.{kind}[1]", b)
            k = Int(1)(f"sweep.grid.{key}.{kind}[2]", k)
            if kind == "geomspace" and (a <= 0 or b <= 0):
                reject(f"sweep.grid.{key}", spec, "geomspace bounds > 0")
            return [float(v) for v in getattr(np, kind)(a, b, k)]
    reject(f"sweep.grid.{key}", spec,
           "a list, {linspace = [a, b, k]} or {geomspace = [a, b, k]}")


@dataclass(frozen=True)
class SweepSpec:
    """Seeds per cell and the grid: config key -> values (DESIGN.md)."""

    seeds: int = 1
    grid: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "seeds", Int(1)("sweep.seeds", self.seeds))
        if not isinstance(self.grid, dict):
            reject("sweep.grid", self.grid, "a table of key = values")

    def axes(self) -> dict[str, list]:
        """Grid axes with their expanded values, in the order given."""
        return {key: _grid_values(key, spec) for key, spec in self.grid.items()}

    @classmethod
    def from_dict(cls, d):
        unknown = set(d) - {"seeds", "grid"}
        if unknown:
            unknown_key(f"sweep.{sorted(unknown)[0]}", {"seeds", "grid"})
        return cls(**d)

    def to_dict(self):
        return {"seeds": self.seeds, "grid": dict(self.grid)}


_SECTIONS = {"data": DataSpec, "model": ModelSpec, "algorithm": AlgorithmSpec,
             "train": TrainSpec, "sweep": SweepSpec}


@dataclass(frozen=True)
class RunConfig:
    """A whole run: ``seed`` plus the data, model, algorithm, train and sweep sections."""

    data: DataSpec
    model: ModelSpec = field(default_factory=ModelSpec)
    algorithm: AlgorithmSpec = field(default_factory=AlgorithmSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    sweep: SweepSpec = field(default_factory=SweepSpec)
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "seed", Int(0)("seed", self.seed))
        for name, cls in _SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                reject(name, getattr(self, name), f"a {cls.__name__}", TypeError)
        check_against_config(self.algorithm.name, self.algorithm.params, self)
        for key in self.sweep.grid:
            _check_key(key)
        self.sweep.axes()  # validates every axis now, before any work
        if self.data.sampler == "wishart":
            from .wishart import check_wishart

            check_wishart(self)  # d - 1 >= n + 2m and Gaussian init (cross-section rules)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Build from a nested dict (the TOML layout); unknown keys are errors."""
        if not isinstance(d, dict):
            reject("config", d, "a table", TypeError)
        for key in d:
            if key not in _SECTIONS and key != "seed":
                unknown_key(key, [*_SECTIONS, "seed"])
        kwargs = {}
        for name, spec in _SECTIONS.items():
            section = d.get(name, {} if name != "data" else None)
            if section is None:
                reject("data", None, "a [data] section with at least data.mu_norm or data.snr")
            if not isinstance(section, dict):
                reject(name, section, "a table", TypeError)
            kwargs[name] = spec.from_dict(section)
        return cls(seed=d.get("seed", 0), **kwargs)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"seed": self.seed}
        for name in _SECTIONS:
            out[name] = getattr(self, name).to_dict()
        if not self.sweep.grid and self.sweep.seeds == 1:
            del out["sweep"]
        return out

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def updated(self, changes: dict) -> "RunConfig":
        """A copy with dotted keys replaced, e.g. ``{"data.n": 40, "algorithm.lam": 0.1}``."""
        d = self.to_dict()
        new_name = changes.get("algorithm.name", self.algorithm.name)
        if new_name != self.algorithm.name and new_name in ALGORITHMS:
            # parameters of the old algorithm that the new one does not take are dropped
            d["algorithm"] = {k: v for k, v in d["algorithm"].items()
                              if k == "name" or k in ALGORITHMS[new_name].params}
        for key, value in changes.items():
            _check_key(key)
            parts = key.split(".")
            target = d
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            if parts[-1] in ("mu_norm", "snr") and parts[0] == "data":
                target.pop("snr" if parts[-1] == "mu_norm" else "mu_norm", None)
            target[parts[-1]] = value
        return RunConfig.from_dict(d)

    def get(self, key: str):
        """Value of a dotted key, e.g. ``cfg.get("data.mu_norm")``."""
        _check_key(key)
        if key == "seed":
            return self.seed
        section, leaf = key.split(".", 1)
        if section == "algorithm":
            return self.algorithm.to_dict().get(leaf)
        return getattr(getattr(self, section), leaf)


def _check_key(key: str):
    """Reject a dotted key that names no config value."""
    if key == "seed":
        return
    section, _, leaf = key.partition(".")
    if section not in _SECTIONS or section == "sweep" or not leaf:
        unknown_key(key, [f"{s}.<key>" for s in _SECTIONS if s != "sweep"] + ["seed"])
    if section == "algorithm":
        if leaf != "name" and not any(leaf in a.params for a in ALGORITHMS.values()):
            unknown_key(key, sorted({p for a in ALGORITHMS.values() for p in a.params} | {"name"}))
        return
    known = {f.name for f in fields(_SECTIONS[section])}
    if leaf not in known:
        unknown_key(key, known)


def load_config(path) -> RunConfig:
    """Read a TOML file into a validated :class:`RunConfig`."""
    with open(path, "rb") as fh:
        try:
            d = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            reject("config", str(path), f"a valid TOML file ({exc})")
    return RunConfig.from_dict(d)


def dump_config(cfg: RunConfig, path) -> None:
    """Write ``cfg`` as TOML, atomically."""
    from .io import atomic_write_bytes

    atomic_write_bytes(Path(path), cfg.to_toml().encode())


def parse_value(text: str):
    """Parse a ``--set key=value`` right-hand side as a TOML value, else as a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


__all__ = ["DataSpec", "ModelSpec", "AlgorithmSpec", "TrainSpec", "SweepSpec", "RunConfig",
           "load_config", "dump_config", "parse_value", "ConfigError"]
