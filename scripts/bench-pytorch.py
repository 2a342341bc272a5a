#!/usr/bin/python3
"""The PyTorch side of scripts/bench-speed.sh: lmnt-com/wavegrad's `base` network (scripts/wavegrad_reference.py, lmnt's
dilations, level scale 1, 128 mels, hop 300 at 22.05 kHz) run as lmnt's inference runs it: the whole mel in one pass per
step, 6 steps, on this machine's CPU threads, with the few-step sampler's arithmetic. Prints seconds for 6 steps over
SECONDS of audio (best of 3 after a warm-up) and saves the random weights in lmnt's checkpoint layout, so that
`wavegrad voice import` makes the same network for the .NET side.
usage: /usr/bin/python3 scripts/bench-pytorch.py OUT.pt [SECONDS]   (Debian's python3-torch)"""
import os, sys, time
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wavegrad_reference import WaveGrad, LMNT_DIL  # noqa: E402

out, seconds = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
torch.manual_seed(0)
torch.set_num_threads(os.cpu_count())
net = WaveGrad(128, 768, [512, 512, 256, 128, 128], [32, 128, 128, 256, 512], [5, 5, 3, 2, 2], LMNT_DIL, 1.0, "nearest").eval()
torch.save({"model": net.state_dict()}, out)
frames = int(seconds * 22050 / 300)
mel = torch.rand(1, 128, frames)
betas = torch.tensor([0.0001, 0.001, 0.01, 0.05, 0.2, 0.5], dtype=torch.float64)
alphas = 1 - betas
alpha_cum = torch.cumprod(alphas, 0)


def render():
    audio = torch.randn(1, frames * 300)
    for n in range(len(betas) - 1, -1, -1):
        c1 = 1 / alphas[n] ** 0.5
        c2 = betas[n] / (1 - alpha_cum[n]) ** 0.5
        audio = c1 * (audio - c2 * net(audio, mel, torch.tensor([alpha_cum[n] ** 0.5], dtype=torch.float32)).squeeze(1))
        if n > 0:
            sigma = ((1.0 - alpha_cum[n - 1]) / (1.0 - alpha_cum[n]) * betas[n]) ** 0.5
            audio += sigma * torch.randn_like(audio)
        audio = audio.clamp(-1.0, 1.0)
    return audio


with torch.no_grad():
    render()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        render()
        best = min(best, time.perf_counter() - t)
print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads: lmnt base, 6 steps over {frames * 300 / 22050:.2f} s of audio "
      f"in {best:.2f} s (real-time factor {best / (frames * 300 / 22050):.3f})")
