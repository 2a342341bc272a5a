#!/usr/bin/python3
"""The PyTorch side of the `stft` kind's speed: the default voice's network shape (StftDenoiser, `small` with bin gains and
a phase prior: width 256, 8 ConvNeXt blocks of hidden 768, n_fft 1024, hop 256, 80 mels) written as PyTorch code is
usually written (nn.Conv1d for the depthwise convolution, torch.stft / torch.istft), random weights. It times one network
evaluation (STFT, trunk, inverse STFT, preconditioning) over SECONDS of audio in one pass, fp32, on this machine's CPU
threads, best of 3 after a warm-up, and prints seconds per second of audio: compare with `wavegrad bench`'s "network ...
per evaluation" on the same machine in the same session. The phase prior is a random complex spectrogram here: making it
from the mel is the conditioning's work, timed apart on both sides.
usage: /usr/bin/python3 scripts/bench-pytorch-stft.py [SECONDS]   (Debian's python3-torch, with an optimised BLAS:
Debian's python3-torch runs its linear layers through libblas.so.3, and with the reference BLAS that apt installs beside it
the same evaluation takes 12 times as long; `apt-get install libopenblas0-pthread` switches it)"""
import math, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
torch.manual_seed(0)
torch.set_num_threads(os.cpu_count())
N_FFT, HOP, MELS, WIDTH, HIDDEN, BLOCKS, EMB, SIGMA_DATA = 1024, 256, 80, 256, 768, 8, 128, 0.1
BINS, BANDS = N_FFT // 2 + 1, 16


class Block(nn.Module):
    """ConvNeXt block with a noise-level-modulated layer norm, as StftDenoiser's."""

    def __init__(self):
        super().__init__()
        self.dw = nn.Conv1d(WIDTH, WIDTH, 7, padding=3, groups=WIDTH)
        self.norm = nn.LayerNorm(WIDTH, elementwise_affine=False)
        self.mod = nn.Linear(EMB, 2 * WIDTH)
        self.up, self.down = nn.Linear(WIDTH, HIDDEN), nn.Linear(HIDDEN, WIDTH)
        self.scale = nn.Parameter(torch.full((WIDTH,), 1.0 / BLOCKS))

    def forward(self, h, e):  # h [B, F, C]
        x = self.dw(h.transpose(1, 2)).transpose(1, 2)
        scale, shift = self.mod(F.silu(e)).unsqueeze(1).chunk(2, -1)
        x = self.norm(x) * (1 + scale) + shift
        return h + self.down(F.gelu(self.up(x))) * self.scale


class StftDenoiser(nn.Module):
    def __init__(self):
        super().__init__()
        self.input = nn.Linear(2 * BINS + MELS + 2 * BINS + 2 * BANDS, WIDTH)
        self.input_norm = nn.LayerNorm(WIDTH)
        self.embed_in, self.embed_out = nn.Linear(64, EMB), nn.Linear(EMB, EMB)
        self.blocks = nn.ModuleList(Block() for _ in range(BLOCKS))
        self.output_norm = nn.LayerNorm(WIDTH)
        self.head, self.gains, self.prior_gains = nn.Linear(WIDTH, 2 * BINS), nn.Linear(WIDTH, BINS), nn.Linear(WIDTH, 2 * BINS)
        self.register_buffer("window", torch.hann_window(N_FFT))
        self.norm = math.sqrt(N_FFT * 3 / 8)

    def forward(self, audio, mel, prior, a):  # audio [B, T], mel [B, 80, F], prior complex [B, bins, F + 1], a [B]
        a = a.reshape(-1, 1)
        sigma = (1 - a * a).clamp_min(1e-12).sqrt() / a
        norm = (sigma * sigma + SIGMA_DATA ** 2).sqrt()
        c_skip, c_out, c_in, c_noise = SIGMA_DATA ** 2 / norm ** 2, sigma * SIGMA_DATA / norm, 1 / norm, sigma.log() / 4
        x = audio / a
        spec = torch.stft(x * c_in, N_FFT, HOP, window=self.window, center=True, return_complex=True) / self.norm
        frames = spec.shape[2]
        cond = F.pad(mel, (0, frames - mel.shape[2]), mode="replicate")
        p, n = prior[:, :BANDS * 32].unflatten(1, (BANDS, 32)), spec[:, :BANDS * 32].unflatten(1, (BANDS, 32))
        dot = (p.conj() * n).sum(2) / ((p.abs().square().sum(2) * n.abs().square().sum(2)).sqrt() + 1e-6)
        compressed = prior / (prior.abs() + 1).sqrt()
        feats = torch.cat([torch.view_as_real(spec).permute(0, 3, 1, 2).flatten(1, 2), cond,
                           torch.view_as_real(compressed).permute(0, 3, 1, 2).flatten(1, 2), dot.real, dot.imag], 1).transpose(1, 2)
        h = self.input_norm(self.input(feats))
        freqs = torch.exp(torch.arange(32) * (math.log(1000.0) / 31))
        arg = c_noise.reshape(-1, 1) * freqs
        e = self.embed_out(F.silu(self.embed_in(torch.cat([arg.sin(), arg.cos()], 1))))
        for block in self.blocks:
            h = block(h, e)
        h = self.output_norm(h)
        raw = torch.view_as_complex(self.head(h).reshape(h.shape[0], frames, BINS, 2).contiguous()).transpose(1, 2)
        g = torch.view_as_complex(self.prior_gains(h).reshape(h.shape[0], frames, BINS, 2).contiguous()).transpose(1, 2)
        s = (raw + g * prior) * self.norm * c_out.unsqueeze(2) + self.gains(h).transpose(1, 2) * spec * (self.norm / c_in.unsqueeze(2))
        f = torch.istft(s, N_FFT, HOP, window=self.window, center=True, length=audio.shape[1])
        return c_skip * x + f


net = StftDenoiser().eval()
frames = int(seconds * 22050 / HOP)
audio, mel = torch.randn(1, frames * HOP) * 0.1, torch.randn(1, MELS, frames)
prior = torch.randn(1, BINS, frames + 1, dtype=torch.complex64)
level = torch.tensor([0.9])
with torch.no_grad():
    net(audio, mel, prior, level)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        net(audio, mel, prior, level)
        best = min(best, time.perf_counter() - t)
audio_seconds = frames * HOP / 22050
print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads: stft small (bin gains, phase prior), one evaluation over "
      f"{audio_seconds:.2f} s of audio in {best * 1000:.1f} ms ({best / audio_seconds:.4f} s per second of audio)")
