"""signoise: two-layer CNNs on signal-noise patch data, simulated exactly and fast.

Gradient descent and its gradient-perturbation relatives on the data model of Cao et al.
(2022), tracking signal learning γ against noise memorisation ρ (the manual: docs/).
"""

__version__ = "0.1.0"

from .config import (AlgorithmSpec, DataSpec, ModelSpec, RunConfig, SweepSpec, TrainSpec,  # noqa: E402
                     dump_config, load_config)
from .data import Problem, sample_problem  # noqa: E402
from .io import save_dataset  # noqa: E402
from .constraints import ConfigError  # noqa: E402
from .simulate import simulate, simulate_batch  # noqa: E402
from .results import config_of  # noqa: E402
from .store import cell_statistic, open_sweep  # noqa: E402
from .phase import collapse_diagram, phase_diagram  # noqa: E402
from .sweeps import sweep  # noqa: E402
from .animate import animate  # noqa: E402
from .explore import explore  # noqa: E402
from .checks import check  # noqa: E402
from .probe import mean_step, perturbed_grad_variance  # noqa: E402
from .boundary import find_boundary  # noqa: E402

__all__ = ["RunConfig", "DataSpec", "ModelSpec", "AlgorithmSpec", "TrainSpec", "SweepSpec",
           "load_config", "dump_config", "Problem", "sample_problem", "simulate", "simulate_batch",
           "save_dataset", "config_of", "ConfigError", "sweep", "open_sweep", "cell_statistic",
           "phase_diagram", "collapse_diagram", "explore", "animate", "check", "mean_step",
           "perturbed_grad_variance", "find_boundary", "__version__"]
