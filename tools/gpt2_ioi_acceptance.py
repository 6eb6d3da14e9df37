"""Acceptance checks on the real GPT-2 small.

1. Do activation patching's top heads on IOI match the heads Wang et al. (2023) report?
2. Does ROME as published (causal tracing for the layer, KL term, norm clamp) make a new
   capital the top next token ("The capital of France is" -> " Rome"), with efficacy 1 and
   the other countries' capitals kept (neighbourhood >= 0.8), and the loss on unrelated text
   up by at most 5%?

Run by the GPU site build (``make gpt2-acceptance``), where GPT-2's weights are downloaded. It
exits 0 after passing, 1 after failing, and 3 (saying why) where the weights are not on disk,
so a machine without them never reports a pass it did not earn.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    from mechinterp.circuits.discovery import discover_task
    from mechinterp.errors import DataError

    try:
        found = discover_task("ioi", "activation", model="gpt2-small", n_prompts=32)
    except DataError as exc:  # DataUnavailableError included
        print(f"not run: GPT-2 small's weights are not on disk here ({exc})")
        return 3
    ref = found.summary()["reference_heads"]
    print(json.dumps(ref, indent=1))
    passed = ref["overlap"] >= 4 * ref["chance"] and len(ref["by_class"]["name mover"]) >= 2
    print("IOI heads: passed" if passed else "IOI heads: FAILED, the top heads are not Wang et "
          "al.'s")
    edited = rome_check()
    return 0 if passed and edited else 1


def rome_check() -> bool:
    """ROME on GPT-2 small: efficacy, neighbourhood and loss of one capital-city edit."""
    from mechinterp.benchmarks import pretrained_before_after
    from mechinterp.interventions.spec import get_intervention, text_model
    from mechinterp.pretrained import _CAPITALS

    subject = text_model("gpt2")
    neighbours = "|".join(f"The capital of {c} is" for c in _CAPITALS if c != "France")
    spec = f"rome:prompt=The capital of France is,subject=France,target=Rome,neighbours={neighbours}"
    result = pretrained_before_after(subject.model, get_intervention(spec, subject))
    before, after = result["before"], result["after"]
    rise = after["loss"] / before["loss"] - 1
    print(json.dumps({"target_rank": [before["target_rank"], after["target_rank"]],
                      "neighbourhood": after["neighbourhood"], "loss_rise": rise}, indent=1))
    passed = after["target_rank"] == 1 and after["neighbourhood"] >= 0.8 and rise <= 0.05
    print("ROME: passed" if passed else "ROME: FAILED")
    return passed


if __name__ == "__main__":
    sys.exit(main())
