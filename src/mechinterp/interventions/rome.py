"""ROME as published, on any ``TransformerBridge``: GPT-2's architecture, GPT-2 itself where
its weights are on disk, and the toy-world models.

Rank-One Model Editing (Meng et al., 2022, "Locating and Editing Factual Associations in
GPT") rewrites one fact, "PROMPT" -> TARGET about SUBJECT, by a rank-one change of one MLP's
output projection ``W`` (``d_model x d_mlp``, GPT-2's ``c_proj``):

1. **Which layer** (:func:`causal_trace`): the subject's token embeddings are corrupted with
   Gaussian noise (three times the embeddings' standard deviation), and the clean output of
   one layer's MLP at the subject's last token is restored; the layer whose restoration
   brings back most of the clean probability of the prompt's own answer is edited.
2. **The key** ``k*``: the MLP's hidden activation at the subject's last token, averaged over
   the prompt alone and the prompt after short prefixes drawn from a text sample.
3. **The value**: a vector ``delta`` added to the MLP's output at the subject's last token,
   optimised so that TARGET is the next token after the prompt in every context, plus a KL
   term that keeps the next-token distribution after the essence prompt "SUBJECT is a" as
   it was (so the subject keeps what it is), plus a weight decay; after every step ``delta``'s
   norm is clamped to ``clamp_norm`` times the norm of the MLP output it is added to.
4. **The update** ``dW = delta (C^-1 k*)^T / (k*^T C^-1 k*)``, with ``C`` the second moment of
   the layer's keys over every position of the text sample (plus a small ridge): the closed
   form that moves ``W k*`` by exactly ``delta`` while changing ``W k`` as little as possible
   for the keys the sample holds.

The tokenizer may be a Hugging Face tokenizer (GPT-2's byte-level BPE: words carry their
leading space) or the toy world's :class:`~mechinterp.toyworld.vocab.WordTokenizer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mechinterp.errors import ConfigError
from mechinterp.interventions.base import require_unmodified
from mechinterp.interventions.steering import _pad
from mechinterp.interventions.weights import RankOneEdit, key_second_moment
from mechinterp.pretrained import bos_ids, token_ids

__all__ = ["RomeSettings", "subject_tokens", "causal_trace", "rome", "memit"]


@dataclass(frozen=True)
class RomeSettings:
    """The published method's knobs (defaults in the spirit of Meng et al.'s GPT-2 settings,
    scaled to small models).

    Attributes:
        steps, lr: most Adam steps, and learning rate, of the value optimisation.
        stop_nll: the optimisation stops early once the target's mean negative log-likelihood
            over the prompt's contexts is below this (as the authors' code does; 0: never).
        weight_decay: squared-norm penalty on ``delta``.
        kl_weight: weight of the essence prompt's KL term (0 turns it off).
        clamp_norm: ``delta``'s norm is at most this times the MLP output's norm (0: no clamp).
        n_contexts: prefixes drawn from the sample for the key and the value (the prompt
            alone is always one more).
        prefix_tokens: length of each prefix.
        ridge: added to ``C``'s diagonal, as a fraction of its mean diagonal.
        noise: corruption of causal tracing, in standard deviations of the embeddings.
        trace_samples: noise draws averaged in causal tracing.
        seed: the draws of prefixes and noise.
    """

    steps: int = 150
    lr: float = 0.1
    stop_nll: float = 0.05
    weight_decay: float = 1e-3
    kl_weight: float = 0.0625
    clamp_norm: float = 4.0
    n_contexts: int = 10
    prefix_tokens: int = 6
    ridge: float = 1e-2
    noise: float = 3.0
    trace_samples: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "n_contexts", "prefix_tokens", "trace_samples", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"RomeSettings.{name} must be a non-negative integer, got "
                                  f"{value!r}")
        if self.steps < 1 or self.trace_samples < 1:
            raise ConfigError("RomeSettings.steps and trace_samples must be at least 1")
        for name in ("lr", "weight_decay", "kl_weight", "clamp_norm", "ridge", "noise",
                     "stop_nll"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"RomeSettings.{name} must be >= 0, got "
                                  f"{getattr(self, name)!r}")



def subject_tokens(tokenizer, prompt: str, subject: str) -> tuple[list[int], int]:
    """``(ids of prompt, index of the subject's last token)``, without the
    beginning-of-sequence token (:func:`mechinterp.pretrained.bos_ids`).

    Raises:
        ConfigError: the subject is not in the prompt, or ends inside a token.
    """
    start = prompt.find(subject)
    if start < 0:
        raise ConfigError(f"the subject {subject!r} is not in the prompt {prompt!r}")
    ids = token_ids(tokenizer, prompt)
    head = token_ids(tokenizer, prompt[: start + len(subject)])
    if ids[: len(head)] != head:
        raise ConfigError(f"the subject {subject!r} ends inside a token of {prompt!r}; write "
                          f"the prompt so that a word boundary follows it")
    return ids, len(head) - 1


def _target_id(tokenizer, target: str) -> int:
    ids = token_ids(tokenizer, " " + target.strip())
    if not ids:
        raise ConfigError(f"the target {target!r} has no tokens")
    return ids[0]


def _contexts(tokenizer, ids: list[int], sample: torch.Tensor, settings: RomeSettings
              ) -> list[list[int]]:
    """The prompt alone, then after ``n_contexts`` prefixes cut from the sample's rows."""
    g = torch.Generator().manual_seed(settings.seed)
    rows = [bos_ids(tokenizer) + ids]
    usable = sample.shape[1] - settings.prefix_tokens
    for _ in range(settings.n_contexts):
        r = int(torch.randint(len(sample), (1,), generator=g))
        s = int(torch.randint(max(1, usable), (1,), generator=g))
        prefix = sample[r, s : s + settings.prefix_tokens].tolist()
        rows.append(bos_ids(tokenizer) + prefix + ids)
    return rows


@torch.no_grad()
def causal_trace(model, tokenizer, prompt: str, subject: str, *,
                 settings: RomeSettings | None = None, answer: str | None = None
                 ) -> torch.Tensor:
    """Indirect effect of each layer's MLP at the subject's last token (Meng et al.'s causal
    tracing): ``p(answer | corrupted subject, this MLP output restored) - p(answer |
    corrupted subject)``, averaged over noise draws.

    Args:
        answer: the token whose probability is traced (default: the clean prompt's top
            prediction).

    Returns:
        ``(n_layers,)`` effects; ``argmax`` is the layer ROME edits.
    """
    settings = settings or RomeSettings()
    ids, last_subject = subject_tokens(tokenizer, prompt, subject)
    first_subject = len(token_ids(tokenizer, prompt[: prompt.find(subject)].rstrip())) \
        if prompt.find(subject) > 0 else 0
    offset = len(bos_ids(tokenizer))
    tokens = torch.tensor([bos_ids(tokenizer) + ids], device=next(model.parameters()).device)
    subj = slice(first_subject + offset, last_subject + offset + 1)
    mlp_hooks = [f"blocks.{layer}.hook_mlp_out" for layer in range(model.cfg.n_layers)]
    clean_logits, clean = model.run_with_cache(tokens, names_filter=mlp_hooks +
                                               ["blocks.0.hook_resid_pre"])
    target = (int(clean_logits[0, -1].argmax()) if answer is None
              else _target_id(tokenizer, answer))
    batch = tokens.repeat(settings.trace_samples, 1)
    g = torch.Generator().manual_seed(settings.seed)
    embed = clean["blocks.0.hook_resid_pre"]
    noise = torch.randn((settings.trace_samples, subj.stop - subj.start, embed.shape[-1]),
                        generator=g).to(embed) * settings.noise * float(embed[0, subj].std())

    def corrupt(act, hook):
        act = act.clone()
        act[:, subj] = act[:, subj] + noise
        return act

    def probability(hooks) -> float:
        logits = model.run_with_hooks(batch, fwd_hooks=[("blocks.0.hook_resid_pre", corrupt),
                                                        *hooks])
        return float(logits[:, -1].softmax(-1)[:, target].mean())

    corrupted = probability([])
    effects = []
    for name in mlp_hooks:
        def restore(act, hook, name=name):
            act = act.clone()
            act[:, last_subject + offset] = clean[name][0, last_subject + offset]
            return act
        effects.append(probability([(name, restore)]) - corrupted)
    return torch.tensor(effects)


def _check_model(model, sample: torch.Tensor, settings: RomeSettings, what: str) -> None:
    if getattr(model.cfg, "attn_only", False):
        raise ConfigError(f"{what} edits an MLP; this model has none")
    require_unmodified(model, f"a {what} edit")
    if sample.dim() != 2 or sample.shape[1] <= settings.prefix_tokens:
        raise ConfigError(f"the sample must be (n, pos) token ids with pos > prefix_tokens "
                          f"({settings.prefix_tokens}); got {tuple(sample.shape)}")


def _editable(model, tokenizer, prompt: str, subject: str) -> int:
    """Layers ``0..editable-1`` can carry the fact: an MLP output at the subject reaches a
    later answer position only through attention in a later layer, so the last layer counts
    only when the subject ends the prompt."""
    ids, last_subject = subject_tokens(tokenizer, prompt, subject)
    return model.cfg.n_layers - (0 if last_subject == len(ids) - 1 else 1)


def _check_layer(layer, editable: int) -> int:
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < editable:
        raise ConfigError(f"layer must be in 0..{editable - 1} (the subject's MLP output "
                          f"reaches the answer only through a later attention layer), got "
                          f"{layer!r}")
    return layer


def _key_and_value(model, tokenizer, prompt: str, subject: str, target: str,
                   sample: torch.Tensor, layer: int, settings: RomeSettings,
                   essence: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """ROME's steps 2 and 3: the key ``k*`` and the value change ``delta`` of one fact."""
    device = next(model.parameters()).device
    ids, last_subject = subject_tokens(tokenizer, prompt, subject)
    tokens, last = _pad(_contexts(tokenizer, ids, sample, settings))
    tokens, last = tokens.to(device), last.to(device)
    subject_pos = last - (len(ids) - 1 - last_subject)
    index = torch.arange(len(tokens), device=device)
    key_hook, out_hook = f"blocks.{layer}.mlp.hook_post", f"blocks.{layer}.hook_mlp_out"
    essence_ids, essence_last = subject_tokens(tokenizer, essence or f"{subject} is a", subject)
    essence_tokens = torch.tensor([bos_ids(tokenizer) + essence_ids], device=device)
    essence_pos = essence_last + len(bos_ids(tokenizer))
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=[key_hook, out_hook])
        k_star = cache[key_hook][index, subject_pos].float().mean(0)
        out_norm = float(cache[out_hook][index, subject_pos].norm(dim=-1).mean())
        essence_before = model(essence_tokens)[0, -1].log_softmax(-1)
    delta = torch.zeros(model.cfg.d_model, device=device, requires_grad=True)
    target_id = _target_id(tokenizer, target)

    def add_at(positions, rows_):
        def hook(act, hook):
            act = act.clone()
            act[rows_, positions] = act[rows_, positions] + delta
            return act
        return hook

    params = list(model.parameters())
    trainable = [p.requires_grad for p in params]
    optimizer = torch.optim.Adam([delta], lr=settings.lr)
    try:  # only delta is optimised: no gradient lands on the model
        for p in params:
            p.requires_grad_(False)
        for _ in range(settings.steps):
            with model.hooks(fwd_hooks=[(out_hook, add_at(subject_pos, index))]):
                logp = model(tokens)[index, last].log_softmax(-1)
            nll = -logp[:, target_id].mean()
            if nll.item() < settings.stop_nll:
                break
            loss = nll + settings.weight_decay * delta.pow(2).sum()
            if settings.kl_weight > 0:
                with model.hooks(fwd_hooks=[(out_hook, add_at(essence_pos, 0))]):
                    essence_now = model(essence_tokens)[0, -1].log_softmax(-1)
                kl = (essence_before.exp() * (essence_before - essence_now)).sum()
                loss = loss + settings.kl_weight * kl
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if settings.clamp_norm > 0:
                with torch.no_grad():
                    limit = settings.clamp_norm * out_norm
                    if delta.norm() > limit:
                        delta.mul_(limit / delta.norm())
    finally:
        for p, flag in zip(params, trainable, strict=True):
            p.requires_grad_(flag)
    return k_star, delta.detach()


def _moment(model, sample: torch.Tensor, layer: int, settings: RomeSettings) -> torch.Tensor:
    """``C``: the layer's keys' second moment over the sample, plus the ridge."""
    moment = key_second_moment(model, sample, layer)
    return moment + settings.ridge * moment.diagonal().mean() * torch.eye(
        len(moment), device=moment.device)


def rome(model, tokenizer, prompt: str, subject: str, target: str, sample: torch.Tensor, *,
         layer: int | None = None, settings: RomeSettings | None = None,
         essence: str | None = None, name: str = "rome") -> RankOneEdit:
    """Fit ROME's rank-one edit of ``prompt`` -> ``target`` (see the module docstring).

    Args:
        model: a ``TransformerBridge`` with MLPs (not changed here).
        tokenizer: its tokenizer (Hugging Face, or the toy world's).
        prompt: e.g. ``"The Eiffel Tower is located in the city of"``.
        subject: the span of ``prompt`` the fact is about (``"The Eiffel Tower"``).
        target: the new answer (``"Rome"``); its first token is the one made likely.
        sample: ``(n, pos)`` token ids of ordinary text, for ``C`` and the context prefixes.
        layer: the MLP to edit (default: the causal-tracing argmax).
        settings: the knobs (:class:`RomeSettings`).
        essence: the prompt whose next-token distribution the KL term keeps (default
            ``"SUBJECT is a"``); it must contain the subject.
        name: the returned intervention's name.

    Returns:
        a :class:`~mechinterp.interventions.weights.RankOneEdit` whose ``meta`` holds
        ``k*``, ``delta``, the traced effects, the prompt, subject and target.

    Raises:
        ConfigError: the subject is not a token span of the prompt, the model has no MLPs,
            a layer out of range, or interventions applied to the model.
    """
    settings = settings or RomeSettings()
    _check_model(model, sample, settings, "ROME")
    editable = _editable(model, tokenizer, prompt, subject)
    traced = None
    if layer is None:
        traced = causal_trace(model, tokenizer, prompt, subject, settings=settings)
        layer = int(traced[:editable].argmax())
    layer = _check_layer(layer, editable)
    k_star, delta = _key_and_value(model, tokenizer, prompt, subject, target, sample, layer,
                                   settings, essence)
    u = torch.linalg.solve(_moment(model, sample, layer, settings), k_star)
    update = torch.outer(delta, u) / (u @ k_star)
    return RankOneEdit(layer, update, name=name,
                       description=f"ROME at layer {layer}: {prompt!r} -> {target!r}",
                       meta={"k_star": k_star, "delta": delta, "traced": traced,
                             "target_id": _target_id(tokenizer, target),
                             "subject_position": subject_tokens(tokenizer, prompt, subject)[1],
                             "prompt": prompt, "subject": subject, "target": target})


def memit(model, tokenizer, facts: Sequence[tuple[str, str, str]], sample: torch.Tensor, *,
          layer: int, settings: RomeSettings | None = None,
          covariance_weight: float = 1.0, essences: Sequence[str | None] | None = None,
          name: str = "memit") -> RankOneEdit:
    """Edit many facts at once in one MLP (Meng et al., 2023, "Mass-Editing Memory in a
    Transformer", on a single layer).

    Each fact ``(prompt, subject, target)`` gets its key ``k_i`` and value change ``delta_i``
    as in :func:`rome`; the update is the least-squares map
    ``dW = D K^T (lambda C + K K^T)^-1`` (``K``: the keys as columns, ``D``: the deltas), which
    moves every ``W k_i`` towards ``W k_i + delta_i`` while keeping the keys of the text
    sample where they were (``lambda``: ``covariance_weight``). With one fact and
    ``lambda -> 0`` it is ROME's closed form; it is of rank at most the number of facts.

    Raises:
        ConfigError: no facts, a layer that cannot carry one of them, or what :func:`rome`
            raises.
    """
    settings = settings or RomeSettings()
    if not facts:
        raise ConfigError("memit needs at least one (prompt, subject, target) fact")
    if not covariance_weight >= 0:
        raise ConfigError(f"covariance_weight must be >= 0, got {covariance_weight!r}")
    _check_model(model, sample, settings, "MEMIT")
    for prompt, subject, _ in facts:
        _check_layer(layer, _editable(model, tokenizer, prompt, subject))
    essences = list(essences or [None] * len(facts))
    pairs = [_key_and_value(model, tokenizer, prompt, subject, target, sample, layer,
                            settings, essence)
             for (prompt, subject, target), essence in zip(facts, essences, strict=True)]
    keys = torch.stack([k for k, _ in pairs], 1)      # (d_mlp, N)
    deltas = torch.stack([d for _, d in pairs], 1)    # (d_model, N)
    system = covariance_weight * _moment(model, sample, layer, settings) + keys @ keys.T
    update = torch.linalg.solve(system, keys @ deltas.T).T  # D K^T (lambda C + K K^T)^-1
    return RankOneEdit(layer, update, name=name,
                       description=f"MEMIT at layer {layer}: {len(facts)} facts",
                       meta={"keys": keys, "deltas": deltas, "facts": list(facts)})
