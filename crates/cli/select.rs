//! Choosing scenarios by id or glob (`--scenarios steady-*,diurnal-8b-l4-v1`).

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use rlscale_sim::config::list_scenario_files;
use rlscale_sim::{Overrides, Scenario};

use crate::BadInput;

/// `*` matches any run of characters, `?` one character; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A scenario left out, and why.
pub struct Skipped {
    /// The id.
    pub id: String,
    /// The reason (the loader's error).
    pub reason: String,
}

/// Resolve a comma-separated list of ids, paths and globs against `envs`. Scenarios whose trace the
/// user must supply get `user_trace` (and only they do); without it, a glob skips them (and says so),
/// and an id named exactly is an error naming where to get the data.
pub fn scenarios(
    envs: &Path,
    list: &str,
    overrides: &Overrides,
    user_trace: Option<&Path>,
) -> Result<(Vec<Arc<Scenario>>, Vec<Skipped>)> {
    let with_trace = Overrides {
        trace: user_trace.map(Path::to_path_buf),
        ..overrides.clone()
    };
    let resolve = |id: &str| match Scenario::resolve(envs, id, overrides) {
        Err(rlscale_sim::Error::TraceNotSupplied { .. }) if user_trace.is_some() => {
            Scenario::resolve(envs, id, &with_trace)
        }
        r => r,
    };
    let ids: Vec<String> = list_scenario_files(envs)?
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let mut out: Vec<Arc<Scenario>> = Vec::new();
    let mut skipped = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item.contains(['*', '?']) {
            let matched: Vec<&String> = ids.iter().filter(|id| glob_match(item, id)).collect();
            if matched.is_empty() {
                return Err(BadInput(format!(
                    "--scenarios `{item}` matches no scenario in {}",
                    envs.display()
                ))
                .into());
            }
            for id in matched {
                match resolve(id) {
                    Ok(s) => push_unique(&mut out, s),
                    Err(e @ rlscale_sim::Error::TraceNotSupplied { .. }) => skipped.push(Skipped {
                        id: id.clone(),
                        reason: e.to_string(),
                    }),
                    Err(e) => return Err(e.into()),
                }
            }
        } else {
            push_unique(&mut out, resolve(item)?);
        }
    }
    if let Some(t) = user_trace {
        // Only the scenarios that took the user's trace.
        let took_it = |sc: &&Arc<Scenario>| {
            matches!(
                sc.file.arrivals,
                rlscale_sim::config::ArrivalSpec::Trace { file: None, .. }
            )
        };
        for sc in out.iter().filter(took_it) {
            if let Some(note) = trace_scale_note(sc, t) {
                eprintln!("{note}");
            }
        }
    }
    if out.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .map(|s| format!("skipped {}: {}", s.id, s.reason))
            .collect();
        return Err(BadInput(format!(
            "--scenarios `{list}` selects no runnable scenario\n{}",
            why.join("\n")
        ))
        .into());
    }
    Ok((out, skipped))
}

/// What `--trace FILE` turns into on `sc`: the multiplier its rates are played at (the scenario's
/// `arrivals.rate_scale`, times `--rate-scale`), said once on stderr so that a ×40 is never silent.
/// `None` when `sc` does not replay a trace.
pub fn trace_scale_note(sc: &Scenario, trace: &Path) -> Option<String> {
    let rlscale_sim::config::Arrivals::Trace { rate_scale, .. } = &sc.arrivals else {
        return None;
    };
    let total = rate_scale * sc.rate_multiplier;
    let why = if sc.rate_multiplier == 1.0 {
        format!("the scenario's arrivals.rate_scale = {rate_scale}")
    } else {
        format!(
            "the scenario's arrivals.rate_scale = {rate_scale} × --rate-scale {}",
            sc.rate_multiplier
        )
    };
    Some(format!(
        "{}: the rates of {} are played ×{total} ({why})",
        sc.id(),
        trace.display()
    ))
}

fn push_unique(v: &mut Vec<Arc<Scenario>>, s: Scenario) {
    if !v.iter().any(|x| x.id() == s.id()) {
        v.push(Arc::new(s));
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("*", "steady-8b-l4-v1"));
        assert!(glob_match("steady-*", "steady-8b-l4-v1"));
        assert!(glob_match("*-8b-l4-v?", "diurnal-8b-l4-v1"));
        assert!(!glob_match("*-70b-*", "diurnal-8b-l4-v1"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("exact", "exact") && !glob_match("exact", "exactly"));
    }
}
