"""The ``mechinterp`` command line.

Each subcommand prints one JSON object with ``--json`` (progress bars go to stderr), and turns a
bad input into a one-line error on stderr with exit status 2.

Examples::

    mechinterp train --arch megann --digits 0-3 --json
    mechinterp symbiote --digit 3 --condition polysemantic --json
    mechinterp transfer --method aligned_spatial --source-arch deepnn --target-arch widenn --json
    mechinterp discover-circuits --task induction --method acdc --out circuit.json --json
    mechinterp benchmark --intervention toxicity-steer --json
    mechinterp models
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["main", "build_parser"]


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=None, sort_keys=True))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")


def _cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from mechinterp.train import TrainConfig, train_classifier

    overrides = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    config = TrainConfig.from_profile(**overrides)
    trained = train_classifier(args.arch, args.digits, seed=args.seed, source=args.source,
                               config=config, retrain=args.retrain)
    return trained.summary()


def _cmd_symbiote(args: argparse.Namespace) -> dict[str, Any]:
    from mechinterp.symbiote import SymbioteConfig, inhibit_digit

    config = SymbioteConfig() if args.steps is None else SymbioteConfig(steps=args.steps)
    return inhibit_digit(args.digit, args.condition, source=args.source, seed=args.seed,
                         config=config, kind=args.symbiote)


def _cmd_transfer(args: argparse.Namespace) -> dict[str, Any]:
    from mechinterp.errors import ConfigError
    from mechinterp.transfer import METHODS, TransferProtocol, list_methods, run_method

    if args.list:
        return {name: {"title": METHODS[name].title, "kind": METHODS[name].kind,
                       "changes": METHODS[name].changes, "requires": METHODS[name].requires,
                       "teaches_specificity": METHODS[name].teaches_specificity}
                for name in list_methods()}
    if not args.method:
        raise ConfigError("--method is required (see 'mechinterp transfer --list')")
    protocol = TransferProtocol(concept=args.concept, recipient_digits=args.recipient_digits,
                                donor_digits=args.donor_digits,
                                specificity_digit=args.specificity_digit, gate=args.gate)
    # the concept moves from the source (donor B) to the target (recipient A)
    return run_method(args.method, args.target_arch, args.source_arch, protocol, seed=args.seed,
                      source=args.source, concept_budget=args.concept_budget)


def _cmd_discover(args: argparse.Namespace) -> dict[str, Any]:
    from mechinterp.circuits.baselines import BASELINES
    from mechinterp.circuits.discovery import (
        DEFAULT_THRESHOLDS,
        DISCOVERY_METHODS,
        PRETRAINED_MODELS,
        TASK_MODELS,
        discover_task,
    )
    from mechinterp.errors import ConfigError
    from mechinterp.siit import SIIT_TASKS
    from mechinterp.toyworld import TASKS, TOY_MODELS

    if args.list:
        siit = {t: {"ground_truth": "siit", "description": s.description,
                    "nodes": s.model.node_names, "model": "4 layers x 4 heads with MLPs, "
                    "SIIT-trained per seed"} for t, s in SIIT_TASKS.items()}
        toy = {t: {"default_model": TASK_MODELS[t], "ground_truth": None} for t in sorted(TASKS)}
        return {"tasks": siit | toy,
                "models": {n: {"layers": s.n_layers, "heads": s.n_heads,
                               "attn_only": s.attn_only, "tasks": sorted(s.mixture)}
                           for n, s in TOY_MODELS.items()},
                "pretrained": {"models": list(PRETRAINED_MODELS),
                               "note": "needs the network once, or a folder saved with "
                                       "save_pretrained; no ground truth, so roc_auc is null"},
                "methods": {m: {"default_threshold": DEFAULT_THRESHOLDS[m]}
                            for m in DISCOVERY_METHODS}
                | {b: {"baseline": True, "default_threshold": None} for b in BASELINES}}
    if not args.task or not args.method:
        raise ConfigError("--task and --method are required (see 'mechinterp discover-circuits "
                          "--list')")
    found = discover_task(args.task, args.method, model=args.model, n_prompts=args.n_prompts,
                          prompt_seed=args.prompt_seed, model_seed=args.seed,
                          threshold=args.threshold, metric=args.metric)
    result = found.summary()
    if args.out:
        found.circuit.to_json(args.out)
        result["out"] = args.out
    return result


def _headline(results: dict[str, Any]) -> dict[str, Any]:
    """The four numbers the benchmark command prints per block (plus edit scores)."""
    from mechinterp.benchmarks import summary

    numbers = summary(results)
    keep = ("toxicity", "factual_recall", "bias_gap", "loss", "efficacy", "paraphrase",
            "neighbourhood")
    return {k: numbers[k] for k in keep if k in numbers}


def _pretrained_headline(results: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a pretrained model, with a prompt edit's report (``None``
    where there is none)."""
    return {**_headline(results),
            **{k: results.get(k) for k in ("target_probability", "target_rank",
                                            "neighbourhood")}}


def _cmd_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    import time

    from mechinterp.benchmarks import before_after, run_pretrained_suite, run_suite
    from mechinterp.errors import ConfigError
    from mechinterp.interventions import SPEC_KINDS, get_intervention, list_interventions
    from mechinterp.toyworld import TOY_MODELS, load_toy_model

    if args.list:
        return {"interventions": list_interventions(), "spec_kinds": list(SPEC_KINDS),
                "models": sorted(n for n, s in TOY_MODELS.items() if not s.attn_only)
                + ["gpt2 (online) or a folder holding a saved model"]}
    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, got {args.n}")
    if args.intervention is not None:  # a malformed spec fails before any model is loaded
        from mechinterp.interventions.ready import READY_MADE
        from mechinterp.interventions.spec import parse_spec

        if ":" in args.intervention:
            parse_spec(args.intervention)
        elif args.intervention not in READY_MADE:
            raise ConfigError(f"unknown intervention {args.intervention!r}; ready-made: "
                              f"{sorted(READY_MADE)} (or a spec 'kind:key=value,...', see "
                              "'mechinterp benchmark --list')")
    started = time.perf_counter()
    if args.model in TOY_MODELS:
        if TOY_MODELS[args.model].attn_only:
            raise ConfigError(f"model {args.model!r} is attention-only and trained on induction "
                              "only; the benchmark needs a model trained on the whole mixture "
                              "(toyworld-2l)")
        toy = load_toy_model(args.model, seed=args.seed)
        if args.intervention is None:
            before = run_suite(toy.model, toy.tokenizer, toy.spec, n=args.n)
            return {"model": args.model, "intervention": None, "before": _headline(before),
                    "after": None, "seconds": time.perf_counter() - started}
        intervention = get_intervention(args.intervention, toy)
        result = before_after(toy, intervention, n=args.n)
    else:
        from mechinterp.benchmarks import pretrained_before_after
        from mechinterp.interventions.spec import text_model

        subject = text_model(args.model)
        if args.intervention is None:
            before = run_pretrained_suite(subject.model)
            return {"model": args.model, "intervention": None,
                    "before": _pretrained_headline(before), "after": None,
                    "seconds": time.perf_counter() - started}
        intervention = get_intervention(args.intervention, subject)
        result = pretrained_before_after(subject.model, intervention)
        return {"model": args.model, "intervention": args.intervention,
                "kind": intervention.kind,
                "before": _pretrained_headline(result["before"]),
                "after": _pretrained_headline(result["after"]),
                "seconds": time.perf_counter() - started}
    return {"model": args.model, "intervention": args.intervention, "kind": result["kind"],
            "fact": result["fact"], "before": _headline(result["before"]),
            "after": _headline(result["after"]),
            "change": {k: v for k, v in result["change"].items()
                       if k in _headline(result["after"])},
            "seconds": time.perf_counter() - started}


def _cmd_self_report(args: argparse.Namespace) -> dict[str, Any]:
    from mechinterp.selfreport.pipeline import cli_command

    return cli_command(args)


def _cmd_models(args: argparse.Namespace) -> dict[str, Any]:
    from mechinterp.models import MODEL_REGISTRY, build_model

    return {
        name: {"description": spec.description, "parameters": build_model(name).n_parameters()}
        for name, spec in sorted(MODEL_REGISTRY.items())
    }


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="mechinterp",
        description="Mechanistic interpretability: symbiotic networks, concept transfer and "
        "transformer circuits.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a classifier on some digits (or load it from cache)")
    train.add_argument("--arch", required=True, help="architecture name (see 'mechinterp models')")
    train.add_argument("--digits", default=None, help="classes to train on, e.g. 0-3 or 0,2,5")
    train.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    train.add_argument("--source", default=None,
                       help="data source: mnist, mnist-5k or a folder of idx files")
    train.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    train.add_argument("--retrain", action="store_true", help="ignore the cache and train again")
    train.add_argument("--json", action="store_true", help="print one JSON object")
    train.set_defaults(func=_cmd_train)

    symbiote = sub.add_parser(
        "symbiote", help="train a symbiote that inhibits one class of a primary CNN and "
        "compare it with baselines")
    symbiote.add_argument("--digit", type=int, required=True, help="the class to inhibit")
    symbiote.add_argument("--condition", choices=["normal", "polysemantic", "mixed", "narrow"],
                          default="normal",
                          help="the primary: the normal CNN; the same CNN trained with a "
                          "penalty on its units' class selectivity (polysemantic: same "
                          "accuracy, each unit answers to more digits); the normal CNN read in "
                          "a random basis (mixed: same function, every unit a mixture); or a "
                          "narrow CNN whose few units must share digits (narrow: less accurate; "
                          "the polysemantic condition of earlier releases). The JSON's "
                          "polysemanticity is the mean number of digits a hidden unit answers "
                          "to; class_entropy is the per-unit entropy reported before")
    symbiote.add_argument("--source", default=None,
                          help="data source: mnist, mnist-5k or a folder of idx files")
    symbiote.add_argument("--symbiote", choices=["fixed", "conditional"], default="fixed",
                          help="fixed: B reads the class only (one edit per class); "
                          "conditional: B also reads A's first-layer activations and gates "
                          "each image")
    symbiote.add_argument("--seed", type=int, default=0, help="seed of the symbiote")
    symbiote.add_argument("--steps", type=int, default=None,
                          help="training steps of the symbiote (default 1500)")
    symbiote.add_argument("--json", action="store_true", help="print one JSON object")
    symbiote.set_defaults(func=_cmd_symbiote)

    transfer = sub.add_parser("transfer", help="move a concept digit from a donor model into a "
                              "recipient with one method, and measure it")
    transfer.add_argument("--list", action="store_true", help="list the methods and exit")
    transfer.add_argument("--method", help="method name (see --list)")
    transfer.add_argument("--source-arch", default="megann",
                          help="architecture of the donor B, the source of the concept")
    transfer.add_argument("--target-arch", default="megann",
                          help="architecture of the recipient A, the target of the transfer")
    transfer.add_argument("--concept", type=int, default=4, help="the digit to transfer")
    transfer.add_argument("--recipient-digits", default="0-3", help="digits A is trained on")
    transfer.add_argument("--donor-digits", default="2-5", help="digits B is trained on")
    transfer.add_argument("--specificity-digit", type=int, default=5,
                          help="a digit new to A that it must not start calling the concept "
                               "(held out from every method)")
    transfer.add_argument("--gate", choices=("closed-set", "open-set"), default="open-set",
                          help="how a detector's score meets A's own answer before the "
                               "threshold (see the protocol page)")
    transfer.add_argument("--concept-budget", type=int, default=None,
                          help="most concept images the method may use (default: all)")
    transfer.add_argument("--source", default=None,
                          help="data source: mnist, mnist-5k or a folder of idx files")
    transfer.add_argument("--seed", type=int, default=0, help="seed of both models")
    transfer.add_argument("--json", action="store_true", help="print one JSON object")
    transfer.set_defaults(func=_cmd_transfer)

    discover = sub.add_parser(
        "discover-circuits", help="find the circuit behind a task with one method, score it "
        "against the circuit a SIIT model was built to have, and export it")
    discover.add_argument("--list", action="store_true",
                          help="list the tasks, models and methods and exit")
    discover.add_argument("--task", help="a SIIT task (siit-induction, siit-ioi, siit-histogram: "
                          "ground truth by construction) or a toy-world task (see --list)")
    discover.add_argument("--method", help="activation, attribution, eap, eap-ig, acdc, or a "
                          "baseline: random, weight_norm, attention")
    discover.add_argument("--model", default=None,
                          help="for a toy-world task: the toy-world model (default: the one "
                          "trained for it), gpt2 (gpt2-small), or a folder holding a saved "
                          "pretrained model")
    discover.add_argument("--threshold", type=float, default=None,
                          help="where the circuit is cut (default per method, see --list)")
    discover.add_argument("--metric", default="logit_diff", help="logit_diff (default) or kl")
    discover.add_argument("--n-prompts", type=int, default=64,
                          help="clean/corrupted prompt pairs (default 64)")
    discover.add_argument("--prompt-seed", type=int, default=1, help="seed of the prompts")
    discover.add_argument("--seed", type=int, default=0, help="training seed of the model")
    discover.add_argument("--out", default=None, help="write the circuit as JSON to this file")
    discover.add_argument("--json", action="store_true", help="print one JSON object")
    discover.set_defaults(func=_cmd_discover)

    bench = sub.add_parser(
        "benchmark", help="toxicity, factual recall, bias gap and held-out loss of a model, "
        "before and after an intervention")
    bench.add_argument("--list", action="store_true",
                       help="list the ready-made interventions and spec kinds and exit")
    bench.add_argument("--model", default="toyworld-2l",
                       help="toy-world model (default toyworld-2l), gpt2, or a saved model folder")
    bench.add_argument("--intervention", default=None,
                       help="a ready-made name (see --list) or 'kind:key=value,...'")
    bench.add_argument("--n", type=int, default=600,
                       help="sampled continuations per prompt kind for the toxicity rate")
    bench.add_argument("--seed", type=int, default=0, help="training seed of the toy model")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(func=_cmd_benchmark)

    report = sub.add_parser(
        "self-report", help="fine-tune a model to report its own MLP neurons and score it "
        "against baselines (scan -> dataset -> train -> evaluate)")
    report.add_argument("--config", default=None, help="JSON config file (default: defaults)")
    report.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override one config field (VALUE is read as JSON when it parses, "
                        "else as text); repeatable")
    report.add_argument("--retrain", action="store_true", help="ignore cached predictors")
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.set_defaults(func=_cmd_self_report)

    models = sub.add_parser("models", help="list the registered architectures")
    models.add_argument("--json", action="store_true", help="print one JSON object")
    models.set_defaults(func=_cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from mechinterp.errors import MechinterpError

    func: Callable[[argparse.Namespace], dict[str, Any]] = args.func
    try:
        result = func(args)
    except MechinterpError as exc:
        print(f"mechinterp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mechinterp {args.command}: interrupted; finished work is cached", file=sys.stderr)
        return 130
    _print_result(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
