"""Hooked MNIST classifiers: a small CNN and the MLP family of the concept-transfer work.

Every model subclasses TransformerLens's ``HookedRootModule`` and puts a ``HookPoint`` on every
hidden activation, so ``run_with_cache``, ``run_with_hooks`` and the patching tools work on them
exactly as on a transformer. Hook names follow one scheme:

* ``hook_in``: the input images, ``(batch, 1, 28, 28)``.
* ``conv{i}.hook_pre`` / ``conv{i}.hook_post``: a convolution's output before and after the
  ReLU, ``(batch, channels, height, width)`` (pooling comes after ``hook_post``).
* ``fc{i}.hook_pre`` / ``fc{i}.hook_post``: a hidden linear layer before and after the ReLU,
  ``(batch, n_units)``.
* ``hook_logits``: the output logits, ``(batch, n_classes)``.

Layers are plain ``nn.Linear`` / ``nn.Conv2d`` subclasses, so weight surgery reads and writes
``model.fc1.weight`` directly. Models are built by name from :data:`MODEL_REGISTRY`.

:func:`mix_basis` returns a copy of a model that computes exactly the same function but whose
hidden hook points see the units in a random orthonormal basis: every unit of the copy is a
mixture of the original units, so it answers to whatever they answered to (a controlled way to
make units polysemantic at identical accuracy).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from mechinterp.errors import ConfigError, ShapeError

__all__ = [
    "HookedLinear",
    "HookedConv2d",
    "HookedClassifier",
    "HookedMLP",
    "HookedCNN",
    "ModelSpec",
    "MODEL_REGISTRY",
    "build_model",
    "list_models",
    "mix_basis",
    "EVAL_CHUNK",
    "image_rows",
]

EVAL_CHUNK = 512
"""Images per forward pass when a whole split is evaluated
(:meth:`HookedClassifier.run_in_chunks`). On one CPU thread the small CNN classifies 4,000
images about 2.4 times faster in chunks of 512 than in one pass (the activations of one chunk
stay in cache); ``benchmarks/bench_training.py`` measures the ratio."""

_ROWS: ContextVar[tuple[int, int, int] | None] = ContextVar("mechinterp_rows", default=None)


def image_rows(values: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """The rows of ``values`` (one per image of the whole input) that belong to the images in
    ``act``: all of them in a plain forward pass, the current chunk's inside
    :meth:`HookedClassifier.run_in_chunks`. Hooks that hold one value per image call this, so
    they work in either; a caller checks the result's length against ``act``'s batch."""
    rows = _ROWS.get()
    if rows is not None and values.shape[0] == rows[2] and act.shape[0] == rows[1] - rows[0]:
        return values[rows[0]:rows[1]]
    return values


def _post(layer: nn.Module, act: torch.Tensor) -> torch.Tensor:
    """``hook_post`` on ``act``, read in the layer's mixed basis when it has one: the hook sees
    ``mix @ act`` per position and the layer goes on with ``mix.T`` of what the hook returns,
    so without hooks the function is unchanged."""
    mix = layer.mix
    if mix is None:
        return layer.hook_post(act)
    mixed = layer.hook_post(torch.einsum("uv,bv...->bu...", mix, act))
    return torch.einsum("vu,bv...->bu...", mix, mixed)


class HookedLinear(nn.Linear):
    """A linear layer carrying ``hook_pre`` and ``hook_post`` hook points for its activations."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()
        self.register_buffer("mix", None)

    def activate(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_features) -> (batch, out_features)`` with a ReLU between the hooks."""
        return _post(self, F.relu(self.hook_pre(super().forward(x))))


class HookedConv2d(nn.Conv2d):
    """A 3x3 same-padding convolution with ``hook_pre`` and ``hook_post`` hook points."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=3, padding=1)
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()
        self.register_buffer("mix", None)

    def activate(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, c_in, h, w) -> (batch, c_out, h, w)`` with a ReLU between the hooks."""
        return _post(self, F.relu(self.hook_pre(super().forward(x))))


class HookedClassifier(HookedRootModule):
    """Shared behaviour of the hooked image classifiers.

    Attributes:
        arch: the registry name the model was built from ("custom" otherwise).
        n_classes: size of the output layer.
    """

    arch: str = "custom"
    n_classes: int

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and x.shape[1] == 784:
            return x.view(-1, 1, 28, 28)
        if x.dim() == 3 and x.shape[1:] == (28, 28):
            return x.unsqueeze(1)
        if x.dim() == 4 and x.shape[1:] == (1, 28, 28):
            return x
        raise ShapeError(
            f"{type(self).__name__} expects images of shape (batch, 1, 28, 28), (batch, 28, 28) "
            f"or (batch, 784); got {tuple(x.shape)}"
        )

    def run_in_chunks(self, images: torch.Tensor, fwd_hooks: Sequence = (),
                      chunk: int = EVAL_CHUNK) -> torch.Tensor:
        """``run_with_hooks`` over ``images`` in chunks of ``chunk`` images (see
        :data:`EVAL_CHUNK`); the logits of every image, in order. Per-image hook values built
        for the whole of ``images`` are sliced to each chunk (:func:`image_rows`)."""
        n = images.shape[0]
        if n <= chunk:
            return self.run_with_hooks(images, fwd_hooks=list(fwd_hooks))
        out = []
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            token = _ROWS.set((start, stop, n))
            try:
                out.append(self.run_with_hooks(images[start:stop], fwd_hooks=list(fwd_hooks)))
            finally:
                _ROWS.reset(token)
        return torch.cat(out)

    @property
    def hidden_hooks(self) -> list[str]:
        """Names of the post-ReLU hook points of every hidden layer, input side first."""
        return [name for name in self.hook_dict if name.endswith("hook_post")]

    def unit_counts(self) -> dict[str, int]:
        """Number of units (channels for convolutions) at each hidden hook point."""
        counts = {}
        for name in self.hidden_hooks:
            layer = self.get_submodule(name.rsplit(".", 1)[0])
            counts[name] = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
        return counts

    def n_parameters(self) -> int:
        """Total number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def _build_head(self, in_features: int, hidden: tuple[int, ...], n_classes: int) -> None:
        """Hidden ReLU layers ``fc1..fc{n}``, the output layer and the logits hook."""
        if not hidden or any(int(h) < 1 for h in hidden):
            raise ConfigError(f"hidden widths must be positive integers, got {hidden!r}")
        self.hidden = tuple(int(h) for h in hidden)
        self.n_classes = n_classes
        sizes = (in_features, *self.hidden)
        for i in range(len(self.hidden)):
            setattr(self, f"fc{i + 1}", HookedLinear(sizes[i], sizes[i + 1]))
        self.out_name = f"fc{len(self.hidden) + 1}"
        setattr(self, self.out_name, nn.Linear(self.hidden[-1], n_classes))
        self.hook_logits = HookPoint()

    @property
    def hidden_layers(self) -> list[HookedLinear]:
        """The hidden linear layers in order (``fc1`` ... ``fc{n}``)."""
        return [getattr(self, f"fc{i + 1}") for i in range(len(self.hidden))]

    @property
    def output_layer(self) -> nn.Linear:
        """The final linear layer that produces the logits."""
        return getattr(self, self.out_name)

    def _run_head(self, h: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden_layers:
            h = layer.activate(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, 28, 28) -> (batch, n_classes)`` logits."""
        return self.hook_logits(self.output_layer(self.features(x)))


class HookedMLP(HookedClassifier):
    """A ReLU multilayer perceptron on flattened 28x28 images.

    Args:
        hidden: widths of the hidden layers, e.g. ``(512, 256, 128, 64)`` for MegaNN.
        n_classes: output size (ten for MNIST, also when trained on a subset of digits).
    """

    def __init__(self, hidden: tuple[int, ...], n_classes: int = 10) -> None:
        super().__init__()
        self.hook_in = HookPoint()
        self._build_head(784, hidden, n_classes)
        self.setup()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations, ``(batch, 1, 28, 28) -> (batch, hidden[-1])``."""
        return self._run_head(self.hook_in(self._check_input(x)).flatten(1))


class HookedCNN(HookedClassifier):
    """Convolutions (each followed by 2x2 max-pooling) then ReLU linear layers.

    Args:
        channels: output channels of each 3x3 convolution, e.g. ``(8, 16)``.
        hidden: widths of the hidden linear layers after the convolutions.
        n_classes: output size.
    """

    def __init__(
        self, channels: tuple[int, ...], hidden: tuple[int, ...], n_classes: int = 10
    ) -> None:
        super().__init__()
        if not channels or len(channels) > 3 or any(int(c) < 1 for c in channels):
            raise ConfigError(f"channels must be 1-3 positive integers, got {channels!r}")
        self.channels = tuple(int(c) for c in channels)
        self.hook_in = HookPoint()
        c_in = 1
        for i, c in enumerate(self.channels):
            setattr(self, f"conv{i + 1}", HookedConv2d(c_in, c))
            c_in = c
        side = 28 // 2 ** len(self.channels)
        self._build_head(c_in * side * side, hidden, n_classes)
        self.setup()
        # channels-last convolutions and pooling train ~30% faster on CPU (measured with
        # benchmarks/bench_training.py); shapes and hook names are unaffected.
        self.to(memory_format=torch.channels_last)

    @property
    def conv_layers(self) -> list[HookedConv2d]:
        """The convolutions in order."""
        return [getattr(self, f"conv{i + 1}") for i in range(len(self.channels))]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations, ``(batch, 1, 28, 28) -> (batch, hidden[-1])``."""
        h = self.hook_in(self._check_input(x)).contiguous(memory_format=torch.channels_last)
        for conv in self.conv_layers:
            h = F.max_pool2d(conv.activate(h), 2)
        return self._run_head(h.flatten(1))


@dataclass(frozen=True)
class ModelSpec:
    """A named architecture in the registry.

    Attributes:
        name: registry key.
        kind: ``mlp`` or ``cnn``.
        hidden: hidden linear widths.
        channels: convolution channels (``cnn`` only).
        description: one line for listings.
    """

    name: str
    kind: str
    hidden: tuple[int, ...]
    channels: tuple[int, ...] = ()
    description: str = ""

    def build(self, n_classes: int = 10) -> HookedClassifier:
        """Instantiate the model (weights drawn from torch's global RNG)."""
        if self.kind == "mlp":
            model: HookedClassifier = HookedMLP(self.hidden, n_classes)
        else:
            model = HookedCNN(self.channels, self.hidden, n_classes)
        model.arch = self.name
        return model


MODEL_REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec("cnn", "cnn", (128,), (8, 16),
                  "small CNN: conv 8, conv 16, fc 128 (~105k parameters)"),
        ModelSpec("cnn-poly", "cnn", (8,), (4, 8),
                  "narrow CNN: conv 4, conv 8, fc 8; too few units for ten digits, so its "
                  "units must share classes (the polysemantic primary)"),
        ModelSpec("simplenn", "mlp", (64, 32), (), "SimpleNN: 784-64-32-10"),
        ModelSpec("megann", "mlp", (512, 256, 128, 64), (), "MegaNN: 784-512-256-128-64-10"),
        ModelSpec("widenn", "mlp", (1024, 256), (), "WideNN: 784-1024-256-10 (wide, shallow)"),
        ModelSpec("deepnn", "mlp", (256, 256, 128, 128, 128), (),
                  "DeepNN: 784-256-256-128-128-128-10 (narrow, deep)"),
        ModelSpec("convnet", "cnn", (64,), (16, 32), "ConvNet: conv 16, conv 32, fc 64"),
    ]
}


def list_models() -> list[str]:
    """Names of the registered architectures."""
    return sorted(MODEL_REGISTRY)


def build_model(name: str, n_classes: int = 10) -> HookedClassifier:
    """Build a registered architecture by name.

    Raises:
        ConfigError: the name is not registered.
    """
    key = name.strip().lower()
    if key not in MODEL_REGISTRY:
        raise ConfigError(f"unknown architecture {name!r}; choose one of {list_models()}")
    return MODEL_REGISTRY[key].build(n_classes)


def mix_basis(model: HookedClassifier, seed: int = 0) -> HookedClassifier:
    """A copy of ``model`` whose every hidden ``hook_post`` sees its units in a random
    orthonormal basis (one per layer, drawn from ``seed``), with the inverse applied right
    after the hook: the function is exactly the same, but each unit a hook (and anything
    acting through it) sees is a mixture of all the layer's original units. Pre-ReLU hooks are
    untouched. Its ``arch`` gains the suffix ``+mixed``.
    """
    mixed = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    for name in mixed.hidden_hooks:
        layer = mixed.get_submodule(name.rsplit(".", 1)[0])
        n = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
        q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
        q = q * torch.sign(torch.diagonal(r))  # a uniformly random rotation (Haar measure)
        layer.mix = q.to(dtype=layer.weight.dtype, device=layer.weight.device)
    mixed.arch = f"{model.arch}+mixed"
    return mixed
