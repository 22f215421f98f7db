#!/usr/bin/env python3
"""Check a model against issue #4's bar from an `rlscale evaluate` summary.csv.

usage: python3 docs/model/bar.py SUMMARY_CSV MODEL_LABEL > bar.md

- SLO attainment >= the scenario's target wherever some tuned rule reaches it;
- GPU-hours <= 0.8 x default HPA's;
- objective <= the best tuned rule's on >= 4 of the 6 synthetic families (a family counts when the
  model is at or below the best tuned rule on both of its service profiles).
"""
import csv
import sys
from collections import defaultdict

path, model = sys.argv[1], sys.argv[2]
rows = defaultdict(dict)
for r in csv.DictReader(open(path)):
    rows[r["scenario"]][r["policy"]] = r

f = lambda r, k: float(r[k])
families = ["steady", "diurnal", "bursty", "flash-crowd", "ramp-step", "sparse"]
print(f"| scenario | model GPU-h | default HPA GPU-h | ratio (≤ 0.8) | model SLO % | target | best tuned at target | model objective $ | best tuned objective $ (rule) |")
print("|---|---:|---:|---:|---:|---:|---|---:|---:|")
slo_ok = gpu_ok = 0
n = 0
fam_win = defaultdict(list)
for sc in sorted(rows):
    p = rows[sc]
    if model not in p or "hpa" not in p:
        continue
    n += 1
    m, h = p[model], p["hpa"]
    tuned = {k: v for k, v in p.items() if k.endswith("-tuned")}
    target = f(m, "slo_target_pct")
    reach = [k for k, v in tuned.items() if f(v, "slo_attainment_pct_mean") >= target]
    best_k = min(tuned, key=lambda k: f(tuned[k], "objective_usd_mean"))
    best = f(tuned[best_k], "objective_usd_mean")
    ratio = f(m, "gpu_hours_mean") / f(h, "gpu_hours_mean")
    slo = f(m, "slo_attainment_pct_mean")
    s_ok = slo >= target or not reach
    slo_ok += s_ok
    gpu_ok += ratio <= 0.8
    obj = f(m, "objective_usd_mean")
    fam = next((x for x in families if sc.startswith(x + "-")), None)
    if fam:
        fam_win[fam].append(obj <= best)
    print(
        f"| {sc} | {f(m, 'gpu_hours_mean'):.1f} | {f(h, 'gpu_hours_mean'):.1f} | {ratio:.2f} {'✓' if ratio <= 0.8 else '✗'} "
        f"| {slo:.2f} {'✓' if s_ok else '✗'} | {target:.0f} | {', '.join(sorted(reach)) or '–'} "
        f"| {obj:.2f} {'✓' if obj <= best else '✗'} | {best:.2f} ({best_k}) |"
    )
wins = sum(all(v) for v in fam_win.values())
print()
print(f"- SLO ≥ target where a tuned rule reaches it: {slo_ok} of {n} scenarios")
print(f"- GPU-hours ≤ 0.8 × default HPA's: {gpu_ok} of {n} scenarios")
print(f"- objective ≤ the best tuned rule's on both profiles: {wins} of {len(fam_win)} synthetic families "
      f"({', '.join(k for k, v in fam_win.items() if all(v)) or 'none'})")
