"""Training speed: our device-resident loop against a PyTorch-examples-style DataLoader loop.

Both loops train the same registered CNN on the same images (the profile's data source) for
one epoch and then evaluate on the test split, as the PyTorch examples MNIST script does per
epoch. The reference follows that script's data path: a map-style dataset that turns each
uint8 image into a tensor and normalises it on access (``ToTensor`` + ``Normalize``), and a
shuffling ``DataLoader`` with batch 64 for training and 1000 for testing. Ours keeps the
whole data set on the device and slices batches from a shuffled index, with the same batch size
(64) so the number and shape of optimiser steps are identical.

Rounds are interleaved (reference, ours, reference, ours, ...) so that load from other
processes hits both alike; the ratio of medians is printed, together with the accuracy each
loop reached, as a check that both trained the same thing.

With ``--seeds N`` it measures instead what training seeds together buys: ``N`` seeds of the
architecture trained one after another with :func:`mechinterp.train.fit`, against the same
``N`` seeds in one :func:`mechinterp.stacked.fit_stacked` run (same initial weights and batch
orders), one epoch each, interleaved over rounds; it prints the ratio and the largest weight
difference between the two ways (float rounding only). On one CPU thread the arithmetic is the
cost, so expect a ratio near 1; on a GPU small models are launch-bound and it grows with ``N``.

With ``--eval`` it measures how a whole split is evaluated: the training images through the
architecture with a per-image gate on every hidden unit (as SymbioteNet's pages evaluate an
inhibitor), in one forward pass against :meth:`~mechinterp.models.HookedClassifier.run_in_chunks`
(chunks of :data:`~mechinterp.models.EVAL_CHUNK`); it prints the ratio and the largest logit
difference between the two.

    python benchmarks/bench_training.py [--rounds 3] [--arch cnn] [--json]
    python benchmarks/bench_training.py --seeds 5 [--arch simplenn] [--device cuda] [--json]
    python benchmarks/bench_training.py --eval [--arch cnn] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

import mechinterp as mi
from mechinterp.reporting import print_results
from mechinterp.train import TrainConfig, accuracy, fit

TARGET_RATIO = 5.0


class ExamplesStyleMNIST(Dataset):
    """Per-item conversion like ``torchvision.datasets.MNIST`` with ``ToTensor`` + ``Normalize``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        from torchvision import transforms

        self.images = (images.squeeze(1).cpu() * 255).round().to(torch.uint8).numpy()
        self.labels = labels.cpu().tolist()
        self.transform = transforms.Compose([transforms.ToTensor(),
                                             transforms.Normalize((0.0,), (1.0,))])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        img = Image.fromarray(self.images[index], mode="L")
        return self.transform(img), self.labels[index]


def reference_epoch(model, train_set, test_set, lr: float, generator: torch.Generator) -> float:
    """One epoch in the style of the PyTorch examples MNIST script; returns test accuracy."""
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True, generator=generator)
    test_loader = DataLoader(test_set, batch_size=1000)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for data, target in train_loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            correct += (model(data).argmax(1) == target).sum().item()
    return correct / len(test_set)


def our_epoch(model, data, lr: float, generator: torch.Generator) -> float:
    """One epoch of :func:`mechinterp.train.fit` plus evaluation; returns test accuracy."""
    fit(model, data.train_images, data.train_labels,
        TrainConfig(epochs=1, batch_size=64, lr=lr), generator)
    return accuracy(model, data.test_images, data.test_labels)


def bench_seeds(arch: str, n_seeds: int, rounds: int, device: str) -> dict:
    """``n_seeds`` separate fits against one stacked fit of the same seeds, one epoch each."""
    from mechinterp.stacked import fit_stacked

    data = mi.load_digits(device=device)
    config = TrainConfig(epochs=1, batch_size=64, lr=mi.get_profile().lr)
    seeds = list(range(n_seeds))

    def fresh():
        generators, models = [], []
        for s in seeds:
            generators.append(mi.seed_everything(s))
            models.append(mi.build_model(arch).to(data.device))
        return models, generators

    def sync():
        if data.device.type == "cuda":
            torch.cuda.synchronize()

    times: dict[str, list[float]] = {"separate": [], "stacked": []}
    trained = {}
    for _ in range(rounds):
        models, generators = fresh()
        sync()
        started = time.perf_counter()
        for model, generator in zip(models, generators, strict=True):
            fit(model, data.train_images, data.train_labels, config, generator)
        sync()
        times["separate"].append(time.perf_counter() - started)
        trained["separate"] = models
        models, generators = fresh()
        sync()
        started = time.perf_counter()
        fit_stacked(models, data.train_images, data.train_labels, config, generators)
        sync()
        times["stacked"].append(time.perf_counter() - started)
        trained["stacked"] = models
    gap = max((a - b).abs().max().item()
              for m, n in zip(trained["separate"], trained["stacked"], strict=True)
              for a, b in zip(m.state_dict().values(), n.state_dict().values(), strict=True))
    separate, stacked = (statistics.median(times[k]) for k in ("separate", "stacked"))
    return {"benchmark": "seeds_together", "arch": arch, "seeds": n_seeds,
            "device": str(data.device), "threads": torch.get_num_threads(),
            "n_train": data.n_train, "separate_seconds": separate, "stacked_seconds": stacked,
            "ratio": separate / stacked, "largest_weight_difference": gap}


@torch.no_grad()
def bench_eval(arch: str, rounds: int) -> dict:
    """One forward pass over the training split against chunks of ``EVAL_CHUNK`` images, with
    a per-image gate hook on every hidden unit; interleaved rounds, ratio of medians."""
    from mechinterp.models import EVAL_CHUNK
    from mechinterp.symbiote.baselines import gate_hooks

    data = mi.load_digits(device="cpu")
    mi.seed_everything(0)
    model = mi.build_model(arch).eval()
    gates = torch.rand(data.n_train, sum(model.unit_counts().values()),
                       generator=torch.Generator().manual_seed(0)) * 2
    hooks = gate_hooks(model, gates)
    runs = {"one_pass": lambda: model.run_with_hooks(data.train_images, fwd_hooks=hooks),
            "chunked": lambda: model.run_in_chunks(data.train_images, hooks)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    logits = {k: run() for k, run in runs.items()}  # one warm-up each
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    one, chunked = (statistics.median(times[k]) for k in runs)
    return {"benchmark": "split_evaluation", "arch": arch, "images": data.n_train,
            "chunk": EVAL_CHUNK, "threads": torch.get_num_threads(),
            "one_pass_seconds": one, "chunked_seconds": chunked, "ratio": one / chunked,
            "largest_logit_difference": (logits["one_pass"] - logits["chunked"]).abs().max().item()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="training-speed benchmark")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--arch", default="cnn")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seeds", type=int, default=0,
                        help="time this many seeds trained together against one by one")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--eval", action="store_true",
                        help="time evaluating a whole split in one pass against in chunks")
    args = parser.parse_args(argv)

    mi.apply_thread_policy()
    if args.eval:
        print_results([bench_eval(args.arch, args.rounds)], args.json)
        return 0
    if args.seeds:
        result = bench_seeds(args.arch, args.seeds, args.rounds, args.device)
        print_results([result], args.json)
        return 0
    data = mi.load_digits(device="cpu")
    train_set = ExamplesStyleMNIST(data.train_images, data.train_labels)
    test_set = ExamplesStyleMNIST(data.test_images, data.test_labels)
    lr = mi.get_profile().lr
    times = {"reference": [], "ours": []}
    accs = {"reference": [], "ours": []}
    for round_ in range(args.rounds):
        for name in ("reference", "ours"):
            generator = mi.seed_everything(round_)
            model = mi.build_model(args.arch)
            started = time.perf_counter()
            if name == "reference":
                acc = reference_epoch(model, train_set, test_set, lr, generator)
            else:
                acc = our_epoch(model, data, lr, generator)
            times[name].append(time.perf_counter() - started)
            accs[name].append(acc)
    ref, ours = statistics.median(times["reference"]), statistics.median(times["ours"])
    result = {
        "benchmark": "training_speed",
        "arch": args.arch,
        "data_source": data.source,
        "n_train": data.n_train,
        "threads": torch.get_num_threads(),
        "reference_seconds_per_epoch": ref,
        "ours_seconds_per_epoch": ours,
        "ratio": ref / ours,
        "target_ratio": TARGET_RATIO,
        "reference_test_accuracy": statistics.mean(accs["reference"]),
        "ours_test_accuracy": statistics.mean(accs["ours"]),
    }
    print_results([result], args.json)
    if not args.json:
        verdict = "meets" if result["ratio"] >= TARGET_RATIO else "misses"
        print(f"ours is {result['ratio']:.1f}x the reference ({verdict} the {TARGET_RATIO}x target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
