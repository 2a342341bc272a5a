#!/usr/bin/python3
"""Reference data for the audio-frontend parity tests (tests/WaveGradSharp.Audio.Tests).

Writes tests/fixtures/audio/:
  clip-*.wav                 short 16-bit mono test clips (synthetic chirp + harmonics; a spoken word from espeak-ng)
  mel-<preset>-<clip>.npy    torchaudio MelSpectrogram + the preset's log compression, float64 maths, stored float32 [n_mels, frames]
  fbank-<preset>.npy.gz      torchaudio.functional.melscale_fbanks in float64, [n_freqs, n_mels], gzip-compressed .npy
  manifest.json              which clip goes with which preset, and the versions used

Run with Debian's python3 (apt-get install python3-torch python3-torchaudio espeak-ng):
    /usr/bin/python3 scripts/make-audio-fixtures.py
The presets here must match MelConfig.Preset in src/WaveGradSharp.Audio/MelConfig.cs.
"""
import gzip, io, json, os, shutil, subprocess, tempfile, wave
import numpy as np
import torch, torchaudio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "audio")

PRESETS = {
    "hifigan-22k-centered": dict(sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256, n_mels=80, f_min=0.0, f_max=8000.0,
                        mel_scale="slaney", norm="slaney", power=1.0, normalized=False, log="ln"),
    "lmnt-22k": dict(sample_rate=22050, n_fft=2048, win_length=1200, hop_length=300, n_mels=128, f_min=20.0, f_max=22050 / 2,
                     mel_scale="htk", norm=None, power=1.0, normalized=True, log="lmnt"),
    "wavegrad-24k": dict(sample_rate=24000, n_fft=2048, win_length=1200, hop_length=300, n_mels=128, f_min=20.0, f_max=24000 / 2,
                         mel_scale="htk", norm=None, power=1.0, normalized=True, log="lmnt"),
}


def write_wav16(path, x, sr):
    q = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(sr); w.writeframes(q.tobytes())


def chirp(sr, seconds=0.8, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0, f1 = 80.0, 7000.0  # exponential sweep
    k = np.log(f1 / f0) / seconds
    sweep = 0.25 * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)
    harm = sum(0.12 / h * np.sin(2 * np.pi * 220.0 * h * t + h) for h in range(1, 9))
    env = np.minimum(1.0, np.minimum(t, seconds - t) / 0.05)  # 50 ms fades
    noise = 3e-3 * rng.standard_normal(t.size)  # keeps every mel bin well above the log floor
    return env * (sweep + harm) + noise


def spoken_word(sr, seed=2):
    """espeak-ng says 'wave'; resampled to sr with torchaudio, trimmed to 0.8 s, with a small noise floor."""
    if shutil.which("espeak-ng") is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "w.wav")
        subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", p, "wave"], check=True)
        x, r = torchaudio.load(p)
    x = x[0].double()
    if r != sr:
        x = torchaudio.functional.resample(x, r, sr)
    x = x.numpy()
    nz = np.nonzero(np.abs(x) > 0.01)[0]
    x = x[max(0, nz[0] - int(0.05 * sr)):][: int(0.8 * sr)]
    x = 0.8 * x / np.abs(x).max()
    rng = np.random.default_rng(seed)
    return x + 3e-3 * rng.standard_normal(x.size)


def log_compress(mel, kind):
    if kind == "ln":
        return torch.log(torch.clamp(mel, min=1e-5))
    db = 20 * torch.log10(torch.clamp(mel, min=1e-5)) - 20
    return torch.clamp((db + 100) / 100, 0.0, 1.0)


def mel_transform(p):
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=p["sample_rate"], n_fft=p["n_fft"], win_length=p["win_length"], hop_length=p["hop_length"],
        f_min=p["f_min"], f_max=p["f_max"], n_mels=p["n_mels"], power=p["power"], normalized=p["normalized"],
        center=True, pad_mode="reflect", norm=p["norm"], mel_scale=p["mel_scale"])


def save_npy_gz(path, arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(buf.getvalue())


def main():
    os.makedirs(OUT, exist_ok=True)
    clips = {}
    for sr in (22050, 24000):
        tag = f"{sr // 1000}k"
        clips[f"chirp-{tag}"] = (chirp(sr), sr)
        w = spoken_word(sr)
        if w is not None:
            clips[f"word-{tag}"] = (w, sr)
    for name, (x, sr) in clips.items():
        write_wav16(os.path.join(OUT, f"clip-{name}.wav"), x, sr)

    manifest = {"torch": torch.__version__, "torchaudio": torchaudio.__version__, "presets": {}}
    for preset, p in PRESETS.items():
        sr = p["sample_rate"]
        fb = torchaudio.functional.melscale_fbanks(p["n_fft"] // 2 + 1, p["f_min"], p["f_max"], p["n_mels"], sr,
                                                   norm=p["norm"], mel_scale=p["mel_scale"])
        # melscale_fbanks builds its grids with the default dtype: redo it in float64 for the reference.
        torch.set_default_dtype(torch.float64)
        fb64 = torchaudio.functional.melscale_fbanks(p["n_fft"] // 2 + 1, p["f_min"], p["f_max"], p["n_mels"], sr,
                                                     norm=p["norm"], mel_scale=p["mel_scale"])
        torch.set_default_dtype(torch.float32)
        save_npy_gz(os.path.join(OUT, f"fbank-{preset}.npy.gz"), fb64.numpy())
        used = []
        for name, (x, csr) in clips.items():
            if csr != sr:
                continue
            x, _ = torchaudio.load(os.path.join(OUT, f"clip-{name}.wav"))  # the 16-bit samples the C# side will read
            ref = log_compress(mel_transform(p).double()(x[0].double()), p["log"])
            f32 = log_compress(mel_transform(p)(x[0]), p["log"])
            np.save(os.path.join(OUT, f"mel-{preset}-{name}.npy"), ref.numpy().astype("<f4"))
            print(f"{preset:13s} {name:10s} {tuple(ref.shape)}  float32-vs-float64 torchaudio max |diff| = "
                  f"{(f32.double() - ref).abs().max().item():.2e}; fbank float32 vs float64 max |diff| = "
                  f"{(fb.double() - fb64).abs().max().item():.2e}")
            used.append(name)
        manifest["presets"][preset] = {"clips": used, **{k: v for k, v in p.items()}}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
