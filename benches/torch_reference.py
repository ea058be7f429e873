"""The same pretraining step as `cargo bench --bench pretrain` in PyTorch eager on CPU: the same
Llama/EuroBERT model (RMSNorm, half-split RoPE, GQA, SwiGLU, untied head), shapes, thread count
and AdamW, f32 and bf16 autocast; MLM masks 40 % of the positions and runs the LM head on those
rows only, as the Rust side does. Prints tokens/s and GFLOP/s with the same FLOP count.

    pip install torch   # CPU wheels are enough
    python3 benches/torch_reference.py [PRESET BATCH SEQ STEPS] [--threads N] [--no-bf16]

On a GPU (`--device cuda`), attention is `scaled_dot_product_attention` (flash or memory-efficient
kernels; `--no-sdpa` for the explicit softmax) and the runs are bf16 autocast (CLM and MLM),
f32 weights and optimizer, as `encoderlab` with `train.dtype = "bf16"`:

    python3 benches/torch_reference.py 210m 4 2048 10 --device cuda
"""
import math, platform, statistics, sys, time

import torch

PRESETS = {  # vocab, hidden, layers, heads, kv heads, inner
    "tiny": (256, 64, 2, 4, 2, 128),
    "small": (8192, 256, 4, 4, 2, 768),
    "210m": (128256, 768, 12, 12, 12, 3072),
}


class Model(torch.nn.Module):
    def __init__(self, V, H, L, NH, NKV, I, T):
        super().__init__()
        self.V, self.H, self.NH, self.NKV, self.HD = V, H, NH, NKV, H // NH
        self.embed = torch.nn.Embedding(V, H)
        self.layers = torch.nn.ModuleList()
        for _ in range(L):
            layer = torch.nn.Module()
            layer.n1, layer.n2 = torch.nn.Parameter(torch.ones(H)), torch.nn.Parameter(torch.ones(H))
            layer.q = torch.nn.Linear(H, NH * self.HD, bias=False)
            layer.k = torch.nn.Linear(H, NKV * self.HD, bias=False)
            layer.v = torch.nn.Linear(H, NKV * self.HD, bias=False)
            layer.o = torch.nn.Linear(NH * self.HD, H, bias=False)
            layer.gate = torch.nn.Linear(H, I, bias=False)
            layer.up = torch.nn.Linear(H, I, bias=False)
            layer.down = torch.nn.Linear(I, H, bias=False)
            self.layers.append(layer)
        self.norm = torch.nn.Parameter(torch.ones(H))
        self.head = torch.nn.Linear(H, V, bias=False)
        for p in self.parameters():
            if p.dim() > 1:
                torch.nn.init.normal_(p, std=0.02)
        inv = 1.0 / (10000.0 ** (torch.arange(0, self.HD, 2).float() / self.HD))
        ang = torch.outer(torch.arange(T).float(), inv)
        emb = torch.cat([ang, ang], -1)
        self.register_buffer("cos", emb.cos())
        self.register_buffer("sin", emb.sin())

    @staticmethod
    def rms(x, w):
        xf = x.float()
        return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype)

    def rot(self, x):
        h = self.HD // 2
        return torch.cat([-x[..., h:], x[..., :h]], -1)

    def forward(self, ids, causal, sdpa=False):
        B, T = ids.shape
        x = self.embed(ids)
        for l in self.layers:
            h = self.rms(x, l.n1)
            q = l.q(h).view(B, T, self.NH, self.HD).transpose(1, 2)
            k = l.k(h).view(B, T, self.NKV, self.HD).transpose(1, 2)
            v = l.v(h).view(B, T, self.NKV, self.HD).transpose(1, 2)
            q, k = q * self.cos + self.rot(q) * self.sin, k * self.cos + self.rot(k) * self.sin
            k, v = k.repeat_interleave(self.NH // self.NKV, 1), v.repeat_interleave(self.NH // self.NKV, 1)
            if sdpa:
                a = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
            else:
                s = q @ k.transpose(-1, -2) / math.sqrt(self.HD)
                if causal:
                    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool, device=s.device), 1), float("-inf"))
                a = s.softmax(-1) @ v
            x = x + l.o(a.transpose(1, 2).reshape(B, T, self.H))
            h = self.rms(x, l.n2)
            x = x + l.down(torch.nn.functional.silu(l.gate(h)) * l.up(h))
        return self.rms(x, self.norm)


def flops_per_token(model, V, H, L, T, head_rows):
    """As the Rust bench: the head's share scaled by the fraction of rows it runs on."""
    body = sum(p.numel() for p in model.parameters()) - 2 * V * H - H * (2 * L + 1)
    return 6 * (body + V * H * head_rows) + 12 * L * T * H


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
    if "--threads" in sys.argv:
        args.remove(str(threads))
    device = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cpu"
    if "--device" in sys.argv:
        args.remove(device)
    gpu = device.startswith("cuda")
    sdpa = (gpu and "--no-sdpa" not in sys.argv) or "--sdpa" in sys.argv
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    preset = args[0] if args else "small"
    B, T, steps = (int(args[1]), int(args[2]), int(args[3])) if len(args) > 3 else (16, 128, 6)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    V, H, L, NH, NKV, I = PRESETS[preset]
    n = 8192 if gpu else 1024
    a = torch.ones(n, n, device=device, dtype=torch.bfloat16 if gpu else torch.float32)
    a @ a
    sync()
    t = time.perf_counter()
    for _ in range(10):
        a @ a
    sync()
    peak = 10 * 2 * n**3 / (time.perf_counter() - t) / 1e9
    model = Model(V, H, L, NH, NKV, I, T).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-5)
    ids = torch.randint(4, V, (B, T), device=device)
    targets = torch.randint(4, V, (B, T), device=device)
    scored = torch.randperm(B * T, device=device)[: int(0.4 * B * T)].sort().values
    name, cpu = cpu_summary()
    if gpu:
        cpu = f"{torch.cuda.get_device_name(device)}, {'sdpa' if sdpa else 'explicit softmax'}"
    print(f"CPU: {name}: {cpu}")
    print(f"{preset}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, batch {B} x {T} tokens, "
          f"{threads} threads, torch {torch.__version__}, {device}; {'bf16' if gpu else 'f32'} matmul {n}^3: {peak:.0f} GFLOP/s [{cpu}]")
    if gpu:
        runs = [("clm bf16 autocast", True, torch.bfloat16), ("mlm bf16 autocast", False, torch.bfloat16)]
    else:
        runs = [("clm f32", True, None), ("mlm f32", False, None)]
        if "--no-bf16" not in sys.argv:
            runs.append(("clm bf16 autocast", True, torch.bfloat16))
    for name, causal, dtype in runs:
        times = []
        for step in range(steps + 1):
            sync()
            t = time.perf_counter()
            with torch.autocast("cuda" if gpu else "cpu", dtype=dtype, enabled=dtype is not None):
                hidden = model(ids, causal, sdpa).reshape(B * T, H)
                # CLM scores every position; MLM only the masked 40 %, whose rows alone go
                # through the head (as the Rust side does)
                logits = model.head(hidden if causal else hidden[scored])
            loss = torch.nn.functional.cross_entropy(logits.float(), targets.view(-1) if causal else targets.view(-1)[scored])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sync()
            if step > 0:
                times.append(time.perf_counter() - t)
        med = statistics.median(times)
        tok_s = B * T / med
        head_rows = 1.0 if causal else len(scored) / (B * T)
        gflops = tok_s * flops_per_token(model, V, H, L, T, head_rows) / 1e9
        print(f"  {name}: step {med * 1e3:.0f} ms (median of {steps}), {tok_s:.0f} tokens/s, "
              f"{gflops:.1f} GFLOP/s = {100 * gflops / peak:.0f} % of the matmul peak ({peak:.0f} GFLOP/s) [{cpu}]")


def cpu_summary():
    """The CPU's name, and its widest vector extensions with the kernels torch dispatches to
    (what `encoderlab::model::kernels::vmath::cpu_summary` prints on the Rust side)."""
    name, flags = platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and name == platform.machine():
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    ext = ["AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"]
    if "avx512_bf16" in flags:
        ext.append("AVX512-BF16")
    ext.append("AMX" if "amx_tile" in flags else "no AMX")
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    return name, f"{', '.join(ext)}; torch kernels {capability}"


if __name__ == "__main__":
    main()
