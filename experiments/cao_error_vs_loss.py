"""The test error's midpoint against the test loss and the race at Cao et al.'s conditions.

    python experiments/cao_error_vs_loss.py [--q 3] [--steps 6000] [--seeds 8]

GD at the `cao_exponent_q{q}_*_theorem` checks' settings (signoise.checks.cao2022.THEOREM:
σ₀σ_p√d = 0.045 for q = 3, 0.1 for q = 4; ησ_p²d = 1; Wishart sampler, d = 2000), n = 10 and
40, nine values of ‖μ‖ from 14 to 40, 1000 test points. Prints per (n, ‖μ‖) the seed means of
the race indicator (minⱼ maxᵣ γ > meanᵢ maxᵣ ρ̄ at the end), the final test error, test loss and
max γ: the table of docs/checks.md, "The test error at the theorem's conditions".
"""

import argparse
import warnings

import numpy as np

import signoise as sn
from signoise.checks.cao2022 import THEOREM, base_config
from signoise.guard import SignoiseWarning


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--q", type=float, default=3.0, choices=[3.0, 4.0])
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--seeds", type=int, default=8)
    args = ap.parse_args(argv)
    mus = np.geomspace(14.0, 40.0, 9)
    S = args.seeds
    print("n    |μ|    race  test_error  test_loss  max_gamma")
    for n in (10, 40):
        cfgs = [base_config({**THEOREM[args.q], "model.q": args.q, "data.n": n,
                             "data.mu_norm": float(mu), "data.n_test": 1000,
                             "train.steps": args.steps, "train.record_every": args.steps})
                for mu in mus for _ in range(S)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SignoiseWarning)
            ds = sn.simulate_batch(cfgs, [s for _ in mus for s in range(S)], quiet=True)
        end = ds.isel(step=-1)

        def mean(v):
            return np.asarray(v).reshape(mus.size, S).mean(1)
        race = mean(end.gamma_max.min("j") > end.rho_bar_mean)
        err, loss = mean(end.test_error), mean(end.test_loss)
        gam = mean(end.gamma_max.max("j"))
        for k, mu in enumerate(mus):
            print(f"{n:<4} {mu:5.1f}  {race[k]:.2f}  {err[k]:.3f}       {loss[k]:.3f}      "
                  f"{gam[k]:.2f}")


if __name__ == "__main__":
    main()
