#!/usr/bin/env python3
"""Parity of encoderlab's models with Hugging Face transformers (torch, CPU, float32).

  export: `encoderlab export hf CHECKPOINT` → load the folder with transformers (no custom code)
          → logits on a fixed padded batch, causal (the default call) and bidirectional (a 4D
          mask), against `encoderlab eval logits` on the same batch, with eager and sdpa
          attention: max |difference| at most --tolerance (1e-4), or, for a deep model whose
          float32 rounding exceeds it in either implementation, as close to a float64 run as
          transformers' own float32 (see gguf); also checks that AutoTokenizer encodes like the
          checkpoint's tokenizer.json.
  gguf:   a GGUF file imported by `encoderlab import gguf` → logits against transformers' own
          GGUF loader (`from_pretrained(..., gguf_file=...)`, which dequantizes with gguf-py),
          both measured against a float64 run of transformers' model (a deep model's float32
          rounding exceeds 1e-4 in either implementation), and the rebuilt tokenizer against
          transformers' on the sample and on held-out text.

Needs: pip install torch transformers safetensors (and gguf for the gguf mode).
Exit status 0 when every check passes.

  python3 scripts/hf_parity.py export --checkpoint runs/study/demo/pretrain/mlm40/checkpoints/step-0000400
  python3 scripts/hf_parity.py gguf --gguf data/models/SmolLM2-135M-Instruct.Q4_1.gguf --imported runs/models/smollm2
"""

import argparse
import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

SAMPLE = [
    "The quick brown fox jumps over the lazy dog in 2024, twice.",
    "Masked language modeling hides 40% of the tokens; causal modeling predicts the next one.",
    "  Leading spaces, tabs\tand newlines\nare kept: don't drop them!",
]


def run(cmd):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def fixed_batch(vocab, max_positions, seed=0):
    """3 rows of 24 ids (special-free range), the last two right-padded."""
    rng = np.random.default_rng(seed)
    t = min(24, max_positions)
    ids = rng.integers(low=min(100, vocab - 1), high=vocab, size=(3, t), dtype=np.int64)
    mask = np.ones((3, t), dtype=np.int64)
    mask[1, t - 5:] = 0
    mask[2, t // 2:] = 0
    ids[mask == 0] = 0
    return ids, mask


def transformers_logits(model, ids, mask, dtype=torch.float32):
    """Causal logits with the default call; bidirectional logits with a 4D mask."""
    input_ids = torch.from_numpy(ids)
    attention = torch.from_numpy(mask)
    t = ids.shape[1]
    # an additive float mask (0 = attend): eager attention adds it, sdpa takes it as given
    keys = attention.bool()[:, None, None, :].expand(-1, 1, t, t)
    full = torch.zeros(keys.shape, dtype=dtype).masked_fill(~keys, torch.finfo(dtype).min)
    with torch.no_grad():
        causal = model(input_ids=input_ids, attention_mask=attention).logits.numpy()
        bidirectional = model(input_ids=input_ids, attention_mask=full).logits.numpy()
    return {"causal": causal, "bidirectional": bidirectional}


def compare(ours, theirs, mask, tolerance, label, verdict=True):
    ok = True
    keep = mask.astype(bool)
    for mode in ("causal", "bidirectional"):
        a, b = ours[mode], theirs[mode]
        v = min(a.shape[-1], b.shape[-1])
        diff = np.abs(a[..., :v] - b[..., :v])[keep].max()
        scale = np.abs(b[..., :v][keep]).max()
        good = diff <= tolerance
        ok &= bool(good)
        judged = f"{'OK' if good else 'ABOVE'} (tolerance {tolerance:g})" if verdict else "(for information)"
        print(f"{label} {mode:<13} max |ours - transformers| = {diff:.3e} (logits up to {scale:.2f}) {judged}")
    return ok


def float64_copy(model):
    """The same weights in a fresh float64 model: transformers refuses to recast a model it loaded
    from GGUF in place (`is_quantized`: `.float()` raises in some versions), so the copy is built from
    the config and loaded from the state dict instead."""
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    reference = AutoModelForCausalLM.from_config(config, attn_implementation=config._attn_implementation)
    reference.load_state_dict(model.state_dict())
    return reference.double().eval()


def float64_check(model, ours, theirs32, ids, mask, args, label):
    """A deep model run in float32 drifts from exact arithmetic by more than 1e-4 (most in a
    bidirectional mode it was never trained with), in transformers as here: the criterion is then
    our distance to a float64 run of transformers' model against transformers' own float32
    distance to it."""
    reference = transformers_logits(float64_copy(model), ids, mask, torch.float64)
    keep = mask.astype(bool)
    ok = True
    for mode in ("causal", "bidirectional"):
        mine = np.abs(ours[mode] - reference[mode])[keep].max()
        hf = np.abs(theirs32[mode] - reference[mode])[keep].max()
        good = mine <= max(args.tolerance, args.f32_factor * hf)
        ok &= bool(good)
        print(f"{label} {mode:<13} vs float64: ours {mine:.3e}, transformers float32 {hf:.3e} "
              f"{'OK' if good else 'FAIL'} (at most max({args.tolerance:g}, {args.f32_factor:g} x transformers'))")
    return ok


def our_logits(encoderlab, checkpoint, ids, mask, work):
    batch = work / "batch.safetensors"
    save_file({"input_ids": ids, "attention_mask": mask}, str(batch))
    out = work / "ours.safetensors"
    run([encoderlab, "eval", "logits", checkpoint, "--batch", batch, "--out", out])
    return load_file(str(out))


def check_export(args):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from tokenizers import Tokenizer

    work = Path(tempfile.mkdtemp(prefix="hf_parity_"))
    out = work / "hf"
    run([args.encoderlab, "export", "hf", args.checkpoint, out])
    config = json.loads((out / "config.json").read_text())
    ids, mask = fixed_batch(config["vocab_size"], config["max_position_embeddings"])
    ours = our_logits(args.encoderlab, args.checkpoint, ids, mask, work)
    ok = True
    for impl in ("eager", "sdpa"):
        model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation=impl)
        model.eval()
        theirs = transformers_logits(model, ids, mask)
        if not compare(ours, theirs, mask, args.tolerance, f"export/{impl}"):
            # a deep model (an imported SmolLM2, say) can exceed 1e-4 in float32 in either
            # implementation: then judge both against float64
            print(f"export/{impl}: above {args.tolerance:g}; judged against a float64 run instead")
            ok &= float64_check(model, ours, theirs, ids, mask, args, f"export/{impl}")
    tok = AutoTokenizer.from_pretrained(out)
    reference = Tokenizer.from_file(str(Path(args.checkpoint) / "tokenizer.json"))
    same = all(tok(s, add_special_tokens=False)["input_ids"] == reference.encode(s, add_special_tokens=False).ids
               for s in SAMPLE)
    print(f"export AutoTokenizer encodes the sample like tokenizer.json: {'OK' if same else 'FAIL'}")
    return ok and same


def check_gguf(args):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from tokenizers import Tokenizer

    gguf = Path(args.gguf).resolve()
    work = Path(tempfile.mkdtemp(prefix="gguf_parity_"))
    config = json.loads((Path(args.imported) / "config.json").read_text())
    ids, mask = fixed_batch(config["vocab_size"], config["max_position_embeddings"])
    ours = our_logits(args.encoderlab, args.imported, ids, mask, work)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    theirs32 = transformers_logits(model, ids, mask)
    compare(ours, theirs32, mask, args.tolerance, "gguf", verdict=False)
    ok = float64_check(model, ours, theirs32, ids, mask, args, "gguf")
    theirs = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    mine = Tokenizer.from_file(str(Path(args.imported) / "tokenizer.json"))
    lines = list(SAMPLE)
    if args.text:
        lines += [l for l in Path(args.text).read_text().splitlines() if l.strip()][: args.lines]
    agree = sum(theirs(l, add_special_tokens=False)["input_ids"] == mine.encode(l, add_special_tokens=False).ids
                for l in lines)
    same = agree == len(lines)
    print(f"gguf tokenizer: {agree}/{len(lines)} lines encoded identically to transformers' GGUF tokenizer "
          f"{'OK' if same else 'FAIL'}")
    return ok and same


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["export", "gguf"])
    p.add_argument("--encoderlab", default="target/release/encoderlab")
    p.add_argument("--checkpoint", help="export: the checkpoint folder to export")
    p.add_argument("--gguf", help="gguf: the .gguf file")
    p.add_argument("--imported", help="gguf: the folder `encoderlab import gguf` wrote from it")
    p.add_argument("--text", help="gguf: a text file whose lines also go through both tokenizers")
    p.add_argument("--lines", type=int, default=200)
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--f32-factor", type=float, default=4.0,
                   help="gguf: our float32 error may be this many times transformers' own")
    args = p.parse_args()
    torch.manual_seed(0)
    ok = check_export(args) if args.mode == "export" else check_gguf(args)
    print("PARITY OK" if ok else "PARITY FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
