"""PyTorch peer for `make bench`: ResNet50 on the CPU, random weights, batch 1/16/64.

torchvision does not import beside the CPU build of torch our machines carry, so the network is
torchvision's ResNet50 written out (same layers, same shapes, stride on the 3×3 conv: 4.1
GFLOPs, ~6 % more than the classic Caffe network's 3.9). The peer gets its best CPU settings:
eval mode, inference_mode, channels_last, and TorchScript freezing (oneDNN conv+BN+ReLU fusion).

Prints one JSON line: {"batch": images/s, ...}. Run by benchmarks/bench.py in its own process.
"""

from __future__ import annotations

import json
import sys

import torch
from bench import throughput  # the same measurement loop as every other row
from torch import nn


class Bottleneck(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        width, out = planes, planes * 4
        self.conv1, self.bn1 = nn.Conv2d(inplanes, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


def resnet50() -> nn.Module:
    layers, inplanes = [], 64
    for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            layers.append(Bottleneck(inplanes, planes, stride if i == 0 else 1))
            inplanes = planes * 4
    return nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
        *layers,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2048, 1000),
        nn.Softmax(dim=1),
    )


def main() -> None:
    torch.manual_seed(0)
    model = resnet50().eval().to(memory_format=torch.channels_last)
    assert sum(p.numel() for p in model.parameters()) == 25_557_032  # torchvision's count
    rates = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    with torch.inference_mode():
        for batch in (1, 16, 64):
            x = torch.rand(batch, 3, 224, 224).to(memory_format=torch.channels_last)
            frozen = torch.jit.freeze(torch.jit.trace(model, x))
            rates[str(batch)] = throughput(frozen, x)
    json.dump(rates, sys.stdout)
    print()


if __name__ == "__main__":
    main()
