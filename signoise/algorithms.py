"""The training algorithms of SPEC §4 as data: a name, parameters with their rules, a code.

Every algorithm is GD plus one perturbation channel; the engines interpret the code and the
parameter vector ``theta`` in one compiled kernel (DESIGN.md, principle 2). Adding an
algorithm means one row here, its rule in the engines, and one row in the shared test table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Integer codes used by the compiled kernels.
GD = 0


@dataclass(frozen=True)
class Param:
    """One hyper-parameter: its rule, default and meaning."""

    rule: object
    default: object
    doc: str = ""


@dataclass(frozen=True)
class Algorithm:
    """A registered algorithm: metadata plus the order of its parameters in ``theta``."""

    name: str
    code: int
    params: dict = field(default_factory=dict)
    rule: str = ""
    reference: str = ""
    stochastic: bool = False
    in_span: bool = True


ALGORITHMS: dict[str, Algorithm] = {}


def register(algo: Algorithm) -> Algorithm:
    ALGORITHMS[algo.name] = algo
    return algo


register(Algorithm(
    name="gd", code=GD,
    rule="W <- W - lr * grad L_S(W)",
    reference="full-batch gradient descent (Cao et al. 2022; Kou et al. 2023)",
))

#: Length of the parameter vector handed to the kernels.
N_THETA = 8


def encode(name: str, params: dict) -> tuple[int, np.ndarray]:
    """Return the kernel code and parameter vector of a validated algorithm spec."""
    algo = ALGORITHMS[name]
    theta = np.zeros(N_THETA)
    for k, key in enumerate(algo.params):
        value = params[key]
        theta[k] = float(value) if not isinstance(value, str) else 0.0
    return algo.code, theta
