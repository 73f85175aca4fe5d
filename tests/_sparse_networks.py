"""Small networks that exercise every rule of the sparse backend (shared by the sparse and pipeline tests)."""

import torch
from torch import nn


class EncoderDecoder(nn.Module):
    """Every kind the sparse backend has a rule for: strided conv, pooling, nearest upsampling, concat,
    add, transposed conv, and a 1x1 head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1 = nn.Conv2d(1, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 8, 3, padding=1, stride=2)
        self.c3 = nn.Conv2d(8, 8, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.c4 = nn.Conv2d(14, 6, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(2)
        self.t = nn.ConvTranspose2d(6, 4, 2, stride=2)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        a = torch.relu(self.c1(x))
        b = torch.relu(self.c2(a))
        b = torch.relu(self.c3(b)) + b
        c = torch.relu(self.c4(torch.cat([self.up(b), a], 1)))
        d = torch.relu(self.t(self.pool(c) + self.avg(c)))
        return self.head(d)


class SegmentationLike(nn.Module):
    """seg-motion's structure: strided encoder, dilated context, nearest-upsampling decoder with an
    additive skip, 1x1 head, bilinear output (sigma-delta on upsampled maps, Add → ReLU → SigmaDelta
    chains, bilinear rows)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.e1 = nn.Conv2d(1, 6, 3, stride=2, padding=1)
        self.e2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.context = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.up = nn.Upsample(scale_factor=2)
        self.d1 = nn.Conv2d(8, 6, 3, padding=1)
        self.head = nn.Conv2d(6, 1, 1)
        self.out = nn.Upsample(scale_factor=2, mode="bilinear")

    def forward(self, x):
        a = torch.relu(self.e1(x))
        c = torch.relu(self.context(torch.relu(self.e2(a))))
        d = torch.relu(self.d1(self.up(c)) + a)
        return self.out(self.head(d))
