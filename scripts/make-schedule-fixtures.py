#!/usr/bin/python3
"""Reference values for the schedule tests, computed with PyTorch in float64 the way the DDPM and
improved-DDPM reference code defines them. Writes tests/fixtures/schedules.json.
Run with Debian's python3 (apt-get install python3-torch): /usr/bin/python3 scripts/make-schedule-fixtures.py"""
import json, math, os
import torch

torch.set_default_dtype(torch.float64)

def linear(T=1000):
    return torch.linspace(1e-4, 0.02, T)

def cosine(T=1000, s=0.008):
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    return torch.tensor([min(1 - f(i + 1) / f(i), 0.999) for i in range(T)])

def derived(betas):
    alphas = 1 - betas
    ac = torch.cumprod(alphas, 0)
    ac_prev = torch.cat([torch.ones(1), ac[:-1]])
    post_var = betas * (1 - ac_prev) / (1 - ac)
    post_log_clipped = torch.log(torch.cat([post_var[1:2], post_var[1:]]))
    coef1 = betas * torch.sqrt(ac_prev) / (1 - ac)
    coef2 = (1 - ac_prev) * torch.sqrt(alphas) / (1 - ac)
    return dict(betas=betas, alphas_cumprod=ac, posterior_variance=post_var,
                posterior_log_variance_clipped=post_log_clipped, posterior_mean_coef1=coef1, posterior_mean_coef2=coef2)

out = {"torch_version": torch.__version__, "timesteps": [0, 487, 999]}
for name, b in [("ddpm-linear", linear()), ("cosine", cosine())]:
    d = derived(b)
    out[name] = {k: [float(v[t]) for t in out["timesteps"]] for k, v in d.items()}
path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "schedules.json")
with open(path, "w") as fh:
    json.dump(out, fh, indent=1)
print("wrote", os.path.normpath(path))
