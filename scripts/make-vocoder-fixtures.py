#!/usr/bin/python3
"""Parity fixtures for the WaveGrad network: a PyTorch model with lmnt-com/wavegrad's module layout (state-dict
names and shapes), written here from the paper's description and lmnt's published layout, with small random
weights, saved as .pt with a fixed input and its output. Also the key/shape list of the full base model.
Run with Debian's python3 (apt-get install python3-torch): /usr/bin/python3 scripts/make-vocoder-fixtures.py"""
import json, math, os
import torch
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wavegrad_reference import WaveGrad, LMNT_DIL, PAPER_DIL  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "vocoder")



os.makedirs(OUT, exist_ok=True)
base = WaveGrad(128, 768, [512, 512, 256, 128, 128], [32, 128, 128, 256, 512], [5, 5, 3, 2, 2], LMNT_DIL, 1.0, "nearest")
keys = [[k, list(v.shape)] for k, v in base.state_dict().items()]
with open(os.path.join(OUT, "lmnt-base-keys.json"), "w") as fh:
    json.dump({"parameters": sum(p.numel() for p in base.parameters()), "keys": keys}, fh, indent=0)

cases = {
    # lmnt-com/wavegrad's choices: hop 300, lmnt dilation order, level scale 1, nearest interpolation.
    "tiny-lmnt": dict(n_mels=16, first=48, up=[32, 32, 16, 8, 8], down=[4, 8, 8, 16, 32], factors=[5, 5, 3, 2, 2], dil=LMNT_DIL,
                          scale=1.0, mode="nearest"),
    # lmnt's layout at its own mel size (128 bands, hop 300): what `wavegrad voice import --preset lmnt-22k` takes.
    "tiny-lmnt-128": dict(n_mels=128, first=48, up=[32, 32, 16, 8, 8], down=[4, 8, 8, 16, 32], factors=[5, 5, 3, 2, 2], dil=LMNT_DIL,
                          scale=1.0, mode="nearest"),
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
    if name == "tiny-paper":
        # Gradients of a WaveGrad-style L1 loss, for the backward-pass parity test.
        target = torch.randn(audio.shape, generator=g)
        loss = (m(audio, mel, level) - target).abs().mean()
        grads = torch.autograd.grad(loss, list(m.parameters()))
        torch.save({"target": target, "loss": loss.detach().reshape(1),
                    **{"grad." + k: gr for (k, _), gr in zip(m.named_parameters(), grads)}}, os.path.join(OUT, f"{name}-grads.pt"))
    torch.save({"mel": mel, "audio": audio, "level": level, "output": out}, os.path.join(OUT, f"{name}-io.pt"))
    with open(os.path.join(OUT, f"{name}.json"), "w") as fh:
        json.dump({"n_mels": cfg["n_mels"], "first_channels": cfg["first"], "up_channels": cfg["up"], "down_channels": cfg["down"],
                   "up_factors": cfg["factors"], "dilations": "paper" if cfg["dil"] == PAPER_DIL else "lmnt",
                   "noise_scale": cfg["scale"], "interpolation": cfg["mode"]}, fh, indent=1)
print("wrote fixtures to", os.path.normpath(OUT))
