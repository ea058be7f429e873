#!/usr/bin/env python3
"""Parity of encoderlab's models with Hugging Face transformers (torch, CPU, float32).

  export: `encoderlab export hf CHECKPOINT` → load the folder with transformers → outputs on a
          fixed padded batch against `encoderlab eval logits` on the same batch, with eager and
          sdpa attention: max |difference| at most --tolerance (1e-4), or, for a deep model
          whose float32 rounding exceeds it in either implementation, as close to a float64 run
          as transformers' own float32 (see gguf).
          - a causal checkpoint loads as LlamaForCausalLM with no custom code: its default call
            (causal) and a call with a 4D mask (bidirectional) are both checked;
          - a bidirectional checkpoint (MLM, or --attention bidirectional) loads through the
            shipped modeling_encoderlab.py (trust_remote_code=True) as a masked LM whose default
            call with the usual 2D mask is bidirectional; loading it without trust_remote_code
            must fail rather than run it causally;
          - a fine-tuned model (runs/finetune/RUN/model) loads with its Auto class (sequence or
            token classification, QA, or AutoModel for an embedding model, whose mean-pooled unit
            embedding is compared; and through sentence-transformers when it is installed); with
            --examples (a JSONL split file: text, [text_pair,] label), a sequence classifier also
            scores that split in transformers, tokenized by AutoTokenizer from the text, and every
            prediction must agree with the run's instances.jsonl.
          Also checks that AutoTokenizer encodes like the checkpoint's tokenizer.json (a
          fine-tuned model's: followed by the separator, as fine-tuning did).
  gguf:   a GGUF file imported by `encoderlab import gguf` → logits against transformers' own
          GGUF loader (`from_pretrained(..., gguf_file=...)`, which dequantizes with gguf-py),
          both measured against a float64 run of transformers' model (a deep model's float32
          rounding exceeds 1e-4 in either implementation), and the rebuilt tokenizer against
          transformers' on the sample and on held-out text.

Needs: pip install torch transformers safetensors (and gguf for the gguf mode,
sentence-transformers optionally). Exit status 0 when every check passes.

  python3 scripts/hf_parity.py export --checkpoint runs/study/demo/pretrain/mlm40/checkpoints/step-0000400
  python3 scripts/hf_parity.py export --checkpoint runs/finetune/RUN/model --examples data/x/test.jsonl
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


def compare_one(a, b, mask, tolerance, label, verdict=True):
    """max |a - b| over the non-padding positions of `mask` (None: an output per sequence, every
    row), printed and judged against `tolerance` (or, without `verdict`, printed for information)."""
    v = min(a.shape[-1], b.shape[-1])
    diff, scale = np.abs(a[..., :v] - b[..., :v]), np.abs(b[..., :v])
    if mask is not None:
        keep = mask.astype(bool)
        diff, scale = diff[keep], scale[keep]
    d, good = diff.max(), diff.max() <= tolerance
    judged = f"{'OK' if good else 'ABOVE'} (tolerance {tolerance:g})" if verdict else "(for information)"
    print(f"{label:<40} max |ours - transformers| = {d:.3e} (outputs up to {scale.max():.2f}) {judged}")
    return bool(good)


def compare(ours, theirs, mask, tolerance, label, verdict=True):
    """compare_one for the causal and the bidirectional logits."""
    return all([compare_one(ours[m], theirs[m], mask, tolerance, f"{label} {m}", verdict)
                for m in ("causal", "bidirectional")])


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
    return all([judge_float64(ours[m], theirs32[m], reference[m], mask, args, f"{label} {m}")
                for m in ("causal", "bidirectional")])


def judge_float64(ours, theirs32, exact, mask, args, label):
    """Our distance to a float64 run against transformers' own float32 distance to it: at most
    max(tolerance, f32_factor x transformers')."""
    keep = mask.astype(bool)
    mine, hf = np.abs(ours - exact)[keep].max(), np.abs(theirs32 - exact)[keep].max()
    good = mine <= max(args.tolerance, args.f32_factor * hf)
    print(f"{label} vs float64: ours {mine:.3e}, transformers float32 {hf:.3e} {'OK' if good else 'FAIL'} "
          f"(at most max({args.tolerance:g}, {args.f32_factor:g} x transformers'))")
    return bool(good)


def our_logits(encoderlab, checkpoint, ids, mask, work):
    batch = work / "batch.safetensors"
    save_file({"input_ids": ids, "attention_mask": mask}, str(batch))
    out = work / "ours.safetensors"
    run([encoderlab, "eval", "logits", checkpoint, "--batch", batch, "--out", out])
    return load_file(str(out))


def export_folder(args, work):
    out = work / "hf"
    cmd = [args.encoderlab, "export", "hf", args.checkpoint, out]
    if args.attention:
        cmd += ["--attention", args.attention]
    run(cmd)
    return out, json.loads((out / "config.json").read_text())


def refuses_without_remote_code(out):
    """An export with custom code must not load silently without it (it would run causally)."""
    from transformers import AutoModel

    try:
        AutoModel.from_pretrained(out, trust_remote_code=False)
    except Exception as e:  # transformers raises ValueError; any refusal will do
        print(f"export without trust_remote_code: refused ({type(e).__name__}) OK")
        return True
    print("export without trust_remote_code: loaded, and would run as something it was not trained as FAIL")
    return False


def masked_lm_logits(model, ids, mask):
    """A bidirectional export's logits: its default call with the usual 2D mask."""
    with torch.no_grad():
        logits = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits
    return {"bidirectional": logits.numpy()}


def check_pretrained(args, out, config, work):
    import transformers

    ids, mask = fixed_batch(config["vocab_size"], config["max_position_embeddings"])
    ours = our_logits(args.encoderlab, args.checkpoint, ids, mask, work)
    custom = config.get("model_type") == "encoderlab"
    ok = refuses_without_remote_code(out) if custom else True
    for impl in ("eager", "sdpa"):
        label = f"export/{impl}"
        if custom:
            model = transformers.AutoModelForMaskedLM.from_pretrained(
                out, dtype=torch.float32, attn_implementation=impl, trust_remote_code=True).eval()
            print(f"{label}: {type(model).__name__}, the default call with a 2D mask")
            theirs = masked_lm_logits(model, ids, mask)
            exact = lambda: masked_lm_logits(model.double(), ids, mask)
        else:
            model = transformers.AutoModelForCausalLM.from_pretrained(
                out, dtype=torch.float32, attn_implementation=impl).eval()
            theirs = transformers_logits(model, ids, mask)
            exact = lambda: transformers_logits(float64_copy(model), ids, mask, torch.float64)
        if all([compare_one(ours[m], theirs[m], mask, args.tolerance, f"{label} {m}") for m in theirs]):
            continue
        # a deep model (an imported SmolLM2, say) can exceed 1e-4 in float32 in either
        # implementation: then judge both against float64
        print(f"{label}: above {args.tolerance:g}; judged against a float64 run instead")
        reference = exact()
        ok &= all([judge_float64(ours[m], theirs[m], reference[m], mask, args, f"{label} {m}") for m in theirs])
    return ok


AUTO_CLASSES = {
    "SequenceClassification": "AutoModelForSequenceClassification",
    "TokenClassification": "AutoModelForTokenClassification",
    "QuestionAnswering": "AutoModelForQuestionAnswering",
}


def task_outputs(model, kind, ids, mask):
    """The output encoderlab's `eval logits` writes for a fine-tuned model."""
    input_ids, attention = torch.from_numpy(ids), torch.from_numpy(mask)
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention)
    if kind == "QuestionAnswering":
        return torch.stack([out.start_logits, out.end_logits], dim=-1).numpy()
    if kind == "Model":
        m = attention[..., None].float()
        pooled = (out.last_hidden_state * m).sum(1) / m.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out.logits.numpy()


def check_finetuned(args, out, config, work):
    import transformers

    architecture = config["architectures"][0]
    kind = next((k for k in AUTO_CLASSES if architecture.endswith(k)), "Model")
    auto = getattr(transformers, AUTO_CLASSES.get(kind, "AutoModel"))
    custom = config.get("model_type") == "encoderlab"
    ok = refuses_without_remote_code(out) if custom else True
    ids, mask = fixed_batch(config["vocab_size"], config["max_position_embeddings"])
    # padded as the tokenizer pads: transformers' last-token classifier finds the padding by id
    ids[mask == 0] = config["pad_token_id"]
    ours = our_logits(args.encoderlab, args.checkpoint, ids, mask, work)["outputs"]
    for impl in ("eager", "sdpa"):
        model = auto.from_pretrained(out, dtype=torch.float32, attn_implementation=impl,
                                     trust_remote_code=custom).eval()
        theirs = task_outputs(model, kind, ids, mask)
        per_token = kind in ("TokenClassification", "QuestionAnswering")
        ok &= compare_one(ours, theirs, mask if per_token else None, args.tolerance,
                          f"export/{impl} {type(model).__name__}")
    if kind == "Model":
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            print("sentence-transformers is not installed: its check is SKIPPED")
        else:
            st = SentenceTransformer(str(out), device="cpu", trust_remote_code=custom)
            texts = SAMPLE
            tok = transformers.AutoTokenizer.from_pretrained(out, trust_remote_code=custom)
            batch = tok(texts, padding=True, truncation=True, return_tensors="np")
            mine = our_logits(args.encoderlab, args.checkpoint, batch["input_ids"].astype(np.int64),
                              batch["attention_mask"].astype(np.int64), work)["outputs"]
            theirs = st.encode(texts, convert_to_numpy=True, normalize_embeddings=False)
            ok &= compare_one(mine, theirs, None, args.tolerance,
                              "sentence-transformers embeddings")
    if args.examples and kind == "SequenceClassification":
        ok &= check_predictions(args, out, config, auto, custom)
    return ok


def check_predictions(args, out, config, auto, custom):
    """Scores a split in transformers from its text and compares every prediction with the run's
    per-instance accuracy (instances.jsonl): the model scores the same in transformers."""
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(out, trust_remote_code=custom)
    model = auto.from_pretrained(out, dtype=torch.float32, trust_remote_code=custom).eval()
    label2id = config.get("label2id", {})
    rows = [json.loads(l) for l in Path(args.examples).read_text().splitlines() if l.strip()]
    pair_field = args.text_pair_field
    agree, correct = 0, 0
    run_dir = Path(args.checkpoint).resolve().parent
    ours = {}
    for l in (run_dir / "instances.jsonl").read_text().splitlines():
        r = json.loads(l)
        if r["split"] == args.split and r["metric"] == "accuracy":
            ours[str(r["id"])] = r["score"]
    for start in range(0, len(rows), 32):
        chunk = rows[start:start + 32]
        texts = [r[args.text_field] for r in chunk]
        pairs = [r[pair_field] for r in chunk] if pair_field else None
        batch = tok(texts, pairs, padding=True, truncation=True, return_tensors="pt")
        with torch.no_grad():
            predicted = model(**batch).logits.argmax(-1).tolist()
        for i, (r, p) in enumerate(zip(chunk, predicted)):
            label = r[args.label_field]
            gold = label2id[label] if isinstance(label, str) else int(label)
            rid = next((str(r[k]) for k in ("idx", "id", "_id") if k in r), str(start + i + 1))
            score = float(p == gold)
            correct += score
            agree += ours.get(rid) == score
    accuracy = correct / max(len(rows), 1)
    result = json.loads((run_dir / "result.json").read_text())
    recorded = [s for s in result["all_scores"] if s[0] == args.split and s[1] == "accuracy"]
    same = agree == len(rows) and len(ours) == len(rows)
    print(f"transformers on {args.examples}: accuracy {accuracy:.4f} (the run's {args.split}: "
          f"{recorded[0][2] if recorded else 'n/a'}), {agree}/{len(rows)} predictions as in instances.jsonl "
          f"{'OK' if same else 'FAIL'}")
    return same


def check_tokenizer(args, out, config):
    from transformers import AutoTokenizer
    from tokenizers import Tokenizer

    # a folder with custom code: transformers asks before it even reads the config
    tok = AutoTokenizer.from_pretrained(out, trust_remote_code=config.get("model_type") == "encoderlab")
    reference = Tokenizer.from_file(str(Path(args.checkpoint) / "tokenizer.json"))
    task = json.loads((Path(args.checkpoint) / "config.json").read_text()).get("encoderlab_task")
    if task:
        # a fine-tuned model's inputs end with the separator
        sep = task["sep_token_id"]
        same = all(tok(s)["input_ids"] == reference.encode(s, add_special_tokens=False).ids + [sep] for s in SAMPLE)
        pair = tok(SAMPLE[0], SAMPLE[1])["input_ids"]
        enc = lambda s: reference.encode(s, add_special_tokens=False).ids
        same &= pair == enc(SAMPLE[0]) + [sep] + enc(SAMPLE[1]) + [sep]
        what = "the sample (single and pair) like fine-tuning"
    else:
        same = all(tok(s, add_special_tokens=False)["input_ids"] == reference.encode(s, add_special_tokens=False).ids
                   for s in SAMPLE)
        what = "the sample like tokenizer.json"
    print(f"export AutoTokenizer encodes {what}: {'OK' if same else 'FAIL'}")
    return same


def check_export(args):
    work = Path(tempfile.mkdtemp(prefix="hf_parity_"))
    out, config = export_folder(args, work)
    print(f"export: {config['architectures'][0]} (model_type {config['model_type']})")
    if "encoderlab_task" in json.loads((Path(args.checkpoint) / "config.json").read_text()):
        ok = check_finetuned(args, out, config, work)
    else:
        ok = check_pretrained(args, out, config, work)
    return check_tokenizer(args, out, config) and ok


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
    p.add_argument("--checkpoint", help="export: the checkpoint folder or fine-tuned model (RUN/model) to export")
    p.add_argument("--attention", choices=["causal", "bidirectional"],
                   help="export: passed to `export hf --attention` (a checkpoint only)")
    p.add_argument("--examples", help="export, a sequence classifier: a JSONL split file to score in transformers")
    p.add_argument("--split", default="test", help="export: the split --examples is (its rows in instances.jsonl)")
    p.add_argument("--text-field", default="text")
    p.add_argument("--text-pair-field")
    p.add_argument("--label-field", default="label")
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
