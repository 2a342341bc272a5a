#!/usr/bin/python3
"""The ONNX side of scripts/bench-onnxruntime.sh: a WaveGrad network with random weights, in lmnt-com/wavegrad's layout
(scripts/wavegrad_reference.py), exported to ONNX with a dynamic length, with one input and PyTorch's output for a parity
check. `base` is lmnt's network (bench-pytorch.py's, same seed and weights); `small` is the default voice's shape.
usage: /usr/bin/python3 scripts/export-onnx.py base|small FRAMES OUTDIR   (Debian's python3-torch)"""
import os, sys
import numpy as np
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wavegrad_reference import WaveGrad, LMNT_DIL, PAPER_DIL  # noqa: E402

kind, frames, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
if kind == "base":
    net, n_mels, hop = WaveGrad(128, 768, [512, 512, 256, 128, 128], [32, 128, 128, 256, 512], [5, 5, 3, 2, 2], LMNT_DIL, 1.0, "nearest"), 128, 300
else:
    net, n_mels, hop = WaveGrad(80, 384, [256, 256, 128, 64, 64], [16, 64, 64, 128, 256], [4, 4, 4, 2, 2], PAPER_DIL, 5000.0, "nearest"), 80, 256
net.eval()
audio, mel, level = torch.randn(1, frames * hop) * 0.3, torch.rand(1, n_mels, frames) - 4, torch.tensor([0.5])
with torch.no_grad():
    torch.onnx.export(net, (audio, mel, level), os.path.join(out, "net.onnx"), input_names=["audio", "mel", "level"],
                      output_names=["eps"], dynamic_axes={"audio": {1: "t"}, "mel": {2: "f"}, "eps": {1: "t"}}, opset_version=14)
    eps = net(audio, mel, level)
for name, t in [("audio", audio), ("mel", mel), ("eps", eps)]:
    np.save(os.path.join(out, name + ".npy"), t.numpy().astype(np.float32))
print(f"exported {kind}: {sum(p.numel() for p in net.parameters()) / 1e6:.1f} M parameters, {frames} frames of hop {hop}")
