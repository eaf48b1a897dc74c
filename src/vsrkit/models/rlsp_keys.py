"""The released RLSP's TensorFlow names and layout -> ``RLSPReleased``'s: pure renaming of a state dict.

The released checkpoints (``layerN/kernel`` HWIO, ``layerN/bias``) are read from their files by
``vsrkit.hub.tfbundle``; this module only renames and transposes the tensors it is given.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from vsrkit.errors import VsrkitError

__all__ = ["TF_OPTIMISER_SUFFIXES", "TF_OPTIMISER_NAMES", "tf_layers", "convert_rlsp_released"]

# the optimiser's variables that tf.train.Saver stores beside the model's (Adam's slots and beta powers)
TF_OPTIMISER_SUFFIXES = ("/Adam", "/Adam_1")
TF_OPTIMISER_NAMES = ("beta1_power", "beta2_power")


def tf_layers(sd: Mapping[str, torch.Tensor]) -> int:
    """The number of ``layerN/kernel`` + ``layerN/bias`` variables (N = 0, 1, ...), 0 if there are none."""
    n = 0
    while f"layer{n}/kernel" in sd and f"layer{n}/bias" in sd:
        n += 1
    return n


def convert_rlsp_released(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """TensorFlow names and layout (``layerN/kernel`` HWIO, ``layerN/bias``) -> ``RLSPReleased``'s (``trunk.N``,
    ``state_head``, ``out_head``; OIHW): the last layer is the output head, the one before it the state head.
    The optimiser's variables (``.../Adam``, ``.../Adam_1``, ``beta1_power``, ``beta2_power``) are dropped. A
    state dict without TensorFlow names is returned as it is."""
    n = tf_layers(sd)
    if n == 0:
        return dict(sd)
    if n < 3:
        raise VsrkitError(f"RLSP TensorFlow checkpoint: only {n} layers (layer0..layer{n - 1}); expected at least 3")
    names = {f"layer{i}": f"trunk.{i}" for i in range(n - 2)}
    names[f"layer{n - 2}"] = "state_head"
    names[f"layer{n - 1}"] = "out_head"
    out: dict[str, torch.Tensor] = {}
    for tf_name, ours in names.items():
        kernel = sd[f"{tf_name}/kernel"]
        if kernel.ndim != 4:
            raise VsrkitError(f"RLSP TensorFlow checkpoint: {tf_name}/kernel has shape {tuple(kernel.shape)}, not HWIO")
        out[f"{ours}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()
        out[f"{ours}.bias"] = sd[f"{tf_name}/bias"].contiguous()
    return out
