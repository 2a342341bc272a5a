"""The WaveGrad network in PyTorch with lmnt-com/wavegrad's module layout (state-dict names and shapes), written
for this project from the paper and lmnt's published layout. Shared by the parity-fixture script and the GPU
fallback trainer; the C# network (src/WaveGradSharp.Vocoder/WaveGradNet.cs) must agree with it."""
import math
import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(i, o, k, d=1, p=0):
    return nn.Conv1d(i, o, k, dilation=d, padding=p)


class FiLM(nn.Module):
    def __init__(self, i, o, scale):
        super().__init__()
        self.scale = scale
        self.input_conv = conv(i, i, 3, p=1)
        self.output_conv = conv(i, 2 * o, 3, p=1)

    def forward(self, x, level):
        x = F.leaky_relu(self.input_conv(x), 0.2)
        n = x.shape[1] // 2
        freqs = torch.exp(-math.log(1e4) * torch.arange(n, dtype=x.dtype) / n)
        angle = (level * self.scale)[:, None] * freqs[None, :]
        x = x + torch.cat([angle.sin(), angle.cos()], 1)[:, :, None]
        shift, scale = self.output_conv(x).chunk(2, 1)
        return shift, scale


class DBlock(nn.Module):
    def __init__(self, i, h, f, mode):
        super().__init__()
        self.f, self.mode = f, mode
        self.residual_dense = conv(i, h, 1)
        self.conv = nn.ModuleList([conv(i, h, 3, 1, 1), conv(h, h, 3, 2, 2), conv(h, h, 3, 4, 4)])

    def forward(self, x):
        n = x.shape[-1] // self.f
        r = F.interpolate(self.residual_dense(x), size=n, mode=self.mode)
        x = F.interpolate(x, size=n, mode=self.mode)
        for c in self.conv:
            x = c(F.leaky_relu(x, 0.2))
        return x + r


class UBlock(nn.Module):
    def __init__(self, i, h, f, d, mode):
        super().__init__()
        self.f, self.mode = f, mode
        self.block1 = conv(i, h, 1)
        self.block2 = nn.ModuleList([conv(i, h, 3, d[0], d[0]), conv(h, h, 3, d[1], d[1])])
        self.block3 = nn.ModuleList([conv(h, h, 3, d[2], d[2]), conv(h, h, 3, d[3], d[3])])

    def forward(self, x, shift, scale):
        n = x.shape[-1] * self.f
        a = self.block1(F.interpolate(x, size=n, mode=self.mode))
        b = self.block2[0](F.interpolate(F.leaky_relu(x, 0.2), size=n, mode=self.mode))
        b = self.block2[1](F.leaky_relu(shift + scale * b, 0.2))
        x = a + b
        c = self.block3[0](F.leaky_relu(shift + scale * x, 0.2))
        c = self.block3[1](F.leaky_relu(shift + scale * c, 0.2))
        return x + c


class WaveGrad(nn.Module):
    def __init__(self, n_mels, first, up, down, factors, dil, scale, mode):
        super().__init__()
        dfac = [factors[4], factors[3], factors[2], factors[1]]
        self.downsample = nn.ModuleList([conv(1, down[0], 5, p=2)] + [DBlock(down[i], down[i + 1], dfac[i], mode) for i in range(4)])
        self.film = nn.ModuleList([FiLM(down[i], up[4 - i], scale) for i in range(5)])
        ins = [first] + up[:4]
        self.upsample = nn.ModuleList([UBlock(ins[i], up[i], factors[i], dil[i], mode) for i in range(5)])
        self.first_conv = conv(n_mels, first, 3, p=1)
        self.last_conv = conv(up[4], 1, 3, p=1)

    def forward(self, audio, mel, level):
        x = audio[:, None]
        mods = []
        for film, layer in zip(self.film, self.downsample):
            x = layer(x)
            mods.append(film(x, level))
        x = self.first_conv(mel)
        for layer, (sh, sc) in zip(self.upsample, reversed(mods)):
            x = layer(x, sh, sc)
        return self.last_conv(x).squeeze(1)



LMNT_DIL = [[1, 2, 1, 2], [1, 2, 1, 2], [1, 2, 4, 8], [1, 2, 4, 8], [1, 2, 4, 8]]
PAPER_DIL = [[1, 2, 4, 8], [1, 2, 4, 8], [1, 2, 4, 8], [1, 2, 1, 2], [1, 2, 1, 2]]
