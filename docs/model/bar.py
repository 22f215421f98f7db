#!/usr/bin/env python3
"""Check a model against issue #19's bar from an `rlscale evaluate` summary.csv.

usage: python3 docs/model/bar.py SUMMARY_CSV[,SUMMARY_CSV...] MODEL_LABEL [PLANNER_LABEL] > bar.md

The summaries (several, comma-separated: e.g. the baselines' run once and each model's run) must
hold the model, default HPA (`hpa`) and the tuned rules (`*-tuned`) on the same scenarios and seeds;
the planner's rows (default label `planner`) are optional.

- (a) SLO attainment >= the scenario's target wherever some tuned rule reaches it;
- (b) objective <= default HPA's on every scenario;
- (c) objective <= the best tuned rule's on both profiles of >= 4 of the 6 synthetic families;
- (d) summed objective <= 0.5 x default HPA's, and summed GPU-hours <= default HPA's;
- (e) the hindsight planner's objective <= every policy's on every scenario.

Exit code 0 whether or not the bar is met: the report says which criteria hold.
"""
import csv
import sys
from collections import defaultdict

path, model = sys.argv[1], sys.argv[2]
planner = sys.argv[3] if len(sys.argv) > 3 else "planner"
rows = defaultdict(dict)
for one in path.split(","):
    for r in csv.DictReader(open(one)):
        rows[r["scenario"]][r["policy"]] = r

f = lambda r, k: float(r[k])
families = ["steady", "diurnal", "bursty", "flash-crowd", "ramp-step", "sparse"]
print("| scenario | model GPU-h | HPA GPU-h | model SLO % | target | best tuned at target | model $ | HPA $ | best tuned $ (rule) | planner $ | policies below the planner |")
print("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|")
n = slo_ok = hpa_ok = 0
fam_win = defaultdict(list)
sums = defaultdict(float)
beats_planner = 0
for sc in sorted(rows):
    p = rows[sc]
    if model not in p or "hpa" not in p:
        continue
    n += 1
    m, h = p[model], p["hpa"]
    tuned = {k: v for k, v in p.items() if k.endswith("-tuned")}
    target = f(m, "slo_target_pct")
    reach = [k for k, v in tuned.items() if f(v, "slo_attainment_pct_mean") >= target]
    best_k = min(tuned, key=lambda k: f(tuned[k], "objective_usd_mean")) if tuned else None
    best = f(tuned[best_k], "objective_usd_mean") if best_k else float("inf")
    slo = f(m, "slo_attainment_pct_mean")
    s_ok = slo >= target or not reach
    slo_ok += s_ok
    obj, hobj = f(m, "objective_usd_mean"), f(h, "objective_usd_mean")
    hpa_ok += obj <= hobj
    sums["model_obj"] += obj
    sums["hpa_obj"] += hobj
    sums["model_gpu"] += f(m, "gpu_hours_mean")
    sums["hpa_gpu"] += f(h, "gpu_hours_mean")
    fam = next((x for x in families if sc.startswith(x + "-")), None)
    if fam:
        fam_win[fam].append(obj <= best)
    if planner in p:
        pj = f(p[planner], "objective_usd_mean")
        below = sorted(k for k, v in p.items() if k != planner and f(v, "objective_usd_mean") < pj)
        beats_planner += bool(below)
        pcell, bcell = f"{pj:.2f}", (", ".join(below) or "none")
    else:
        pcell, bcell = "–", "–"
    print(
        f"| {sc} | {f(m, 'gpu_hours_mean'):.1f} | {f(h, 'gpu_hours_mean'):.1f} "
        f"| {slo:.2f} {'✓' if s_ok else '✗'} | {target:.0f} | {', '.join(sorted(reach)) or '–'} "
        f"| {obj:.2f} {'✓' if obj <= hobj else '✗'} | {hobj:.2f} "
        f"| {best:.2f} ({best_k}) {'✓' if obj <= best else '✗'} | {pcell} | {bcell} |"
    )
wins = sum(all(v) for v in fam_win.values())
obj_ratio = sums["model_obj"] / sums["hpa_obj"] if sums["hpa_obj"] else float("nan")
gpu_ratio = sums["model_gpu"] / sums["hpa_gpu"] if sums["hpa_gpu"] else float("nan")
has_planner = any(planner in rows[sc] for sc in rows)
print()
print(f"- (a) SLO ≥ target where a tuned rule reaches it: {slo_ok} of {n} {'✓' if slo_ok == n else '✗'}")
print(f"- (b) objective ≤ default HPA's: {hpa_ok} of {n} {'✓' if hpa_ok == n else '✗'}")
print(f"- (c) objective ≤ the best tuned rule's on both profiles: {wins} of {len(fam_win)} families "
      f"({', '.join(k for k, v in fam_win.items() if all(v)) or 'none'}) {'✓' if wins >= 4 else '✗'}")
print(f"- (d) summed objective {obj_ratio:.2f}× default HPA's (≤ 0.5), summed GPU-hours {gpu_ratio:.2f}× (≤ 1) "
      f"{'✓' if obj_ratio <= 0.5 and gpu_ratio <= 1 else '✗'}")
if has_planner:
    print(f"- (e) scenarios where some policy beats the planner: {beats_planner} of {n} "
          f"{'✓' if beats_planner == 0 else '✗'}")
else:
    print("- (e) no planner rows in this summary")
