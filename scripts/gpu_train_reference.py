#!/usr/bin/env python3
"""Fallback GPU trainer for when TorchSharp cannot load a GPU machine's libtorch: trains the same network
(wavegrad_reference.WaveGrad, the lmnt-com/wavegrad layout) with the same recipe as `wavegrad train vocoder`
(continuous noise levels from linspace(1e-6, 0.01, 1000), L1 on eps, Adam, grad clip 1.0, EMA with warm-up),
on mels made with torchaudio using the hifigan-22k preset, and writes safetensors weights with the same names,
which `wavegrad train vocoder --init-from` and voice bundles read.
usage: gpu_train_reference.py DATA_DIR OUT_DIR --minutes M [--batch B] [--lr LR] [--crop 24]"""
import argparse, json, math, os, sys, time, wave
import numpy as np
import torch
import torchaudio
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wavegrad_reference import WaveGrad, PAPER_DIL  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("data"); ap.add_argument("out")
ap.add_argument("--minutes", type=float, default=7); ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--lr", type=float, default=2e-4); ap.add_argument("--crop", type=int, default=24)
ap.add_argument("--seed", type=int, default=1234)
a = ap.parse_args()
dev = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(a.seed)
SR, HOP = 22050, 256
melspec = torchaudio.transforms.MelSpectrogram(sample_rate=SR, n_fft=1024, win_length=1024, hop_length=HOP, f_min=0, f_max=8000,
                                               n_mels=80, power=1.0, norm="slaney", mel_scale="slaney", center=True, pad_mode="reflect")
clips = []
val = set(open(os.path.join(a.data, "val.txt")).read().split()) if os.path.exists(os.path.join(a.data, "val.txt")) else set()
for root, _, files in os.walk(a.data):
    for f in sorted(files):
        if not f.endswith(".wav") or f[:-4] in val:
            continue
        with wave.open(os.path.join(root, f)) as w:
            assert w.getframerate() == SR and w.getsampwidth() == 2 and w.getnchannels() == 1, f
            x = torch.from_numpy(np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0)
        m = torch.log(torch.clamp(melspec(x), min=1e-5))
        if m.shape[1] < a.crop:
            continue
        x = torch.nn.functional.pad(x, (0, m.shape[1] * HOP - x.shape[0]))
        clips.append((x, m))
print(f"reference trainer: {len(clips)} clips, {sum(c[0].numel() for c in clips) / SR / 60:.1f} min, device {dev}", flush=True)
cfg = dict(n_mels=80, first=384, up=[256, 256, 128, 64, 64], down=[16, 64, 64, 128, 256], factors=[4, 4, 4, 2, 2], dil=PAPER_DIL, scale=5000.0, mode="nearest")
net = WaveGrad(**cfg).to(dev)
for n, p in net.named_parameters():  # lmnt-com/wavegrad's init: orthogonal convs, Xavier FiLM, zero biases
    if p.dim() == 1: torch.nn.init.zeros_(p)
    elif n.startswith("film."): torch.nn.init.xavier_uniform_(p)
    else: torch.nn.init.orthogonal_(p)
opt = torch.optim.Adam(net.parameters(), lr=a.lr)
ema = {k: v.detach().clone().float() for k, v in net.state_dict().items()}
betas = np.linspace(1e-6, 0.01, 1000)
levels = torch.tensor(np.concatenate([[1.0], np.sqrt(np.cumprod(1 - betas))]), dtype=torch.float32, device=dev)
start, step = time.time(), 0
while time.time() - start < a.minutes * 60:
    idx = torch.randint(len(clips), (a.batch,))
    aud, mel = [], []
    for i in idx.tolist():
        x, m = clips[i]
        s = int(torch.randint(m.shape[1] - a.crop + 1, (1,)))
        mel.append(m[:, s:s + a.crop]); aud.append(x[s * HOP:(s + a.crop) * HOP])
    aud, mel = torch.stack(aud).to(dev), torch.stack(mel).to(dev)
    s = torch.randint(1, 1001, (a.batch,), device=dev)
    lv = levels[s - 1] + torch.rand(a.batch, device=dev) * (levels[s] - levels[s - 1])
    noise = torch.randn_like(aud)
    noisy = lv[:, None] * aud + (1 - lv[:, None] ** 2).sqrt() * noise
    loss = (net(noisy, mel, lv) - noise).abs().mean()
    opt.zero_grad(set_to_none=True); loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0); opt.step(); step += 1
    d = min(0.9999, (1 + step - 1) / (10 + step - 1))
    with torch.no_grad():
        for k, v in net.state_dict().items():
            ema[k].mul_(d).add_(v.float(), alpha=1 - d)
    if step % 200 == 0:
        el = time.time() - start
        print(f"step {step} loss {loss.item():.4f} {step / el:.2f} steps/s {step * a.batch * a.crop * HOP / el:.0f} samples/s", flush=True)
from safetensors.torch import save_file  # noqa: E402
os.makedirs(a.out, exist_ok=True)
save_file({k: v.contiguous().cpu() for k, v in ema.items()}, os.path.join(a.out, "model.safetensors"))
save_file({k: v.detach().float().contiguous().cpu() for k, v in net.state_dict().items()}, os.path.join(a.out, "model-raw.safetensors"))
json.dump({"steps": step, "batch": a.batch, "crop": a.crop, "lr": a.lr, "minutes": (time.time() - start) / 60, "trainer": "scripts/gpu_train_reference.py",
           "torch": torch.__version__, "device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"},
          open(os.path.join(a.out, "reference-train.json"), "w"))
print(f"reference trainer: {step} steps in {(time.time() - start) / 60:.1f} min", flush=True)
