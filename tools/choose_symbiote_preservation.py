"""Choose the symbiote's preservation weight on validation data, by a rule fixed before the run.

SymbioteNet's goal on the normal condition is per digit: with B inhibiting any one digit, the
target-output rate stays at or below 1% and the accuracy on the other digits drops by at most
one point. The mean over digits can meet that while one digit (often "1") misses it, and the
knob that trades collateral damage against the inhibition is the weight of B's preservation
term (``SymbioteConfig.preservation``). The rule:

    the smallest weight in WEIGHTS for which, on every seed in SEEDS, the fixed symbiote keeps
    every digit's target-output rate <= MAX_RATE and every digit's non-target accuracy drop
    <= MAX_DROP on the validation images; if no weight does, the weight with the smallest
    worst-digit drop among those whose target rates all stay <= MAX_RATE, reported as a miss.

Validation images are the fixed fifth of the training split that
:meth:`mechinterp.data.DigitData.validation_split` carves (the same carve
``tools/choose_selectivity_penalty.py`` uses); A (the normal CNN, or another condition's
primary with ``--condition``) and B are trained on the other four fifths and never see the
test split. B is evaluated as the pages count it (only the units it touches keep their gates).

Run: ``python tools/choose_symbiote_preservation.py [--condition narrow] [--weights 1,3]
[--seeds 0,1] [--json]``
(quick profile: about a minute and a half per weight and seed on one core; subsets of
weights can run in parallel and the rule applied to their JSON lines with ``--choose``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mechinterp.config import get_profile
from mechinterp.data import DigitData, load_digits
from mechinterp.symbiote.experiment import CONDITIONS, evaluate_symbiote, primary_for
from mechinterp.symbiote.network import SymbioteConfig
from mechinterp.symbiote.training import train_symbiote

WEIGHTS = (1.0, 3.0, 10.0, 30.0)
SEEDS = (0, 1, 2)
MAX_RATE = 0.01
MAX_DROP = 0.01


def run(weight: float, seed: int, data: DigitData, condition: str = "normal") -> dict:
    """One fixed symbiote with preservation ``weight`` on seed ``seed``'s primary of
    ``condition`` (the normal CNN by default)."""
    primary = primary_for(condition, data, seed=seed)
    trained = train_symbiote(primary, data, SymbioteConfig(preservation=weight), seed=seed)
    rows = [evaluate_symbiote(trained, data, digit) for digit in data.classes]
    return {"condition": condition, "weight": weight, "seed": seed,
            "drops": [r["nontarget_accuracy_drop"] for r in rows],
            "rates": [r["target_output_rate"] for r in rows],
            "units_touched": [r["units_touched"] for r in rows]}


def choose(runs: list[dict]) -> tuple[float, bool]:
    """The rule of the module docstring over ``runs``: ``(weight, met)``."""
    weights = sorted({r["weight"] for r in runs})

    def of(w):
        return [r for r in runs if r["weight"] == w]
    rates_ok = [w for w in weights if all(max(r["rates"]) <= MAX_RATE for r in of(w))]
    meeting = [w for w in rates_ok if all(max(r["drops"]) <= MAX_DROP for r in of(w))]
    if meeting:
        return meeting[0], True
    pool = rates_ok or weights
    return min(pool, key=lambda w: max(max(r["drops"]) for r in of(w))), False


def report(runs: list[dict]) -> None:
    print(f"profile {get_profile().name}; rule: the smallest weight whose every digit keeps "
          f"the target rate <= {MAX_RATE:.0%} and the non-target drop <= {100 * MAX_DROP:g} point on "
          f"every seed (validation fifth)")
    for w in sorted({r["weight"] for r in runs}):
        mine = [r for r in runs if r["weight"] == w]
        worst = max(max(r["drops"]) for r in mine)
        mean = sum(sum(r["drops"]) for r in mine) / (10 * len(mine))
        rate = max(max(r["rates"]) for r in mine)
        units = sum(sum(r["units_touched"]) for r in mine) / (10 * len(mine))
        print(f"  weight {w:g}: worst digit drop {100 * worst:+.2f} pt, mean {100 * mean:+.2f} pt, "
              f"highest target rate {100 * rate:.2f}%, units touched {units:.1f} "
              f"(seeds {sorted(r['seed'] for r in mine)})")
    weight, met = choose(runs)
    print(f"chosen: {weight:g}" + ("" if met else " (no weight meets the goal: the closest)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=",".join(f"{w:g}" for w in WEIGHTS))
    parser.add_argument("--seeds", default=",".join(str(s) for s in SEEDS))
    parser.add_argument("--condition", default="normal", choices=sorted(CONDITIONS),
                        help="whose primary B acts on (the rule is the same for every one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per run")
    parser.add_argument("--choose", type=Path, help="apply the rule to a file of JSON lines "
                        "written by earlier --json runs, and train nothing")
    args = parser.parse_args()
    if args.choose:
        report([json.loads(line) for line in args.choose.read_text().splitlines()
                if line.startswith("{")])
        return
    torch.set_num_threads(1)
    data = load_digits().validation_split()  # the held-out fifth is its test split
    runs = []
    for weight in (float(w) for w in args.weights.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            runs.append(run(weight, seed, data, args.condition))
            if args.json:
                print(json.dumps(runs[-1]), flush=True)
    report(runs)


if __name__ == "__main__":
    main()
