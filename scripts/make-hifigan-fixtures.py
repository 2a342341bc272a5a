#!/usr/bin/env python3
"""Reference log-mels of HiFi-GAN's own mel computation (jik876/hifi-gan meldataset.py, which Matcha-TTS and the
vocoders run by sherpa-onnx share), written independently of WaveGradSharp with NumPy only, in float64:

  reflect-pad the waveform by (n_fft - hop)/2 on both sides; frames of n_fft samples every hop samples, no further
  centring (torch.stft(center=False)); periodic Hann window of win_length; |X| = sqrt(re^2 + im^2 + 1e-9);
  librosa's Slaney mel filter bank (Slaney scale, area-normalised triangles, computed on linspace(0, sr/2)
  bin frequencies) rounded to float32 as librosa returns it; ln(max(mel, 1e-5)).

T samples give T // hop frames. Writes tests/fixtures/audio/mel-hifigan-22k-CLIP.npy (float32, [80, frames]) for
the committed clips, and records the settings in tests/fixtures/audio/hifigan-reference.json.

usage: /usr/bin/python3 scripts/make-hifigan-fixtures.py      (Debian's python3-numpy)
"""
import json
import os
import struct
import sys

import numpy as np

SR, N_FFT, WIN, HOP, N_MELS, FMIN, FMAX = 22050, 1024, 1024, 256, 80, 0.0, 8000.0
HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures", "audio")
CLIPS = ["chirp-22k", "word-22k"]


def hz_to_mel(f):
    """Slaney's scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def slaney_filter_bank():
    """[n_mels, n_fft/2 + 1], as librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) builds it."""
    bins = np.linspace(0, SR / 2, 1 + N_FFT // 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), N_MELS + 2))
    widths = np.diff(edges)
    fb = np.zeros((N_MELS, len(bins)))
    for m in range(N_MELS):
        rising = (bins - edges[m]) / widths[m]
        falling = (edges[m + 2] - bins) / widths[m + 1]
        fb[m] = np.maximum(0, np.minimum(rising, falling)) * 2.0 / (edges[m + 2] - edges[m])
    return fb.astype(np.float32).astype(np.float64)


def read_wav(path):
    """16-bit PCM mono WAV → float64 in [-1, 1)."""
    data = open(path, "rb").read()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", path
    pos, fmt, pcm = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            pcm = body
        pos += 8 + size + (size & 1)
    tag, channels, rate, _, _, bits = fmt
    assert tag == 1 and channels == 1 and bits == 16 and rate == SR, (path, fmt)
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0


def hifigan_log_mel(y):
    pad = (N_FFT - HOP) // 2
    y = np.pad(y, (pad, pad), mode="reflect")
    frames = (len(y) - N_FFT) // HOP + 1
    n = np.arange(WIN)
    window = np.zeros(N_FFT)
    left = (N_FFT - WIN) // 2
    window[left:left + WIN] = 0.5 - 0.5 * np.cos(2 * np.pi * n / WIN)   # periodic Hann, centred in n_fft
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    spec = np.fft.rfft(y[idx] * window, axis=1)                           # [frames, n_fft/2 + 1]
    mag = np.sqrt(spec.real ** 2 + spec.imag ** 2 + 1e-9)
    mel = slaney_filter_bank() @ mag.T                                     # [n_mels, frames]
    return np.log(np.maximum(mel, 1e-5))


def write_npy(path, a):
    a = np.ascontiguousarray(a, dtype="<f4")
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % a.shape
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + a.tobytes())


def main():
    out = {}
    for clip in CLIPS:
        y = read_wav(os.path.join(FIX, f"clip-{clip}.wav"))
        m = hifigan_log_mel(y)
        assert m.shape[1] == len(y) // HOP, (m.shape, len(y))
        write_npy(os.path.join(FIX, f"mel-hifigan-22k-{clip}.npy"), m)
        out[clip] = {"samples": len(y), "frames": m.shape[1], "min": float(m.min()), "max": float(m.max())}
        print(f"{clip}: {len(y)} samples -> [{m.shape[0]}, {m.shape[1]}], ln-mel {m.min():.3f} .. {m.max():.3f}")
    settings = dict(sample_rate=SR, n_fft=N_FFT, win_length=WIN, hop_length=HOP, n_mels=N_MELS, f_min=FMIN, f_max=FMAX,
                    padding="reflect (n_fft - hop) / 2 each side, center=False", magnitude="sqrt(re^2 + im^2 + 1e-9)",
                    filter_bank="librosa slaney mel, float32", log="ln(max(x, 1e-5))", numpy=np.__version__, clips=out)
    json.dump(settings, open(os.path.join(FIX, "hifigan-reference.json"), "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
