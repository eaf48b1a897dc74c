"""VGG-19's convolutional part (Simonyan & Zisserman, ICLR 2015) as a feature extractor for perceptual losses,
written without torchvision but with its state-dict keys (``features.N.weight``, ``features.N.bias``), so the
ImageNet weights torchvision publishes (``vgg19-dcbb9e9d.pth``) load strictly.

``features`` is torchvision's ``vgg19().features`` layout: 16 3x3 convolutions in five groups (64, 128, 256, 512,
512 channels; 2, 2, 4, 4, 4 convolutions), each followed by a ReLU, and a 2x2 max-pool after each group. The
index of a layer is its position in that list (conv1_1 is ``0``, conv1_2 ``2``, conv2_2 ``7``, conv3_4 ``16``,
conv4_4 ``25``, conv5_4 ``34``): perceptual losses name the layers whose outputs they compare by these indices.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["VGG19_CONFIG", "VGG19_CONV_INDICES", "vgg19_layers", "VGG19Features", "IMAGENET_MEAN", "IMAGENET_STD"]

# channels of each convolution, "M" a max-pool (torchvision's cfgs["E"])
VGG19_CONFIG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                       512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layers(upto: int | None = None) -> list[nn.Module]:
    """The modules of VGG-19's ``features`` in order (conv, ReLU, ..., max-pool), the first ``upto + 1`` of them."""
    layers: list[nn.Module] = []
    channels = 3
    for v in VGG19_CONFIG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(v)
    return layers if upto is None else layers[: upto + 1]


VGG19_CONV_INDICES = tuple(i for i, m in enumerate(vgg19_layers()) if isinstance(m, nn.Conv2d))


class VGG19Features(nn.Module):
    """The outputs of chosen layers of VGG-19's ``features`` for an RGB batch in [0, 1].

    ``layers``: indices into ``features`` (only the layers up to the deepest are built); ``use_input_norm``: the
    input is first normalised with ImageNet's mean and std, as the published weights expect. The parameters are
    frozen (gradients still flow to the input). A chosen layer's output is taken before the in-place ReLU after it.
    """

    def __init__(self, layers: list[int], use_input_norm: bool = True) -> None:
        super().__init__()
        if not layers:
            raise ValueError("VGG19Features needs at least one layer")
        total = len(vgg19_layers())
        bad = [i for i in layers if not 0 <= i < total]
        if bad:
            raise ValueError(f"VGG-19 features have layers 0..{total - 1}, got {bad[0]}")
        self.layers = sorted(set(int(i) for i in layers))
        self.use_input_norm = use_input_norm
        self.features = nn.Sequential(*vgg19_layers(max(self.layers)))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        out: dict[int, torch.Tensor] = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.layers:
                out[i] = x.clone()  # the next ReLU works in place
        return out
