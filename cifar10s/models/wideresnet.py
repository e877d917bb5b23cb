"""Wide Residual Networks (Zagoruyko & Komodakis, 2016) for 32x32 inputs.

WRN-d-k has three stages of (d - 4) / 6 pre-activation basic blocks with 16k, 32k and 64k
channels. The One-Pixel Shortcut paper sweeps the width k of WRN-28-k (its Table 3) to ask
whether wider networks are more or less drawn to the one-pixel shortcut.

Parameter counts: the authors trained the WideResNet of ``meliketoy/wide-resnet.pytorch``, whose
convolutions carry a bias term. ``conv_bias=True`` (the default here) reproduces every WRN count
the paper prints: 36.49M for WRN-28-10 (Table 2) and 0.37, 1.47, 5.85, 23.36, 93.35 and 145.84M
for WRN-28-1/2/4/8/16/20 (Table 3). The original bias-free WRN gives 36.48M for WRN-28-10. See
``PAPER_PARAM_COUNTS`` in ``registry.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class WideBasic(nn.Module):
    """Pre-activation block BN-ReLU-Conv3x3-(Dropout)-BN-ReLU-Conv3x3 plus a shortcut.

    When the block changes width or resolution the shortcut is a 1x1 convolution applied to the
    pre-activated input, as in the original WRN code.
    """

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, dropout: float = 0.0, bias: bool = True
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=bias)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        residual = x if self.shortcut is None else self.shortcut(pre)
        out = self.dropout(self.conv1(pre))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + residual


class WideResNet(nn.Module):
    """WRN-depth-widen_factor for 32x32 images.

    Args:
        depth: total depth, must be 6n + 4 (28 gives 4 blocks per stage).
        widen_factor: width multiplier k (any positive integer).
        num_classes: size of the classifier output.
        dropout: dropout between the two convolutions of each block (0 disables it).
        conv_bias: give convolutions a bias, as the authors' implementation does.
    """

    def __init__(
        self,
        depth: int = 28,
        widen_factor: int = 10,
        num_classes: int = 10,
        dropout: float = 0.0,
        conv_bias: bool = True,
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n + 4 with n >= 1, got {depth}")
        if widen_factor < 1:
            raise ValueError(f"WideResNet widen_factor must be >= 1, got {widen_factor}")
        n = (depth - 4) // 6
        widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.depth, self.widen_factor = depth, widen_factor
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=conv_bias)
        in_planes = 16
        stages = []
        for i, planes in enumerate(widths):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(WideBasic(in_planes, planes, stride, dropout, conv_bias))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn = nn.BatchNorm2d(in_planes)
        self.linear = nn.Linear(in_planes, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        out = F.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def wide_resnet(
    depth: int = 28,
    widen_factor: int = 10,
    num_classes: int = 10,
    dropout: float = 0.0,
    conv_bias: bool = True,
) -> WideResNet:
    """Build WRN-``depth``-``widen_factor``."""
    return WideResNet(depth, widen_factor, num_classes, dropout, conv_bias)


def wrn28_10(num_classes: int = 10, dropout: float = 0.0, conv_bias: bool = True) -> WideResNet:
    """WRN-28-10, the paper's widest CNN (36.49M parameters with biased convolutions)."""
    return WideResNet(28, 10, num_classes, dropout, conv_bias)
