//! Label and field selectors (`k8s.io/apimachinery/pkg/labels` and `.../fields` syntax).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::status::ApiError;
use crate::util::get_path;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Exists,
    NotExists,
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector: all requirements must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<(String, Op)>);

fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = vec![];
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 316
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    let vals: Vec<String> = inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    if vals.iter().all(|v| valid_value(v)) {
        Some(vals)
    } else {
        None
    }
}

impl LabelSelector {
    /// Parses `k=v,k!=v,k in (a,b),!k,...`; errors are 400 BadRequest like the apiserver's.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self::default());
        }
        let mut reqs = vec![];
        for raw in split_top_level(s) {
            let r = raw.trim();
            let err = || ApiError::bad_request(format!("unable to parse requirement: {r:?}"));
            let req = if let Some(k) = r.strip_prefix('!') {
                (k.trim().to_string(), Op::NotExists)
            } else if let Some((k, v)) = r.split_once("!=") {
                (k.trim().to_string(), Op::NotEq(v.trim().to_string()))
            } else if let Some((k, v)) = r.split_once("==") {
                (k.trim().to_string(), Op::Eq(v.trim().to_string()))
            } else if let Some((k, v)) = r.split_once('=') {
                (k.trim().to_string(), Op::Eq(v.trim().to_string()))
            } else if let Some((k, v)) = r.split_once(" notin ") {
                (
                    k.trim().to_string(),
                    Op::NotIn(parse_set(v).ok_or_else(err)?),
                )
            } else if let Some((k, v)) = r.split_once(" in ") {
                (k.trim().to_string(), Op::In(parse_set(v).ok_or_else(err)?))
            } else if let Some((k, v)) = r.split_once('>') {
                (
                    k.trim().to_string(),
                    Op::Gt(v.trim().parse().map_err(|_| err())?),
                )
            } else if let Some((k, v)) = r.split_once('<') {
                (
                    k.trim().to_string(),
                    Op::Lt(v.trim().parse().map_err(|_| err())?),
                )
            } else {
                (r.to_string(), Op::Exists)
            };
            if !valid_key(&req.0) {
                return Err(err());
            }
            if let Op::Eq(v) | Op::NotEq(v) = &req.1
                && !valid_value(v)
            {
                return Err(err());
            }
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    /// True when there are no requirements.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.get("metadata").and_then(|m| m.get("labels"));
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|(k, op)| match op {
            Op::Exists => get(k).is_some(),
            Op::NotExists => get(k).is_none(),
            Op::Eq(v) => get(k) == Some(v.as_str()),
            Op::NotEq(v) => get(k) != Some(v.as_str()),
            Op::In(vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Op::NotIn(vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Op::Gt(n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            Op::Lt(n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

/// A parsed field selector (`metadata.name=x,metadata.namespace!=y`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses a field selector; `allowed` lists the field labels the resource supports
    /// (`metadata.name` and `metadata.namespace` always are).
    pub fn parse(s: &str, allowed: &[&str]) -> Result<Self, ApiError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self::default());
        }
        let mut reqs = vec![];
        for raw in s.split(',') {
            let r = raw.trim();
            let (k, eq, v) = if let Some((k, v)) = r.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = r.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = r.split_once('=') {
                (k, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{r}'"
                )));
            };
            let k = k.trim();
            if k != "metadata.name" && k != "metadata.namespace" && !allowed.contains(&k) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {k}"
                )));
            }
            reqs.push((k.to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    /// True when there are no requirements.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the object's fields satisfy every requirement (missing fields read as "").
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(k, eq, v)| {
            let actual = match get_path(obj, k) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *v) == *eq
        })
    }
}

/// The name a field selector requires (a `metadata.name=x` or `metadata.name==x` term), as
/// `RequiresExactMatch("metadata.name")` finds it: the API server authorizes a list or watch with
/// one as a request for that object, which a rule's `resourceNames` can allow. A name that is not a
/// valid path segment (`.`, `..`, or with `/` or `%`) is ignored, as there.
pub(crate) fn required_name(selector: &str) -> Option<String> {
    let name = selector.split(',').find_map(|term| {
        if term.contains("!=") {
            return None;
        }
        let (k, v) = term.split_once("==").or_else(|| term.split_once('='))?;
        (k.trim() == "metadata.name").then(|| v.trim().to_string())
    })?;
    let valid = !matches!(name.as_str(), "." | "..") && !name.contains(['/', '%']);
    valid.then_some(name)
}

/// Renders a `metav1.LabelSelector` JSON value as a selector string, as
/// `metav1.LabelSelectorAsSelector(...).String()` does (requirements sorted by key).
pub(crate) fn label_selector_string(sel: &Value) -> String {
    let mut reqs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            reqs.entry(k.clone())
                .or_default()
                .push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(me) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in me {
            let k = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let mut vals: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            vals.sort_unstable();
            let s = match e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default()
            {
                "In" => format!("{k} in ({})", vals.join(",")),
                "NotIn" => format!("{k} notin ({})", vals.join(",")),
                "Exists" => k.to_string(),
                "DoesNotExist" => format!("!{k}"),
                _ => continue,
            };
            reqs.entry(k.to_string()).or_default().push(s);
        }
    }
    reqs.into_values().flatten().collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn label_selectors() {
        let o = obj(json!({"app": "web", "tier": "fe"}));
        for (s, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app in (web,db)", true),
            ("app in (db)", false),
            ("app notin (db)", true),
            ("missing notin (db)", true),
            ("app=web,tier in (fe, be)", true),
            ("app=web,tier=be", false),
            ("", true),
        ] {
            assert_eq!(LabelSelector::parse(s).unwrap().matches(&o), want, "{s}");
        }
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("a b=c").is_err());
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        assert!(
            FieldSelector::parse("metadata.name=a", &[])
                .unwrap()
                .matches(&o)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=a", &[])
                .unwrap()
                .matches(&o)
        );
        assert!(
            FieldSelector::parse("metadata.namespace==ns,metadata.name!=b", &[])
                .unwrap()
                .matches(&o)
        );
        assert_eq!(
            FieldSelector::parse("spec.foo=1", &[]).unwrap_err().message,
            "field label not supported: spec.foo"
        );
    }

    #[test]
    fn the_name_a_field_selector_requires() {
        for (s, want) in [
            ("metadata.name=lock", Some("lock")),
            ("metadata.namespace=ns,metadata.name==lock", Some("lock")),
            ("metadata.name!=lock", None),
            ("metadata.namespace=ns", None),
            ("metadata.name=a/b", None),
            ("", None),
        ] {
            assert_eq!(required_name(s).as_deref(), want, "{s}");
        }
    }

    #[test]
    fn render_selector() {
        let s = json!({"matchLabels": {"tier": "fe", "app": "web"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["b", "a"]}]});
        assert_eq!(label_selector_string(&s), "app=web,env in (a,b),tier=fe");
    }
}
