"""Choose the selectivity penalty of SymbioteNet's polysemantic primary on validation data.

The polysemantic condition trains the normal CNN with a penalty on its hidden units' class
selectivity (:class:`mechinterp.train.TrainConfig.selectivity_penalty`). How strong a penalty
is chosen by a rule fixed before the sweep:

    the largest penalty in PENALTIES whose mean validation accuracy over SEEDS is at most
    MARGIN below the unpenalised CNN's (so the two primaries' test accuracies can be expected
    within a point of each other).

Validation images are a fixed fifth of the training split; every candidate is trained on the
other four fifths and never sees the test split. The chosen value is what
:data:`mechinterp.symbiote.experiment.SELECTIVITY_PENALTY` holds; rerun this after changing
the model, the profile or the training loop, and update the constant with what it prints.

Run: ``python tools/choose_selectivity_penalty.py [--json]`` (quick profile: about two minutes
on one core).
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from mechinterp.config import get_profile, seed_everything
from mechinterp.data import load_digits
from mechinterp.models import build_model
from mechinterp.symbiote.experiment import polysemanticity
from mechinterp.train import TrainConfig, accuracy, fit

PENALTIES = (0.0, 0.1, 0.3, 1.0, 3.0)
SEEDS = (0, 1, 2)
MARGIN = 0.005
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object per run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    part = load_digits().validation_split()
    results: dict[float, list[dict[str, float]]] = {}
    for penalty in PENALTIES:
        config = TrainConfig.from_profile(selectivity_penalty=penalty)
        for seed in SEEDS:
            generator = seed_everything(seed)
            model = build_model("cnn").to(part.device)
            fit(model, part.train_images, part.train_labels, config, generator,
                desc=f"penalty {penalty}, seed {seed}")
            run = {"penalty": penalty, "seed": seed,
                   "validation_accuracy": accuracy(model, part.test_images, part.test_labels),
                   "classes_per_unit": polysemanticity(model, part)["polysemanticity"]}
            results.setdefault(penalty, []).append(run)
            if args.json:
                print(json.dumps(run), flush=True)
    reference = statistics.mean(r["validation_accuracy"] for r in results[0.0])
    chosen = 0.0
    print(f"profile {get_profile().name}, {part.n_test} validation images; rule: the "
          f"largest penalty within {MARGIN:.1%} of the unpenalised validation accuracy")
    for penalty, runs in results.items():
        acc = statistics.mean(r["validation_accuracy"] for r in runs)
        count = statistics.mean(r["classes_per_unit"] for r in runs)
        ok = acc >= reference - MARGIN
        if ok:
            chosen = max(chosen, penalty)
        print(f"penalty {penalty:>4}: validation accuracy {acc:.4f} "
              f"({acc - reference:+.2%}), classes per unit {count:.2f}"
              f"{'' if ok else '  (outside the margin)'}")
    print(f"chosen selectivity penalty: {chosen}")


if __name__ == "__main__":
    main()
