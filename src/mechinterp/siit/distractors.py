"""Jobs for the components outside the circuit, so that they look busy without mattering.

A benchmark whose non-circuit components stay near their random initialisation gives its
answer away to anyone who reads the weights: the circuit is simply the set of components that
grew. Real models are not like that, since every component is trained on something. So during
SIIT training each non-circuit component also gets a *distractor job*, read by a fixed random
linear probe on what the component writes into the residual stream (the probe is discarded
after training; it is not part of the model):

* a head reports the token ``k`` positions back (``k`` in 1..3, drawn per head): a positional
  copying head, the same kind of head as the circuits' previous-token nodes;
* an MLP reports a random class (one of :data:`MLP_CLASSES`) of the current token: a lookup
  table, which takes a nonlinearity.

Strictness still holds: resampling these components must leave the task's answer unchanged,
so the circuit learns to ignore what they write. The jobs use the same input rows as the
behaviour loss and cost one small extra einsum per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mechinterp.errors import ConfigError
from mechinterp.siit.model import SIITArch, component_names
from mechinterp.siit.tasks import IGNORE

__all__ = ["DistractorJobs", "draw_distractor_jobs", "distractor_targets", "distractor_loss",
           "MAX_OFFSET", "MLP_CLASSES"]

MAX_OFFSET = 3
"""A distractor head reports the token 1..MAX_OFFSET positions back."""
MLP_CLASSES = 8
"""A distractor MLP maps each token to one of this many classes."""


@dataclass
class DistractorJobs:
    """Distractor jobs of ``n_models`` models (tensors on the training device).

    Attributes:
        head_offset: ``(models, layers, heads)``, 1..MAX_OFFSET, 0 for a circuit head.
        mlp_table: ``(models, layers, d_vocab)``: each token's class for each MLP.
        mlp_job: ``(models, layers)``: 1 for a non-circuit MLP.
        head_probe: ``(models, layers, heads, d_vocab, d_model)``: fixed readouts of heads.
        mlp_probe: ``(models, layers, MLP_CLASSES, d_model)``: fixed readouts of MLPs.
    """

    head_offset: torch.Tensor
    mlp_table: torch.Tensor
    mlp_job: torch.Tensor
    head_probe: torch.Tensor
    mlp_probe: torch.Tensor

    def describe(self, index: int, arch: SIITArch) -> dict[str, str]:
        """``component -> job`` of model ``index`` (for the model's sidecar)."""
        out = {}
        for name in component_names(arch):
            layer = int(name.split(".")[0][1:])
            if name.endswith("mlp"):
                if self.mlp_job[index, layer]:
                    out[name] = f"class of the current token (of {MLP_CLASSES})"
            else:
                k = int(self.head_offset[index, layer, int(name.split(".H")[1])])
                if k:
                    out[name] = f"token {k} back"
        return out

    def to(self, device) -> DistractorJobs:
        """The same jobs on ``device``."""
        return DistractorJobs(*(getattr(self, f).to(device) for f in
                                ("head_offset", "mlp_table", "mlp_job", "head_probe",
                                 "mlp_probe")))


def draw_distractor_jobs(alignments: list[dict[str, str]], seeds: list[int], arch: SIITArch,
                         rank: int = 0) -> DistractorJobs:
    """Draw every non-circuit component's job and probe from its model's seed.

    Args:
        rank: if not 0, every probe of a model reads only one fixed random subspace of this
            many residual dimensions (drawn from the model's seed): the distractors can then
            do their jobs in directions the circuit does not need (0: the whole stream).
    """
    a = arch
    if not 0 <= rank <= a.d_model:
        raise ConfigError(f"distractor rank must lie in [0, d_model={a.d_model}], got {rank}")
    offsets, tables, jobs, head_probes, mlp_probes = [], [], [], [], []
    for alignment, seed in zip(alignments, seeds, strict=True):
        g = torch.Generator().manual_seed(20_000 + seed)
        circuit = set(alignment.values())
        off = torch.randint(1, MAX_OFFSET + 1, (a.n_layers, a.n_heads), generator=g)
        for layer in range(a.n_layers):
            for h in range(a.n_heads):
                if f"L{layer}.H{h}" in circuit:
                    off[layer, h] = 0
        offsets.append(off)
        tables.append(torch.randint(MLP_CLASSES, (a.n_layers, a.d_vocab), generator=g))
        jobs.append(torch.tensor([float(f"L{layer}.mlp" not in circuit)
                                  for layer in range(a.n_layers)]))
        # unit-variance entries: a probe row has norm ~sqrt(d_model)
        head_probe = torch.randn(a.n_layers, a.n_heads, a.d_vocab, a.d_model, generator=g)
        mlp_probe = torch.randn(a.n_layers, MLP_CLASSES, a.d_model, generator=g)
        if rank:  # project onto the subspace, rescaled so rows keep norm ~sqrt(d_model)
            basis = torch.linalg.qr(torch.randn(a.d_model, rank, generator=g))[0]  # d r
            proj = basis @ basis.T * (a.d_model / rank) ** 0.5
            head_probe, mlp_probe = head_probe @ proj, mlp_probe @ proj
        head_probes.append(head_probe)
        mlp_probes.append(mlp_probe)
    return DistractorJobs(torch.stack(offsets), torch.stack(tables), torch.stack(jobs),
                          torch.stack(head_probes), torch.stack(mlp_probes))


def distractor_targets(jobs: DistractorJobs, tokens: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """What each component's job asks for on ``tokens`` ``(models, batch, pos)``.

    Returns:
        ``(head targets (models, layers, batch, pos, heads), MLP targets (models, layers,
        batch, pos))``; a head's target is :data:`IGNORE` where it has no job (a circuit head)
        or no token lies that far back. A circuit MLP's targets are left in; its loss is
        masked by ``jobs.mlp_job``.
    """
    m, batch, pos = tokens.shape
    # shifted[m, k, b, p] = the token k back (k = 0 is unused)
    shifted = torch.full((m, MAX_OFFSET + 1, batch, pos), IGNORE, dtype=torch.long,
                         device=tokens.device)
    for k in range(1, MAX_OFFSET + 1):
        shifted[:, k, :, k:] = tokens[:, :, :-k]
    models = torch.arange(m, device=tokens.device)[:, None, None]
    heads = shifted[models, jobs.head_offset]  # m l h b p
    heads = heads.masked_fill((jobs.head_offset == 0)[..., None, None], IGNORE)
    layers = torch.arange(jobs.mlp_table.shape[1], device=tokens.device)[None, :, None, None]
    mlps = jobs.mlp_table[models[..., None], layers, tokens[:, None]]  # m l b p
    return heads.permute(0, 1, 3, 4, 2), mlps


def distractor_loss(jobs: DistractorJobs, acts: dict[str, torch.Tensor], o_w: torch.Tensor,
                    tokens: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of every non-circuit component's job.

    Each probe reads what its component writes divided by what the final LayerNorm divides
    the residual stream by (held constant): a job is only done if the write is large next to
    everything else in the stream, as the circuit's writes must be.

    Args:
        jobs: from :func:`draw_distractor_jobs`.
        acts: ``keep=True`` activations of a run on ``tokens`` (no component replaced):
            ``z`` ``(models, layers, batch, pos, heads, d_head)``, ``mlp``
            ``(models, layers, batch, pos, d_model)``, ``scale`` ``(models, batch, pos, 1)``.
        o_w: the stacked output matrices ``(models, layers, d_model, heads * d_head)``.
        tokens: ``(models, batch, pos)``.
    """
    m, n_layers, batch, pos, n_heads, d_head = acts["z"].shape
    scale = acts["scale"].detach()[:, None]  # m 1 b p 1
    written = torch.einsum("mlbphe,mldhe->mlbphd", acts["z"],
                           o_w.view(m, n_layers, -1, n_heads, d_head)) / scale[..., None]
    head_logits = torch.einsum("mlbphd,mlhvd->mlbphv", written, jobs.head_probe)
    head_target, mlp_target = distractor_targets(jobs, tokens)
    head_loss = F.cross_entropy(head_logits.reshape(-1, head_logits.shape[-1]),
                                head_target.reshape(-1), ignore_index=IGNORE, reduction="sum")
    head_count = (head_target != IGNORE).sum()
    mlp_logits = torch.einsum("mlbpd,mlcd->mlbpc", acts["mlp"] / scale, jobs.mlp_probe)
    mlp_ce = F.cross_entropy(mlp_logits.reshape(-1, MLP_CLASSES), mlp_target.reshape(-1),
                             reduction="none").view(m, n_layers, batch, pos)
    mlp_loss = (mlp_ce * jobs.mlp_job[:, :, None, None]).sum()
    mlp_count = jobs.mlp_job.sum() * batch * pos
    return (head_loss + mlp_loss) / (head_count + mlp_count).clamp(min=1)
