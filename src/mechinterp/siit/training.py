"""Strict interchange-intervention training (SIIT) of benchmark transformers, and their cache.

Each model gets an *alignment*: every node of the task's causal model is assigned one
component (a head or an MLP, drawn from the model's seed under the ordering the causal graph
implies). Training minimises three cross-entropies at the last position (InterpBench, Gupta et
al., 2024):

* **behaviour**: the task's answer on the base input;
* **interchange (IIT)**: with one circuit node's component given its activation from a paired
  source input, the answer the causal model gives under the same interchange;
* **strictness (SIIT)**: with non-circuit components resampled from an unrelated input (all of
  them at once in a share ``all_at_once`` of the rows, each independently with probability
  ``resample_prob`` in the others), the base answer: components outside the circuit must not matter for the task.

So the circuit is known by construction: the aligned components and, as edges, the causal
graph's edges between them (with ``embed`` for the input and ``logits`` for the output). It is
then checked causally on held-out inputs (:mod:`mechinterp.siit.verify`), through hooks on the
``TransformerBridge`` the weights are handed to, not through the code that trained them.

Seeds train together (:class:`~mechinterp.siit.model.StackedTransformer`): on one CPU core,
three small models cost little more than one. Each seed is cached on its own.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformer_lens import TransformerBridge

from mechinterp import __version__
from mechinterp.checkpoints import (
    cache_lock,
    checkpoint_key,
    checkpoint_paths,
    load_checkpoint,
    save_checkpoint,
    source_digest,
)
from mechinterp.circuits.scoring import CircuitTruth
from mechinterp.config import get_device, get_profile
from mechinterp.errors import ConfigError
from mechinterp.siit.model import (
    SIITArch,
    StackedTransformer,
    component_names,
    from_bridges,
    to_bridge,
)
from mechinterp.siit.tasks import SIITTask, get_siit_task, siit_tokenizer
from mechinterp.train import progress_enabled

__all__ = ["SIITConfig", "SIITModel", "draw_alignment", "load_siit_models", "train_siit"]


@dataclass(frozen=True)
class SIITConfig:
    """How a benchmark model is trained.

    Attributes:
        steps: optimiser steps (quick profile); full_steps: on the full profile.
        batch_size: rows per loss term per step.
        lr: AdamW learning rate (linear warm-up, cosine decay).
        behaviour_weight, iit_weight, strict_weight: weights of the three losses
            (``strict_weight=0`` is plain IIT, whose circuit is not guaranteed to be the
            only one: the benchmark's negative control).
        resample_prob: chance that each non-circuit component is resampled in a strictness row
            that resamples components independently.
        all_at_once: share of strictness rows that resample every non-circuit component.
        weight_decay: AdamW weight decay.
    """

    steps: int = 600
    full_steps: int = 2000
    batch_size: int = 64
    lr: float = 3e-3
    behaviour_weight: float = 1.0
    iit_weight: float = 1.0
    strict_weight: float = 1.0
    resample_prob: float = 0.5
    all_at_once: float = 0.25
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        for name in ("steps", "full_steps", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"SIITConfig.{name} must be a positive integer, got {value!r}")
        for name in ("lr", "behaviour_weight", "iit_weight", "strict_weight", "weight_decay"):
            if getattr(self, name) < 0:
                raise ConfigError(f"SIITConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("resample_prob", "all_at_once"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"SIITConfig.{name} must lie in [0, 1], got "
                                  f"{getattr(self, name)}")


@dataclass
class SIITModel:
    """A trained benchmark model and what is known about it by construction.

    Attributes:
        task: the task's name.
        seed: the model's seed (initialisation, alignment, data).
        model: the ``TransformerBridge`` (eval mode).
        alignment: causal node -> component (``L2.H1``, ``L3.mlp``).
        meta: the checkpoint sidecar (training losses, config, seconds...).
    """

    task: str
    seed: int
    model: TransformerBridge
    alignment: dict[str, str]
    meta: dict[str, Any]

    @property
    def circuit_nodes(self) -> set[str]:
        """The components aligned with a causal node."""
        return set(self.alignment.values())

    @property
    def circuit_edges(self) -> set[tuple[str, str]]:
        """``(writer, reader)`` component pairs of the causal graph's edges."""
        node = {**self.alignment, "embed": "embed", "logits": "logits"}
        return {(node[a], node[b]) for a, b in get_siit_task(self.task).model.edges}

    def truth(self) -> CircuitTruth:
        """The ground truth for scoring discovery methods on this model."""
        return CircuitTruth(frozenset(self.circuit_nodes),
                            frozenset(f"{w} -> {r}" for w, r in self.circuit_edges), "siit")


def _layer(component: str) -> int:
    return int(component.split(".")[0][1:])


def draw_alignment(task: SIITTask, arch: SIITArch, seed: int) -> dict[str, str]:
    """Assign each causal node a distinct component, drawn from ``seed``.

    A head must sit in a later layer than every node it reads (heads of one layer cannot read
    each other); an MLP in the same layer or later.
    """
    g = torch.Generator().manual_seed(10_000 + seed)
    for _ in range(10_000):
        out: dict[str, str] = {}
        for spec in task.node_specs:
            layer = int(torch.randint(arch.n_layers, (1,), generator=g))
            if spec.kind == "head":
                out[spec.name] = f"L{layer}.H{int(torch.randint(arch.n_heads, (1,), generator=g))}"
            else:
                out[spec.name] = f"L{layer}.mlp"
        if len(set(out.values())) < len(out):
            continue
        ok = True
        for node in task.model.nodes.values():
            for parent in node.parents:
                if parent == "embed":
                    continue
                gap = _layer(out[node.name]) - _layer(out[parent])
                ok &= gap >= (1 if ".H" in out[node.name] else 0)
        if ok:
            return out
    raise ConfigError(f"no alignment of {task.name} fits {arch.n_layers} layers")


def _mask_for(alignment: dict[str, str], names: list[str], rows: list[str | None]) -> torch.Tensor:
    """``(n_components, batch)``: 1 where row i replaces the component of node rows[i]."""
    index = {c: i for i, c in enumerate(names)}
    mask = torch.zeros(len(names), len(rows))
    for i, node in enumerate(rows):
        if node is not None:
            mask[index[alignment[node]], i] = 1
    return mask


def train_siit(task: SIITTask, seeds: list[int], *, arch: SIITArch | None = None,
               config: SIITConfig | None = None, steps: int | None = None
               ) -> tuple[list[TransformerBridge], list[dict[str, str]], dict[str, Any]]:
    """Train one model per seed, together. Returns bridges, alignments and training logs."""
    arch = arch or default_arch(task)
    config = config or SIITConfig()
    steps = steps or config.steps
    device = get_device()
    bridges = [TransformerBridge.boot_native(arch.bridge_config(s, task.name), device=device)
               for s in seeds]
    net = StackedTransformer(arch, from_bridges(bridges)).to(device)
    alignments = [draw_alignment(task, arch, s) for s in seeds]
    names = component_names(arch)
    circuit = [set(a.values()) for a in alignments]
    others = torch.tensor([[c not in circ for c in names] for circ in circuit], dtype=torch.float)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    nodes = task.model.node_names
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / warmup) * 0.5
                                              * (1 + torch.cos(torch.tensor(torch.pi * i / steps))
                                                 .item()))
    n, b = len(seeds), config.batch_size
    log: dict[str, list[float]] = {"behaviour": [], "iit": [], "strict": []}
    started = time.perf_counter()
    for step in tqdm(range(steps), desc=f"SIIT {task.name} seeds {seeds}",
                     disable=not progress_enabled(), leave=False):
        base, paired, indep, labels, masks = [], [], [], [], []
        for i, g in enumerate(gens):
            x = task.sample(b, g)
            p = task.paired_source(x, g)
            r = task.sample(b, g)
            which = [nodes[j] for j in torch.randint(len(nodes), (b,), generator=g).tolist()]
            y_base = task.model.label(x)
            y_iit = task.model.interchange_rows(x, p, which)
            # some strictness rows resample every non-circuit component at once (else copies
            # of the answer spread over several of them survive any single resample), the
            # others resample each one independently
            strict = (torch.rand(len(names), b, generator=g) < config.resample_prob).float()
            strict[:, : round(b * config.all_at_once)] = 1
            strict = strict * others[i][:, None]
            base.append(torch.cat([x, x, x]))
            paired.append(p)
            indep.append(r)
            labels.append(torch.cat([y_base, y_iit, y_base]))
            masks.append(torch.cat([torch.zeros(len(names), b),
                                    _mask_for(alignments[i], names, which), strict], 1))
        base_t, labels_t = torch.stack(base).to(device), torch.stack(labels).to(device)
        with torch.no_grad():
            _, acts = net(torch.cat([torch.stack(paired), torch.stack(indep)], 1).to(device),
                          keep=True)
        # behaviour rows take nothing; the patch values are just placeholders for them
        patch = {k: torch.cat([v[:, :, :b], v[:, :, :b], v[:, :, b:]], 2) for k, v in acts.items()}
        logits, _ = net(base_t, patch, torch.stack(masks).to(device))
        losses = F.cross_entropy(logits[:, :, -1].reshape(-1, arch.d_vocab), labels_t.reshape(-1),
                                 reduction="none").view(n, 3, b).mean((0, 2))
        total = (config.behaviour_weight * losses[0] + config.iit_weight * losses[1]
                 + config.strict_weight * losses[2])
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 25 == 0 or step == steps - 1:
            for key, value in zip(log, losses.tolist(), strict=True):
                log[key].append(round(value, 5))
    weights = {k: v.detach() for k, v in net.w.items()}
    out = [to_bridge(weights, i, br).eval() for i, br in enumerate(bridges)]
    return out, alignments, {"losses": log, "train_seconds": time.perf_counter() - started,
                             "steps": steps, "trained_with": list(seeds)}


def default_arch(task: SIITTask) -> SIITArch:
    """The benchmark shape: 4 layers, 4 heads, MLPs, the SIIT vocabulary."""
    return SIITArch(n_ctx=task.n_ctx, d_vocab=len(siit_tokenizer()))


def _run_spec(task: SIITTask, seed: int, arch: SIITArch, config: SIITConfig, steps: int) -> dict:
    return {"task": task.name, "seed": seed, "arch": asdict(arch), "config": asdict(config),
            "steps": steps, "code": __version__,
            "source": source_digest("siit.causal", "siit.tasks", "siit.model", "siit.training")}


def load_siit_models(task: str, seeds: list[int] | tuple[int, ...] | None = None, *,
                     config: SIITConfig | None = None, retrain: bool = False
                     ) -> list[SIITModel]:
    """The SIIT benchmark models of ``task``, one per seed, trained once and then cached.

    Seeds missing from the cache are trained together. A seed's weights can differ in the
    last float bits with the group it was trained in; its alignment and data do not.

    Args:
        task: a name in :data:`mechinterp.siit.SIIT_TASKS`.
        seeds: model seeds (default: the profile's seeds).
        config: training settings (default :class:`SIITConfig`).
        retrain: ignore cached entries.
    """
    spec = get_siit_task(task)
    seeds = list(get_profile().seeds if seeds is None else seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct and at least one, got {seeds}")
    config = config or SIITConfig()
    arch = default_arch(spec)
    steps = config.full_steps if get_profile().name == "full" else config.steps
    device = get_device()
    runs = {s: _run_spec(spec, s, arch, config, steps) for s in seeds}
    keys = {s: checkpoint_key(r) for s, r in runs.items()}
    found: dict[int, SIITModel] = {}
    with cache_lock("siit-models", checkpoint_key([task, sorted(keys.values())])):
        for s in seeds:
            bridge = TransformerBridge.boot_native(arch.bridge_config(s, spec.name), device=device)
            params = dict(bridge.named_parameters())
            hit = None if retrain else load_checkpoint(
                *checkpoint_paths("siit-models", keys[s]), keys[s],
                {k: tuple(v.shape) for k, v in params.items()})
            if hit is not None:
                with torch.no_grad():
                    for name, param in params.items():
                        param.copy_(hit[0][name])
                found[s] = SIITModel(task, s, bridge.eval(), hit[1]["alignment"], hit[1])
        missing = [s for s in seeds if s not in found]
        if missing:
            bridges, alignments, logs = train_siit(spec, missing, arch=arch, config=config,
                                                   steps=steps)
            for s, bridge, alignment in zip(missing, bridges, alignments, strict=True):
                meta = {**runs[s], **logs, "key": keys[s], "alignment": alignment,
                        "profile": get_profile().name, "device": str(device)}
                save_checkpoint(dict(bridge.named_parameters()), meta,
                                *checkpoint_paths("siit-models", keys[s]))
                found[s] = SIITModel(task, s, bridge, alignment, meta)
    return [found[s] for s in seeds]
