"""The analysis report of `benches/analysis.rs`, done the Python way (pandas + scipy + statsmodels
+ rliable), timed stage by stage, for the side-by-side figure in README.md.

    cargo bench --bench analysis            # writes target/synthetic_runs/{runs,meta}.csv
    python3 benches/analysis_reference.py   # pip install pandas scipy statsmodels rliable "pandas<3"

Stages whose full cost would take many minutes in Python (rliable's stratified bootstrap with
50,000 resamples, probability of improvement over 1,225 pairs) are timed on a subset and
extrapolated linearly; the output says which. Not a test: prints figures only.
"""
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

root = Path(__file__).resolve().parent.parent / "target" / "synthetic_runs"
if not (root / "runs.csv").exists():
    sys.exit("run `cargo bench --bench analysis` first (it writes target/synthetic_runs/runs.csv)")

timings = {}


def stage(name):
    def wrap(f):
        t = time.perf_counter()
        out = f()
        timings[name] = time.perf_counter() - t
        return out
    return wrap


t0 = time.perf_counter()
runs = pd.read_csv(root / "runs.csv", float_precision="round_trip")
meta = pd.read_csv(root / "meta.csv").set_index("dataset")
runs.loc[runs["status"] != "ok", "score"] = np.nan
runs["chance"] = runs["dataset"].map(meta["chance_score"])
runs["value"] = runs["score"].fillna(runs["chance"])
runs["failed"] = runs["score"].isna() | (runs["score"] <= runs["chance"])
timings["read"] = time.perf_counter() - t0
keys = ["model", "objective", "dataset", "learning_rate", "split"]


@stage("group_stats")
def group_stats():
    g = runs.groupby(keys, sort=False)
    out = g["value"].agg(["mean", "std", "median", "min", "max", "count"])
    out["sem"] = g["value"].sem()
    out["q25"] = g["value"].quantile(0.25)
    out["q75"] = g["value"].quantile(0.75)
    out["iqm"] = g["value"].apply(lambda x: st.trim_mean(x, 0.25))
    t = st.t.ppf(0.975, out["count"] - 1)
    out["t_low"], out["t_high"] = out["mean"] - t * out["sem"], out["mean"] + t * out["sem"]
    k = g["failed"].sum()
    lo, hi = proportion_confint(k, out["count"], alpha=0.05, method="wilson")
    out["w_low"], out["w_high"] = lo, hi
    return out


@stage("best_lr")
def best():
    means = runs.groupby(keys, sort=False)["value"].mean().reset_index()
    means = means.sort_values(["model", "objective", "dataset", "learning_rate"])
    idx = means.groupby(["model", "objective", "dataset"])["value"].idxmax()
    return means.loc[idx]


best_lr = best
best_scores = {
    (r.model, r.objective, r.dataset): runs[(runs.model == r.model) & (runs.objective == r.objective) & (runs.dataset == r.dataset) & (runs.learning_rate == r.learning_rate)]["value"].to_numpy()
    for r in best_lr.itertuples()
}


@stage("expected_max")
def expected_max():
    out = []
    for (m, o, d), g in runs.groupby(["model", "objective", "dataset"]):
        v = np.sort(g["value"].to_numpy()); n = len(v); i = np.arange(1, n + 1)
        for b in range(1, n + 1):
            w = (i / n) ** b - ((i - 1) / n) ** b
            e = (w * v).sum(); out.append((m, o, d, b, e, np.sqrt((w * (v - e) ** 2).sum())))
    return out


@stage("bootstrap_ci")
def bootstrap():
    out = []
    rng = np.random.default_rng(0)
    for key, x in best_scores.items():
        for method in ("percentile", "basic", "BCa"):
            r = st.bootstrap((x,), np.mean, method=method, n_resamples=9999, rng=rng)
            out.append((key, method, r.confidence_interval))
    return out


systems = list(dict.fromkeys(zip(runs.model, runs.objective)))
datasets = list(dict.fromkeys(runs.dataset))


@stage("tests_unpaired")
def unpaired():
    p_w, p_u = [], []
    for d in datasets:
        for a, b in combinations(systems, 2):
            x, y = best_scores[(*a, d)], best_scores[(*b, d)]
            p_w.append(st.ttest_ind(x, y, equal_var=False).pvalue)
            p_u.append(st.mannwhitneyu(x, y, alternative="two-sided").pvalue)
    return [multipletests(p, method=m)[1] for p in (p_w, p_u) for m in ("holm", "fdr_bh")]


@stage("tests_paired")
def paired_tests():
    out = []
    for a, b in combinations(systems, 2):
        x = np.concatenate([best_scores[(*a, d)] for d in datasets]); y = np.concatenate([best_scores[(*b, d)] for d in datasets])
        out.append((st.ttest_rel(x, y).pvalue, st.wilcoxon(x, y).pvalue))
        xm = [best_scores[(*a, d)].mean() for d in datasets]; ym = [best_scores[(*b, d)].mean() for d in datasets]
        out.append((st.ttest_rel(xm, ym).pvalue, st.wilcoxon(xm, ym).pvalue))
    return out


@stage("ranks")
def ranks():
    m = np.array([[best_scores[(*s, d)].mean() for s in systems] for d in datasets])
    r = np.apply_along_axis(lambda row: st.rankdata(-row), 1, m)
    return r.mean(axis=0), st.friedmanchisquare(*m.T)


def normalised(s):
    cols = []
    for d in datasets:
        c, mx = meta.loc[d, "chance_score"], meta.loc[d, "max_score"]
        cols.append((best_scores[(*s, d)] - c) / (mx - c))
    return np.array(cols).T  # runs x tasks


from rliable import library as rly, metrics  # noqa: E402

scores = {f"{m}/{o}": normalised((m, o)) for m, o in systems}
agg = lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x), metrics.aggregate_median(x), metrics.aggregate_optimality_gap(x)])

sub = dict(list(scores.items())[:2])
t = time.perf_counter()
np.random.seed(0)
rly.get_interval_estimates(sub, agg, reps=50000)
rly.get_interval_estimates(sub, metrics.aggregate_iqm, reps=50000, task_bootstrap=True)
timings["aggregate (extrapolated from 2 of 50 systems)"] = (time.perf_counter() - t) * len(scores) / len(sub)

pairs = list(combinations(scores, 2))
t = time.perf_counter()
rly.get_interval_estimates({f"{a},{b}": (scores[a], scores[b]) for a, b in pairs[:10]}, metrics.probability_of_improvement, reps=2000)
timings[f"poi (extrapolated from 10 of {len(pairs)} pairs)"] = (time.perf_counter() - t) * len(pairs) / 10

pooled = np.concatenate([v.ravel() for v in scores.values()])
taus = np.unique(np.round(np.quantile(pooled, np.arange(1, 20) * 0.05), 4))
t = time.perf_counter()
rly.create_performance_profile(sub, taus, reps=2000)
timings["performance_profile (extrapolated from 2 of 50 systems)"] = (time.perf_counter() - t) * len(scores) / len(sub)

total = sum(timings.values())
for k, v in timings.items():
    print(f"  {k:<55} {v:8.2f} s")
print(f"total {total:.1f} s for {len(runs)} runs ({len(systems)} systems x {len(datasets)} datasets)")
