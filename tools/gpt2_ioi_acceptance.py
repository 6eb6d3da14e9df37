"""Acceptance check on the real GPT-2 small: do activation patching's top heads on IOI match the
heads Wang et al. (2023) report?

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
    print("passed" if passed else "FAILED: the top heads are not Wang et al.'s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
