"""SAE-free inference: the folded map of the SAE-free methods against an SAE in the loop.

Method 1 of the SAE-free family (``precomputed_vector_alignment``) fits, offline, a map from
A's SAE encoding to B's SAE codes and folds encoder, map and decoder into one affine map. The
reference runs the same pieces at inference the way an SAE-based injection does: encode A's
features with the SAE (TopK), apply the code map, decode with B's SAE. Both edited recipients
are timed on the test images, interleaved over rounds in one run; the ratio of medians is
printed for the whole edited model and for the mapping step alone, with both models' transfer
and preservation as a check that they do the same job.

    python benchmarks/bench_sae_free.py [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn

import mechinterp as mi
from mechinterp.sae import train_sae
from mechinterp.transfer import TransferContext, model_pair, transfer_metrics
from mechinterp.transfer.common import ConceptLogit, calibrate_threshold, features, ridge_map
from mechinterp.transfer.methods.aligned import DonorScore, first_fc_hook, paired_images
from mechinterp.transfer.methods.sae_free import BASE_SAE, fold_code_map


class SAEInTheLoop(nn.Module):
    """Encode with A's SAE (TopK), map the codes, decode with B's SAE, at every call."""

    def __init__(self, sae_a, code_w, code_b, sae_b) -> None:
        super().__init__()
        self.sae_a, self.sae_b = sae_a, sae_b
        self.register_buffer("code_w", code_w)
        self.register_buffer("code_b", code_b)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.sae_b.decode(self.sae_a.encode(h) @ self.code_w + self.code_b)


def build(ctx: TransferContext):
    """Both variants of the edited recipient, from one fit."""
    hook_a, hook_b = first_fc_hook(ctx.recipient), first_fc_hook(ctx.donor)
    images, _ = paired_images(ctx)
    fa, fb = features(ctx.recipient, images, hook_a), features(ctx.donor, images, hook_b)
    sae_a, sae_b = train_sae(fa, BASE_SAE, seed=0), train_sae(fb, BASE_SAE, seed=0)
    with torch.no_grad():
        codes_a, codes_b = sae_a.encode(fa), sae_b.encode(fb)
    code_w, code_b = ridge_map(codes_a, codes_b)
    # the folded map is fit on the linear encoding, as the method does
    with torch.no_grad():
        pre_a = fa @ sae_a.W_enc.T + (sae_a.b_enc - sae_a.b_dec @ sae_a.W_enc.T)
    pre_w, pre_b = ridge_map(pre_a, codes_b)
    mappers = {"sae_free": fold_code_map(sae_a, pre_w, pre_b, sae_b),
               "sae_in_loop": SAEInTheLoop(sae_a, code_w, code_b, sae_b)}
    own, _ = ctx.own_data()
    models = {}
    for name, mapper in mappers.items():
        scorer = DonorScore(ctx.recipient, hook_a, ctx.donor, hook_b, mapper,
                            ctx.protocol.concept, ctx.protocol.donor_digits)
        with torch.no_grad():
            threshold = calibrate_threshold(scorer(own), 0.005)
        models[name] = ConceptLogit(ctx.recipient, ctx.protocol.concept, scorer, threshold).eval()
    return models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SAE-free inference benchmark")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    mi.apply_thread_policy()
    pair = model_pair("megann", "megann", seed=0)
    models = build(TransferContext(pair))
    images = pair.data.test_images
    times = {name: [] for name in models}
    with torch.no_grad():
        for _ in range(args.rounds):
            for name, model in models.items():
                started = time.perf_counter()
                for i in range(0, len(images), 64):  # batches of 64, as a served model sees
                    model(images[i: i + 64])
                times[name].append(time.perf_counter() - started)
    free, loop = statistics.median(times["sae_free"]), statistics.median(times["sae_in_loop"])
    # the mapping step alone, on A's first-layer features
    feats = features(pair.recipient.model, images, first_fc_hook(pair.recipient.model))
    map_times = {name: [] for name in models}
    with torch.no_grad():
        for _ in range(args.rounds):
            for name, model in models.items():
                mapper = model.scorer.mapper
                started = time.perf_counter()
                for _ in range(20):
                    for i in range(0, len(feats), 64):
                        mapper(feats[i: i + 64])
                map_times[name].append(time.perf_counter() - started)
    map_free = statistics.median(map_times["sae_free"])
    map_loop = statistics.median(map_times["sae_in_loop"])
    result = {
        "benchmark": "sae_free_inference",
        "pair": "megann <- megann",
        "n_images": len(images),
        "sae_free_seconds": free,
        "sae_in_loop_seconds": loop,
        "speedup": loop / free,
        "map_only_sae_free_seconds": map_free,
        "map_only_sae_in_loop_seconds": map_loop,
        "map_only_speedup": map_loop / map_free,
        **{f"{name}.{k}": v for name, model in models.items()
           for k, v in transfer_metrics(model, pair.data, pair.protocol).items()},
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:36s} {value:.4g}" if isinstance(value, float) else f"{key:36s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
