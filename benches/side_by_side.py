"""Ours against PyTorch on the same pretraining step, in alternating rounds in one run: the
machines these benches run on change speed by up to 1.8x within the hour, so a ratio only
means something between runs that were close in time. Each round runs `cargo bench --bench
pretrain` (our step; optionally a second binary, e.g. the previous commit's, with --before)
and then `benches/torch_reference.py` with the same preset and shapes, and prints tokens/s,
the ratio to PyTorch round by round, and the medians. Prints figures; asserts nothing.

    pip install torch   # CPU wheels are enough
    python3 benches/side_by_side.py [PRESET BATCH SEQ STEPS] [--rounds N] [--before BINARY]

BINARY is a built pretrain bench (target/release/deps/pretrain-*, copied aside before a change).
"""
import re, statistics, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEP = re.compile(r"^\s+(clm|mlm)(?: f32)?: step (\d+) ms .*?, (\d+) tokens/s")


def option(name, default):
    if name in sys.argv:
        i = sys.argv.index(name)
        value = sys.argv[i + 1]
        del sys.argv[i : i + 2]
        return value
    return default


def tokens_per_s(output):
    """{objective: tokens/s} from a bench's or the reference's output."""
    return {m.group(1): int(m.group(3)) for m in map(STEP.match, output.splitlines()) if m}


def run(cmd):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{out.stderr[-2000:]}")
    return out.stdout


def main():
    rounds = int(option("--rounds", "5"))
    before = option("--before", None)
    shape = sys.argv[1:5] if len(sys.argv) > 4 else ["small", "16", "128", "8"]
    ours = ["cargo", "bench", "--quiet", "--bench", "pretrain", "--", *shape, "clm,mlm"]
    torch = [sys.executable, "benches/torch_reference.py", *shape, "--no-bf16"]
    runs = {"ours": ours, "torch": torch}
    if before:
        runs = {"before": [before, *shape, "clm,mlm"], **runs}
    cpu = next((l for l in run(torch).splitlines() if l.startswith("CPU:")), "CPU: unknown")
    print(cpu)
    print(f"{' '.join(shape)}, {rounds} alternating rounds ({', '.join(runs)}), tokens/s")
    table = {name: {"clm": [], "mlm": []} for name in runs}
    for r in range(1, rounds + 1):
        line = []
        for name, cmd in runs.items():
            got = tokens_per_s(run(cmd))
            for objective in ("clm", "mlm"):
                table[name][objective].append(got.get(objective, float("nan")))
            line.append(f"{name} clm {got.get('clm')} mlm {got.get('mlm')}")
        ratios = [
            f"{o} {table['ours'][o][-1] / table['torch'][o][-1]:.2f}x" for o in ("clm", "mlm")
        ]
        print(f"  round {r}: " + " | ".join(line) + " | ours/torch " + ", ".join(ratios), flush=True)
    for objective in ("clm", "mlm"):
        med = {name: statistics.median(table[name][objective]) for name in runs}
        per_round = [a / b for a, b in zip(table["ours"][objective], table["torch"][objective])]
        print(
            f"{objective}: medians "
            + ", ".join(f"{name} {m:.0f}" for name, m in med.items())
            + f"; ours/torch round by round {min(per_round):.2f}-{max(per_round):.2f}x,"
            f" median {statistics.median(per_round):.2f}x"
        )


if __name__ == "__main__":
    main()
