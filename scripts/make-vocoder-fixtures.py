#!/usr/bin/python3
"""Parity fixtures for the WaveGrad network: a PyTorch model with lmnt-com/wavegrad's module layout (state-dict
names and shapes), written here from the paper's description and lmnt's published layout, with small random
weights, saved as .pt with a fixed input and its output. Also the key/shape list of the full base model.
Run with Debian's python3 (apt-get install python3-torch): /usr/bin/python3 scripts/make-vocoder-fixtures.py"""
import json, math, os
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "vocoder")


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

os.makedirs(OUT, exist_ok=True)
base = WaveGrad(128, 768, [512, 512, 256, 128, 128], [32, 128, 128, 256, 512], [5, 5, 3, 2, 2], LMNT_DIL, 1.0, "nearest")
keys = [[k, list(v.shape)] for k, v in base.state_dict().items()]
with open(os.path.join(OUT, "lmnt-base-keys.json"), "w") as fh:
    json.dump({"parameters": sum(p.numel() for p in base.parameters()), "keys": keys}, fh, indent=0)

cases = {
    # lmnt-com/wavegrad's choices: hop 300, lmnt dilation order, level scale 1, nearest interpolation.
    "tiny-lmnt": dict(n_mels=16, first=48, up=[32, 32, 16, 8, 8], down=[4, 8, 8, 16, 32], factors=[5, 5, 3, 2, 2], dil=LMNT_DIL, scale=1.0, mode="nearest"),
    # the paper's choices: dilation order of App. A, level scale 5000; with hop 256 and linear interpolation.
    "tiny-paper": dict(n_mels=16, first=48, up=[32, 32, 16, 8, 8], down=[4, 8, 8, 16, 32], factors=[4, 4, 4, 2, 2], dil=PAPER_DIL, scale=5000.0, mode="linear"),
}
for name, cfg in cases.items():
    torch.manual_seed(1)
    m = WaveGrad(**cfg).eval()
    with torch.no_grad():
        for p in m.parameters():  # small random weights: unit gain per conv, so the output stays O(1)
            fan_in = p[0].numel() if p.dim() > 1 else 10
            p.copy_(torch.randn_like(p) * (0.1 if p.dim() == 1 else 1.0 / math.sqrt(fan_in)))
    hop = math.prod(cfg["factors"])
    g = torch.Generator().manual_seed(2)
    mel = torch.randn(2, cfg["n_mels"], 3, generator=g)
    audio = torch.randn(2, 3 * hop, generator=g) * 0.5
    level = torch.tensor([0.31, 0.87])
    with torch.no_grad():
        out = m(audio, mel, level)
    print(name, "output max |y| =", float(out.abs().max()), "std", float(out.std()))
    torch.save({"model": m.state_dict()}, os.path.join(OUT, f"{name}.pt"))
    torch.save({"mel": mel, "audio": audio, "level": level, "output": out}, os.path.join(OUT, f"{name}-io.pt"))
    with open(os.path.join(OUT, f"{name}.json"), "w") as fh:
        json.dump({"n_mels": cfg["n_mels"], "first_channels": cfg["first"], "up_channels": cfg["up"], "down_channels": cfg["down"],
                   "up_factors": cfg["factors"], "dilations": "paper" if cfg["dil"] == PAPER_DIL else "lmnt",
                   "noise_scale": cfg["scale"], "interpolation": cfg["mode"]}, fh, indent=1)
print("wrote fixtures to", os.path.normpath(OUT))
