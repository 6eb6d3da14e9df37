# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Looking inside an MNIST CNN
#
# Every method in this project starts the same way: train a small network, then read and
# rewrite its internal activations through named hook points. This tutorial walks through
# that loop once on the small CNN that later becomes the *primary* network of SymbioteNet.
#
# 1. Train the CNN on all ten digits (or load the identical run from the checkpoint cache).
# 2. Capture every hidden activation with `run_with_cache` and look at the feature maps.
# 3. Knock out one channel at a time with `run_with_hooks` and measure which digits suffer.
#
# The hooks come from TransformerLens's `HookedRootModule`, so the same calls work on the
# transformers of the circuits tutorials.

# %%
import time

import matplotlib.pyplot as plt
import torch

import mechinterp as mi
from mechinterp.ablation import ablation_hook, accuracy_per_class_with_hooks, single_unit_ablation
from mechinterp.plotting import heatmap, image_grid

started = time.perf_counter()
profile = mi.get_profile()
data = mi.load_digits()
print(f"profile: {profile.name}; {data.describe()}")

# %% [markdown]
# ## Train (or load) the network
#
# `train_classifier` keys the checkpoint on everything that shaped it (architecture, digits,
# data source, profile, seed and training settings), so a second run loads it in a fraction
# of a second.

# %%
trained = mi.train_classifier("cnn", seed=0, data=data)
model = trained.model
print(f"{trained.arch}: {model.n_parameters():,} parameters, "
      f"test accuracy {trained.test_accuracy:.3f} (from cache: {trained.cached})")
print("hidden hook points:", model.unit_counts())

# %% [markdown]
# ## Capture activations
#
# `run_with_cache` runs the model once and returns every hook point's activation, keyed by
# its name. The first convolution's eight channels already look like stroke and edge
# detectors.

# %%
logits, cache = model.run_with_cache(data.test_images[:64])
for name, act in cache.items():
    print(f"{name:18s} {tuple(act.shape)}")

example = 0
digit = int(data.test_labels[example])
maps = cache["conv1.hook_post"][example]
fig = image_grid(torch.cat([data.test_images[example], maps]),
                 titles=[f"input ({digit})"] + [f"channel {c}" for c in range(len(maps))],
                 ncols=9, suptitle="conv1 feature maps after the ReLU")
plt.show()

# %% [markdown]
# ## Knock out channels and watch the digits
#
# A hook function receives an activation and may return a replacement. Zero-ablating one
# channel of the second convolution at a time and re-measuring accuracy per digit gives a
# channels x digits map of where each digit's evidence flows. Large entries mean the digit
# depends on that channel.

# %%
digits = list(data.classes)
drops = single_unit_ablation(model, "conv2.hook_post", data.test_images, data.test_labels,
                             digits, mode="zero")
fig = heatmap(drops, row_labels=[f"ch {c}" for c in range(drops.shape[0])],
              col_labels=[str(d) for d in digits], xlabel="digit", ylabel="conv2 channel",
              title="Accuracy drop when one conv2 channel is zeroed",
              colorbar_label="accuracy drop")
plt.show()

worst_channel, worst_digit = divmod(int(drops.argmax()), drops.shape[1])
print(f"largest single-channel effect: channel {worst_channel} costs digit "
      f"{digits[worst_digit]} {drops.max().item():.1%} of its accuracy")

# %% [markdown]
# Most single channels cost little: the network spreads each digit over several channels,
# and a row of zeros marks a channel that never fires on these images (a dead ReLU), so
# removing it changes nothing. Removing every channel at once is another matter.

# %%
all_off = accuracy_per_class_with_hooks(
    model, data.test_images, data.test_labels,
    [("conv2.hook_post", ablation_hook(range(model.channels[1]), "zero"))], digits)
base = accuracy_per_class_with_hooks(model, data.test_images, data.test_labels, [], digits)
print(f"mean accuracy intact {base.mean():.3f}, every conv2 channel zeroed {all_off.mean():.3f}")

# %% [markdown]
# ## Checks and record
#
# The numbers this page claims are checked here, so a build in which they stop holding
# fails instead of publishing a wrong page.

# %%
assert trained.test_accuracy >= 0.93, trained.test_accuracy
assert abs(base.mean().item() - trained.test_accuracy) < 0.02  # per-class mean ~ overall
assert drops.max().item() > 0.05, "some channel should matter for some digit"
assert drops.mean().item() < 0.05, "a typical single channel should matter little"
assert all_off.mean().item() < 0.3, "without conv2 the network should be near chance"

record = mi.write_result(
    "cnn-inspection",
    {
        "test_accuracy": trained.test_accuracy,
        "mean_single_channel_drop": drops.mean().item(),
        "max_single_channel_drop": drops.max().item(),
        "accuracy_all_conv2_zeroed": all_off.mean().item(),
    },
    seeds=[0],
    data_source=data.source,
    title="Looking inside an MNIST CNN",
    started=started,
)
print(f"result record written to {record}")
