#!/usr/bin/python3
"""PyTorch baseline for the render-speed table: the same `small` network (scripts/wavegrad_reference.py, paper
dilations, hop 256, 80 mels) run forward over 5.57 s of audio at 22.05 kHz, as one pass and in 128-frame pieces
with 16 frames of context, on this machine's CPU threads. Prints seconds per network evaluation.
usage: /usr/bin/python3 scripts/bench-pytorch.py   (Debian's python3-torch)"""
import os, sys, time
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wavegrad_reference import WaveGrad, PAPER_DIL  # noqa: E402

torch.manual_seed(0)
torch.set_num_threads(os.cpu_count())
net = WaveGrad(80, 384, [256, 256, 128, 64, 64], [16, 64, 64, 128, 256], [4, 4, 4, 2, 2], PAPER_DIL, 5000.0, "nearest").eval()
frames = 480  # 5.57 s
mel, audio, level = torch.randn(1, 80, frames), torch.randn(1, frames * 256), torch.tensor([0.5])


def pieces():
    for s in range(0, frames, 128):
        a, b = max(0, s - 16), min(frames, s + 128 + 16)
        net(audio[:, a * 256:b * 256], mel[:, :, a:b], level)


for name, fn in [("one pass", lambda: net(audio, mel, level)), ("128-frame pieces", pieces)]:
    with torch.no_grad():
        fn()
        t = time.perf_counter()
        for _ in range(3):
            fn()
        dt = (time.perf_counter() - t) / 3
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, {name}: {dt:.3f} s per evaluation of 5.57 s "
          f"(6 steps: real-time factor {6 * dt / 5.57:.2f})")
