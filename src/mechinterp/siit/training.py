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

Two further terms keep the circuit from showing where no discovery method should look. The
components outside the circuit learn distractor jobs (:mod:`mechinterp.siit.distractors`), so
they are as busy as the circuit's; and every head's OV matrix and every MLP's output matrix is
projected back to one fixed norm after each step, so that the weights do not tell which
components the task uses (without this, the circuit is simply the set of components that
training grew, and a data-free weight-norm ranking finds it).

Seeds train together (:class:`~mechinterp.siit.model.StackedTransformer`), and each seed is
cached on its own. Training the benchmark's fifteen models (with the negative control and the
record of the busy-setting attempts) takes about three hours of one CPU core, more than
a site build can spend, so they ship with the package (like InterpBench's models): :func:`load_siit_models` takes a shipped model whose key (task, seed, shape, training
settings, :data:`BENCHMARK_VERSION`) matches, and every build re-checks it causally
(:mod:`mechinterp.siit.verify`). ``make siit-models`` (:func:`ship_models`) retrains them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
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
)
from mechinterp.circuits.scoring import CircuitTruth
from mechinterp.config import get_device, get_profile, require_positive_ints
from mechinterp.errors import ConfigError
from mechinterp.siit.distractors import distractor_loss, draw_distractor_jobs
from mechinterp.siit.model import (
    SIITArch,
    StackedTransformer,
    component_names,
    from_bridges,
    to_bridge,
)
from mechinterp.siit.tasks import IGNORE, SIITTask, get_siit_task, siit_tokenizer
from mechinterp.train import progress_enabled

__all__ = ["SIITConfig", "SIITModel", "draw_alignment", "load_siit_models", "train_siit",
           "ship_models", "task_config", "strictness_control", "busy_attempt", "SIIT_SEEDS",
           "TASK_CONFIGS", "BUSY",
           "BENCHMARK_VERSION", "MIN_VERIFIED", "CONTROL"]


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
        freeze_others: keep non-circuit heads and MLPs at their random initial weights (they
            still write into the residual stream; strictness teaches the circuit to ignore
            them).
        other_scale: multiply the initial weight matrices of non-circuit heads and MLPs by
            this, so that they start at the size circuit components reach in training (a
            component's weight norm should not give away whether it is in the circuit).
        distractor_weight: weight of the non-circuit components' distractor jobs
            (:mod:`mechinterp.siit.distractors`); 0 leaves them without one.
        distractor_rank: the distractor probes read a fixed random subspace of this many
            residual dimensions (0: all of them; see
            :func:`~mechinterp.siit.distractors.draw_distractor_jobs`).
        head_norm, mlp_norm: after every step, rescale each head's output matrix so that
            its OV matrix ``W_V W_O`` has this Frobenius norm, and each MLP's ``W_out`` to
            ``mlp_norm`` (0: no constraint). Every component then has the same weight norm,
            so weights alone cannot tell circuit from non-circuit.
        unembed_norm: after every step, rescale the unembedding to this Frobenius norm (0: no
            constraint). The final layer norm's scale is free to make up for it, so this
            changes nothing the model can compute; it only keeps the unembedding's norm from
            standing out next to the components'.
        norm_ramp: share of the steps over which the held norms rise linearly from a quarter
            of ``head_norm`` / ``mlp_norm`` to their full value (0: held at full value from the
            start).
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
    freeze_others: bool = False
    other_scale: float = 1.0
    distractor_weight: float = 0.0
    distractor_rank: int = 0
    head_norm: float = 0.0
    mlp_norm: float = 0.0
    unembed_norm: float = 0.0
    norm_ramp: float = 0.0

    def __post_init__(self) -> None:
        require_positive_ints(self, "steps", "full_steps", "batch_size")
        for name in ("lr", "behaviour_weight", "iit_weight", "strict_weight", "weight_decay",
                     "other_scale", "distractor_weight", "head_norm", "mlp_norm",
                     "unembed_norm", "norm_ramp"):
            if getattr(self, name) < 0:
                raise ConfigError(f"SIITConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("resample_prob", "all_at_once"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"SIITConfig.{name} must lie in [0, 1], got "
                                  f"{getattr(self, name)}")
        if self.distractor_rank < 0:
            raise ConfigError(f"SIITConfig.distractor_rank must be >= 0, got "
                              f"{self.distractor_rank}")
        if self.freeze_others and self.distractor_weight:
            raise ConfigError("SIITConfig: a frozen component cannot learn a distractor job; "
                              "set freeze_others=False or distractor_weight=0")


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


def _frozen_masks(net: StackedTransformer, alignments: list[dict[str, str]], arch: SIITArch
                  ) -> dict[str, torch.Tensor]:
    """Gradient masks that are 0 on the weights of non-circuit heads and MLPs."""
    masks = {k: torch.ones_like(net.w[k]) for k in ("q_w", "q_b", "k_w", "k_b", "v_w", "v_b",
                                                      "o_w", "in_w", "in_b", "out_w", "out_b")}
    dh = arch.d_head
    for i, alignment in enumerate(alignments):
        circuit = set(alignment.values())
        for layer in range(arch.n_layers):
            for h in range(arch.n_heads):
                if f"L{layer}.H{h}" in circuit:
                    continue
                rows = slice(h * dh, (h + 1) * dh)
                for key in ("q_w", "q_b", "k_w", "k_b", "v_w", "v_b"):
                    masks[key][i, layer, rows] = 0
                masks["o_w"][i, layer, :, rows] = 0
            if f"L{layer}.mlp" not in circuit:
                for key in ("in_w", "in_b", "out_w", "out_b"):
                    masks[key][i, layer] = 0
    return masks


@torch.no_grad()
def _hold_norms(net: StackedTransformer, arch: SIITArch, config: SIITConfig,
                progress: float = 1.0) -> None:
    """Project every head's OV matrix, every MLP's ``W_out`` and the unembedding back to its
    fixed norm (a
    quarter of it at the start of a ramp, ``progress`` the share of training done)."""
    ramp = 1.0 if config.norm_ramp == 0 else min(1.0, progress / config.norm_ramp)
    scale = 0.25 + 0.75 * ramp
    config = replace(config, head_norm=config.head_norm * scale,
                     mlp_norm=config.mlp_norm * scale, unembed_norm=config.unembed_norm * scale)
    if config.head_norm:
        o_w = net.w["o_w"].view(*net.w["o_w"].shape[:3], arch.n_heads, arch.d_head)  # m l d h e
        v_w = net.w["v_w"].view(*net.w["v_w"].shape[:2], arch.n_heads, arch.d_head, -1)
        ov = torch.einsum("mldhe,mlhef->mlhdf", o_w, v_w)  # m l h d d
        factor = config.head_norm / ov.flatten(3).norm(dim=-1).clamp(min=1e-8)  # m l h
        o_w.mul_(factor[:, :, None, :, None])
    if config.mlp_norm:
        out_w = net.w["out_w"]
        out_w.mul_(config.mlp_norm / out_w.flatten(2).norm(dim=-1).clamp(min=1e-8)[..., None, None])
    if config.unembed_norm:
        w_u = net.w["unembed"]  # m v d
        w_u.mul_(config.unembed_norm / w_u.flatten(1).norm(dim=-1).clamp(min=1e-8)[:, None, None])


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
    frozen = _frozen_masks(net, alignments, arch)
    if config.other_scale != 1.0:
        with torch.no_grad():
            for key, keep in frozen.items():
                if key.endswith("_w"):  # weight matrices, not biases
                    net.w[key].mul_(keep + (1 - keep) * config.other_scale)
    if not config.freeze_others:
        frozen = None
    jobs = draw_distractor_jobs(alignments, seeds, arch, config.distractor_rank).to(device) \
        if config.distractor_weight else None
    _hold_norms(net, arch, config, 0.0)
    n, b = len(seeds), config.batch_size
    log: dict[str, list[float]] = {"behaviour": [], "iit": [], "strict": [], "distractor": []}
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
        patch = {k: torch.cat([acts[k][:, :, :b], acts[k][:, :, :b], acts[k][:, :, b:]], 2)
                 for k in ("z", "mlp")}
        logits, base_acts = net(base_t, patch, torch.stack(masks).to(device),
                                keep=jobs is not None)
        if labels_t.dim() == 2:  # one answer per row, at the last position
            labels_t = torch.cat([torch.full((*labels_t.shape, logits.shape[2] - 1), IGNORE,
                                             device=device), labels_t[..., None]], -1)
        per_token = F.cross_entropy(logits.reshape(-1, arch.d_vocab), labels_t.reshape(-1),
                                    reduction="none", ignore_index=IGNORE).view(n, 3, b, -1)
        counted = (labels_t != IGNORE).view(n, 3, b, -1).sum((0, 2, 3)).clamp(min=1)
        losses = per_token.sum((0, 2, 3)) / counted
        total = (config.behaviour_weight * losses[0] + config.iit_weight * losses[1]
                 + config.strict_weight * losses[2])
        if jobs is not None:  # on the behaviour rows, where nothing is replaced
            rows = {"z": base_acts["z"][:, :, :b], "mlp": base_acts["mlp"][:, :, :b],
                    "scale": base_acts["scale"][:, :b]}
            distract = distractor_loss(jobs, rows, net.w["o_w"], base_t[:, :b])
            total = total + config.distractor_weight * distract
            losses = torch.cat([losses.detach(), distract.detach()[None]])
        opt.zero_grad(set_to_none=True)
        total.backward()
        if frozen is not None:
            for key, keep in frozen.items():
                net.w[key].grad.mul_(keep)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        _hold_norms(net, arch, config, (step + 1) / steps)
        if step % 25 == 0 or step == steps - 1:
            for key, value in zip(log, losses.tolist(), strict=False):
                log[key].append(round(value, 5))
    weights = {k: v.detach() for k, v in net.w.items()}
    out = [to_bridge(weights, i, br).eval() for i, br in enumerate(bridges)]
    logs = {"losses": {k: v for k, v in log.items() if v},
            "train_seconds": time.perf_counter() - started, "steps": steps,
            "trained_with": list(seeds)}
    if jobs is not None:
        logs["distractor_jobs"] = [jobs.describe(i, arch) for i in range(n)]
    return out, alignments, logs


def default_arch(task: SIITTask) -> SIITArch:
    """The benchmark shape: 4 layers, 4 heads, MLPs, the SIIT vocabulary."""
    return SIITArch(n_ctx=task.n_ctx, d_vocab=len(siit_tokenizer()))


BENCHMARK_VERSION = 2
"""Bumped whenever a change to the tasks or to training alters what a trained model is; it
is part of every model's cache key (in place of a hash of the source, so that shipped
models survive edits that do not change them). Version 2 added the settings in
:data:`_ADDED_FIELDS`; a run that uses none of them trains exactly as in version 1 and keeps
that version in its key."""
SIIT_SEEDS = (0, 1, 2, 3, 4)
"""The benchmark's model seeds, on every profile: five are drawn per task, every one is
verified, and the ones that pass (at least :data:`MIN_VERIFIED` are required) are scored."""
MIN_VERIFIED = 3
BUSY = {"distractor_weight": 1.0, "head_norm": 3.0, "mlp_norm": 4.0}
"""Distractor jobs for the components outside the circuit and every component held at one
weight norm (see :class:`SIITConfig`)."""
HELD = {"head_norm": 2.0, "mlp_norm": 2.0, "unembed_norm": 2.0}
"""One norm for every head's OV matrix, every MLP's ``W_out`` and the unembedding."""
TASK_CONFIGS: dict[str, SIITConfig] = {
    "siit-induction": SIITConfig(steps=6000, full_steps=6000, freeze_others=True, norm_ramp=0.3,
                                 **HELD),
    "siit-ioi": SIITConfig(steps=2000, full_steps=2000, **BUSY),
    "siit-histogram": SIITConfig(steps=6000, full_steps=6000, freeze_others=True, **HELD),
}
"""Each task's training settings (found by training on this project's CPU; see the
discovery leaderboard tutorial for the measurements). :data:`BUSY` is used where its models
pass verification: on IOI 4 of 5 do; on induction and the histogram none did (the circuit,
held at the same norm as fifteen busy components, could not make itself heard). On the
histogram and induction the non-circuit components stay frozen at their random initial
weights, held at the circuit's norm (:data:`HELD`; 3 of 5 models pass on each), so their
weights do not give the circuit away. Induction needs the held norms to rise over the first
30% of training (``norm_ramp``) and 6,000 steps: held at full norm from the start, 2 of 5
passed at 3,000 steps (at norms 2 and 3 alike)."""
BUSY_ATTEMPT_STEPS = {"siit-induction": 3000, "siit-histogram": 5000}
"""Steps of the shipped :func:`busy_attempt` models of the tasks that do not use :data:`BUSY`."""
_ADDED_FIELDS = {"distractor_weight": 0.0, "head_norm": 0.0, "mlp_norm": 0.0, "norm_ramp": 0.0,
                 "distractor_rank": 0, "unembed_norm": 0.0}
"""Training settings added after the first shipped models; left out of a run's key while
at these values (which train exactly as before), so those models stay valid."""
SHIPPED = Path(__file__).resolve().parent / "weights"
"""Where the benchmark's trained models ship with the package."""


def task_config(task: str) -> SIITConfig:
    """The default :class:`SIITConfig` of a task."""
    return TASK_CONFIGS.get(get_siit_task(task).name, SIITConfig())


def _settings(config: SIITConfig) -> dict[str, Any]:
    """The training settings as they enter keys and file names: fields added since the first
    shipped models are left out while at the values that train exactly as before."""
    return {k: v for k, v in asdict(config).items()
            if k not in _ADDED_FIELDS or v != _ADDED_FIELDS[k]}


def _run_spec(task: SIITTask, seed: int, arch: SIITArch, config: SIITConfig, steps: int) -> dict:
    settings = _settings(config)
    version = BENCHMARK_VERSION if settings.keys() & _ADDED_FIELDS.keys() else 1
    return {"task": task.name, "seed": seed, "arch": asdict(arch), "config": settings,
            "steps": steps, "benchmark_version": version}


def shipped_paths(task: str, seed: int, config: SIITConfig | None = None) -> tuple[Path, Path]:
    """``(weights, sidecar)`` of a shipped benchmark model (trained with ``config``, default
    the task's own settings; other settings get a digest of them in the name)."""
    stem = f"{task}-seed{seed}"
    if config is not None and config != task_config(task):
        stem += "-" + checkpoint_key(_settings(config))[:8]
    return SHIPPED / f"{stem}.safetensors", SHIPPED / f"{stem}.json"


def busy_attempt(task: str) -> SIITConfig:
    """The :data:`BUSY` settings (distractor jobs, held norms) with the steps the attempt was
    made with; where the task's own settings are not these, its models trained this way ship
    as a record of the attempt (:func:`ship_models`)."""
    if get_siit_task(task).name in BUSY_ATTEMPT_STEPS:
        steps = BUSY_ATTEMPT_STEPS[get_siit_task(task).name]
        return SIITConfig(steps=steps, full_steps=steps, **BUSY)
    return replace(task_config(task), freeze_others=False, **BUSY)


def strictness_control(task: str) -> SIITConfig:
    """The task's settings without the strictness term: plain IIT, the benchmark's negative
    control (its non-circuit components are free to take part in the task, so it must fail
    verification)."""
    return replace(task_config(task), strict_weight=0.0)


CONTROL = ("siit-ioi", 0)
"""The (task, seed) whose strictness control ships with the package."""


def load_siit_models(task: str, seeds: list[int] | tuple[int, ...] | None = None, *,
                     config: SIITConfig | None = None, retrain: bool = False
                     ) -> list[SIITModel]:
    """The SIIT benchmark models of ``task``, one per seed: from the cache, else from the
    models shipped with the package (same key: same task, seed, shape and training), else
    trained (seeds trained together) and cached.

    A seed's weights can differ in the last float bits with the group it was trained in; its
    alignment and data do not.

    Args:
        task: a name in :data:`mechinterp.siit.SIIT_TASKS`.
        seeds: model seeds (default :data:`SIIT_SEEDS`).
        config: training settings (default :func:`task_config`).
        retrain: ignore cached and shipped entries.
    """
    spec = get_siit_task(task)
    seeds = list(SIIT_SEEDS if seeds is None else seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct and at least one, got {seeds}")
    config = config or task_config(task)
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
            shapes = {k: tuple(v.shape) for k, v in params.items()}
            hit = None
            if not retrain:
                hit = load_checkpoint(*checkpoint_paths("siit-models", keys[s]), keys[s], shapes)
                if hit is None and shipped_paths(task, s, config)[1].exists():
                    hit = load_checkpoint(*shipped_paths(task, s, config), keys[s], shapes)
            if hit is not None:
                with torch.no_grad():
                    for name, param in params.items():
                        param.copy_(hit[0][name].to(device))
                found[s] = SIITModel(task, s, bridge.eval(), hit[1]["alignment"], hit[1])
        missing = [s for s in seeds if s not in found]
        if missing:
            bridges, alignments, logs = train_siit(spec, missing, arch=arch, config=config,
                                                   steps=steps)
            for s, bridge, alignment in zip(missing, bridges, alignments, strict=True):
                meta = {**runs[s], **logs, "key": keys[s], "alignment": alignment,
                        "profile": get_profile().name, "device": str(device),
                        "code": __version__}
                save_checkpoint(dict(bridge.named_parameters()), meta,
                                *checkpoint_paths("siit-models", keys[s]))
                found[s] = SIITModel(task, s, bridge, alignment, meta)
    return [found[s] for s in seeds]


def ship_models(tasks: list[str] | None = None, seeds: list[int] | None = None, *,
                config: SIITConfig | None = None) -> list[Path]:
    """Train the benchmark models afresh and write them where the package ships them
    (``make siit-models``; with no arguments, also the :data:`CONTROL` model trained with
    :func:`strictness_control` and, for tasks whose own settings are not :data:`BUSY`, the
    models of :func:`busy_attempt`). Returns the written weight files.

    Args:
        tasks, seeds: what to train (default: every task, :data:`SIIT_SEEDS`).
        config: training settings (default: each task's).
    """
    from mechinterp.siit.tasks import SIIT_TASKS

    written = []
    for task in tasks or list(SIIT_TASKS):
        for model in load_siit_models(task, seeds, config=config, retrain=True):
            weights, sidecar = shipped_paths(task, model.seed, config)
            save_checkpoint(dict(model.model.named_parameters()), model.meta, weights, sidecar)
            written.append(weights)
    if tasks is None and seeds is None and config is None:
        task, seed = CONTROL
        written += ship_models([task], [seed], config=strictness_control(task))
        for task in SIIT_TASKS:
            if busy_attempt(task) != task_config(task):
                written += ship_models([task], config=busy_attempt(task))
    return written
