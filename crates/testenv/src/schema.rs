//! A CRD version's structural schema (`schema.openAPIV3Schema`) and what the API server does with
//! it to a custom resource: prune unknown fields, drop or default nulls, apply defaults, validate.
//!
//! # Where each step happens
//!
//! The apiextensions server decodes every request body (create, update, the result of a patch or
//! an apply, `/status` writes alike) through a coercer and a defaulter, then the registry strategy
//! validates the object it is about to store. This server does the same:
//!
//! ```text
//! body ─▶ Schema::prune ─▶ Schema::prune_nulls ─▶ Schema::default ─▶ (status rules) ─▶ Schema::validate ─▶ store
//!         unknown fields     non-nullable nulls      `default` where      create drops     422 Invalid
//!         dropped            without a default       a field is absent    status, ...      on any error
//! ```
//!
//! - [`Schema::prune`] is `structuralpruning.Prune` (root = true): a field not declared in
//!   `properties` (nor covered by `additionalProperties`) is removed, at every depth, unless the node
//!   says `x-kubernetes-preserve-unknown-fields: true`. `apiVersion`, `kind` and `metadata` are
//!   kept at the root and in `x-kubernetes-embedded-resource` nodes.
//! - [`Schema::prune_nulls`] is `PruneNonNullableNullsWithoutDefaults`: a `null` object field whose
//!   schema is neither `nullable` nor has a `default` is removed (silently, not refused). Nulls in
//!   arrays stay and then fail validation.
//! - [`Schema::default`] is `structuraldefaulting.Default`: a property with a `default` that is
//!   absent (or a non-nullable `null`) gets a copy of the default; nested defaults apply only inside
//!   objects that exist (or were just defaulted).
//! - [`Schema::validate`] is kube-openapi's schema validator as `kubeOpenAPIResultToFieldErrors`
//!   turns its results into field errors: `type` (an integer accepts a JSON number without
//!   fraction, a number accepts an integer; `x-kubernetes-int-or-string`), `nullable`, `enum`,
//!   `required`, `minimum`/`maximum` (and `exclusive*`), `multipleOf`, `minLength`/`maxLength`
//!   (in characters), `pattern` (unanchored; the `regex` crate has Go's RE2 syntax, but its `\d`,
//!   `\w`, `\s` are Unicode-aware where Go's are ASCII), `minItems`/`maxItems`,
//!   `minProperties`/`maxProperties`. Field paths and messages are the real ones:
//!   `spec.maxReplicas: Invalid value: "string": spec.maxReplicas in body must be of type integer:
//!   "string"`.
//!
//! # Not implemented
//!
//! `format` is ignored (kube-openapi checks only a few string formats); `x-kubernetes-validations`
//! (CEL) rules, `x-kubernetes-list-type`/`-map-type` (set and map-list uniqueness), `anyOf`,
//! `allOf`, `oneOf` and `not` are not evaluated; there is no validation ratcheting (an update is
//! refused for an invalid field even if it did not change); `metadata` is not coerced against the
//! schema; an embedded resource's `apiVersion`/`kind` are not checked. Errors are reported in a
//! fixed order (properties by name), where kube-openapi walks a Go map.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// `additionalProperties`: absent, a boolean, or a schema for every undeclared key.
#[derive(Debug, Clone)]
enum Additional {
    Bool(bool),
    Schema(Box<Schema>),
}

/// A `pattern`, compiled once (a pattern that does not compile fails every value, with the
/// compile error in the message, as kube-openapi does).
#[derive(Debug, Clone)]
struct Pattern {
    source: String,
    compiled: Result<regex::Regex, String>,
}

/// One node of a structural schema: the keywords the API server prunes, defaults and validates by.
#[derive(Debug, Clone, Default)]
pub(crate) struct Schema {
    /// `type`, or `["integer", "string"]` for `x-kubernetes-int-or-string`; empty: any type.
    types: Vec<String>,
    nullable: bool,
    properties: BTreeMap<String, Schema>,
    additional: Option<Additional>,
    items: Option<Box<Schema>>,
    required: Vec<String>,
    enumeration: Vec<Value>,
    default: Option<Value>,
    maximum: Option<f64>,
    exclusive_maximum: bool,
    minimum: Option<f64>,
    exclusive_minimum: bool,
    multiple_of: Option<f64>,
    max_length: Option<u64>,
    min_length: Option<u64>,
    pattern: Option<Pattern>,
    max_items: Option<u64>,
    min_items: Option<u64>,
    max_properties: Option<u64>,
    min_properties: Option<u64>,
    preserve_unknown: bool,
    embedded_resource: bool,
}

impl Schema {
    /// Reads a `JSONSchemaProps` object. Unknown keywords (`description`, `format`,
    /// `x-kubernetes-validations`, ...) are ignored; a keyword of the wrong JSON type counts as
    /// absent (the CRD's own validation is not this module's job).
    pub fn parse(v: &Value) -> Schema {
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        let count = |k: &str| v.get(k).and_then(Value::as_u64);
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        let mut types: Vec<String> = v
            .get("type")
            .and_then(Value::as_str)
            .map(|t| vec![t.to_string()])
            .unwrap_or_default();
        if flag("x-kubernetes-int-or-string") {
            types = vec!["integer".into(), "string".into()];
        }
        let properties = v
            .get("properties")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, s)| (k.clone(), Schema::parse(s)))
                    .collect()
            })
            .unwrap_or_default();
        let additional = match v.get("additionalProperties") {
            Some(Value::Bool(b)) => Some(Additional::Bool(*b)),
            Some(s @ Value::Object(_)) => Some(Additional::Schema(Box::new(Schema::parse(s)))),
            _ => None,
        };
        let pattern = v.get("pattern").and_then(Value::as_str).map(|p| Pattern {
            source: p.to_string(),
            compiled: regex::Regex::new(p).map_err(|e| e.to_string()),
        });
        Schema {
            types,
            nullable: flag("nullable"),
            properties,
            additional,
            items: v
                .get("items")
                .filter(|i| i.is_object())
                .map(|i| Box::new(Schema::parse(i))),
            required: v
                .get("required")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            enumeration: v
                .get("enum")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            default: v.get("default").filter(|d| !d.is_null()).cloned(),
            maximum: num("maximum"),
            exclusive_maximum: flag("exclusiveMaximum"),
            minimum: num("minimum"),
            exclusive_minimum: flag("exclusiveMinimum"),
            multiple_of: num("multipleOf"),
            max_length: count("maxLength"),
            min_length: count("minLength"),
            pattern,
            max_items: count("maxItems"),
            min_items: count("minItems"),
            max_properties: count("maxProperties"),
            min_properties: count("minProperties"),
            preserve_unknown: flag("x-kubernetes-preserve-unknown-fields"),
            embedded_resource: flag("x-kubernetes-embedded-resource"),
        }
    }

    /// The schema of an object's field `key`: its property, else `additionalProperties`.
    fn field(&self, key: &str) -> Option<&Schema> {
        match (self.properties.get(key), &self.additional) {
            (Some(p), _) => Some(p),
            (None, Some(Additional::Schema(s))) => Some(s),
            _ => None,
        }
    }

    /// Whether `additionalProperties` keeps undeclared keys (as a schema, or `true`).
    fn keeps_additional(&self) -> bool {
        matches!(
            self.additional,
            Some(Additional::Schema(_)) | Some(Additional::Bool(true))
        )
    }

    /// What decoding a request body does to a custom resource: prune, drop nulls, default.
    pub fn coerce(&self, obj: &mut Value) {
        self.prune(obj);
        self.prune_nulls(obj);
        self.default(obj);
    }

    /// Removes the fields the schema does not declare, at every depth (`structuralpruning.Prune`
    /// with root = true: the root keeps `apiVersion`, `kind` and `metadata`).
    pub fn prune(&self, obj: &mut Value) {
        let mut root = self.clone();
        root.embedded_resource = true;
        prune(obj, Some(&root));
    }

    /// Removes object fields that are `null` where the schema is neither nullable nor defaulted.
    pub fn prune_nulls(&self, obj: &mut Value) {
        prune_nulls(obj, Some(self));
    }

    /// Applies `default`s where a field is absent, or `null` and not nullable.
    pub fn default(&self, obj: &mut Value) {
        default(obj, self);
    }

    /// Every field error of `obj`, in a stable order.
    pub fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = vec![];
        self.check(obj, "", &mut errs);
        errs
    }

    /// kube-openapi's `SchemaValidator.Validate`: the type, then the string, number, array, enum
    /// and object rules that apply to the value's kind.
    fn check(&self, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
        let kind = json_type(v);
        if !self.types.is_empty() {
            let matches = match (kind, v) {
                ("null", _) => self.nullable,
                ("number", Value::Number(n)) => {
                    self.has_type("number")
                        || (self.has_type("integer")
                            && n.as_f64()
                                .is_some_and(|f| f.fract() == 0.0 && f.is_finite()))
                }
                ("integer", _) => self.has_type("integer") || self.has_type("number"),
                (k, _) => self.has_type(k),
            };
            if !matches {
                errs.push(FieldError::type_invalid(path, &self.types.join(","), kind));
            }
        }
        if v.is_null() {
            self.check_enum(v, path, errs);
            return;
        }
        match v {
            Value::String(s) => self.check_string(s, path, errs),
            Value::Number(n) => self.check_number(&GoNumber::of(n), path, errs),
            Value::Array(items) => self.check_array(items, path, errs),
            _ => {}
        }
        self.check_enum(v, path, errs);
        if let Value::Object(m) = v {
            self.check_object(m, path, errs);
        }
    }

    fn has_type(&self, t: &str) -> bool {
        self.types.iter().any(|x| x == t)
    }

    fn check_string(&self, s: &str, path: &str, errs: &mut Vec<FieldError>) {
        let chars = s.chars().count() as u64;
        if let Some(max) = self.max_length
            && chars > max
        {
            errs.push(FieldError::too_long(path, max));
        }
        if let Some(min) = self.min_length
            && chars < min
        {
            errs.push(FieldError::invalid(
                path,
                go_quote(s),
                format!("{path} in body should be at least {min} chars long"),
            ));
        }
        if let Some(p) = &self.pattern {
            let failed = match &p.compiled {
                Ok(re) => (!re.is_match(s)).then(|| p.source.clone()),
                Err(e) => Some(format!("{}, but pattern is invalid: {e}", p.source)),
            };
            if let Some(shown) = failed {
                errs.push(FieldError::invalid(
                    path,
                    go_quote(s),
                    format!("{path} in body should match '{shown}'"),
                ));
            }
        }
    }

    fn check_number(&self, n: &GoNumber, path: &str, errs: &mut Vec<FieldError>) {
        if let Some(factor) = self.multiple_of {
            let ok = match n {
                GoNumber::Int(i) if factor >= 1.0 && factor.fract() == 0.0 => {
                    i % (factor as i64) == 0
                }
                _ => {
                    let data = n.as_f64();
                    let mult = if factor < 1.0 {
                        1.0 / factor * data
                    } else {
                        data / factor
                    };
                    mult.fract() == 0.0
                }
            };
            if !ok {
                errs.push(FieldError::invalid(
                    path,
                    n.go(),
                    format!("{path} in body should be a multiple of {}", n.limit(factor)),
                ));
            }
        }
        if let Some(max) = self.maximum {
            let over = match n {
                GoNumber::Int(i) => {
                    let m = max as i64;
                    *i > m || (self.exclusive_maximum && *i == m)
                }
                GoNumber::Float(f) => *f > max || (self.exclusive_maximum && *f == max),
            };
            if over {
                let rel = if self.exclusive_maximum {
                    "less than"
                } else {
                    "less than or equal to"
                };
                errs.push(FieldError::invalid(
                    path,
                    n.go(),
                    format!("{path} in body should be {rel} {}", n.limit(max)),
                ));
            }
        }
        if let Some(min) = self.minimum {
            let under = match n {
                GoNumber::Int(i) => {
                    let m = min as i64;
                    *i < m || (self.exclusive_minimum && *i == m)
                }
                GoNumber::Float(f) => *f < min || (self.exclusive_minimum && *f == min),
            };
            if under {
                let rel = if self.exclusive_minimum {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                errs.push(FieldError::invalid(
                    path,
                    n.go(),
                    format!("{path} in body should be {rel} {}", n.limit(min)),
                ));
            }
        }
    }

    fn check_array(&self, items: &[Value], path: &str, errs: &mut Vec<FieldError>) {
        if let Some(s) = &self.items {
            for (i, item) in items.iter().enumerate() {
                s.check(item, &format!("{path}[{i}]"), errs);
            }
        }
        let size = items.len() as u64;
        if let Some(min) = self.min_items
            && size < min
        {
            errs.push(FieldError::invalid(
                path,
                size.to_string(),
                format!("{path} in body should have at least {min} items"),
            ));
        }
        if let Some(max) = self.max_items
            && size > max
        {
            errs.push(FieldError::too_many(path, size, max));
        }
    }

    fn check_enum(&self, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
        if self.enumeration.is_empty() || self.enumeration.iter().any(|e| json_equal(e, v)) {
            return;
        }
        errs.push(FieldError::not_supported(path, v, &self.enumeration));
    }

    /// kube-openapi's `objectValidator`: property counts (which end the check), declared
    /// properties, `additionalProperties`, then `required`.
    fn check_object(&self, m: &Map<String, Value>, path: &str, errs: &mut Vec<FieldError>) {
        let n = m.len() as u64;
        if let Some(min) = self.min_properties
            && n < min
        {
            errs.push(FieldError::invalid(
                path,
                n.to_string(),
                format!("{path} in body should have at least {min} properties"),
            ));
            return;
        }
        if let Some(max) = self.max_properties
            && n > max
        {
            errs.push(FieldError::too_many(path, n, max));
            return;
        }
        if let Some(Additional::Schema(s)) = &self.additional {
            for (k, v) in m.iter().filter(|(k, _)| !self.properties.contains_key(*k)) {
                s.check(v, &format!("{path}.{k}"), errs);
            }
        }
        for (k, s) in &self.properties {
            if let Some(v) = m.get(k) {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                s.check(v, &child, errs);
            }
        }
        for k in self.required.iter().filter(|k| !m.contains_key(*k)) {
            errs.push(FieldError::required(&format!("{path}.{k}")));
        }
    }
}

/// `prune` of `structuralpruning`: `s = None` removes every field of the objects below.
fn prune(v: &mut Value, s: Option<&Schema>) {
    if let Some(s) = s
        && s.preserve_unknown
    {
        skip_prune(v, s);
        return;
    }
    match v {
        Value::Object(m) => {
            let Some(s) = s else {
                m.clear();
                return;
            };
            m.retain(|k, _| {
                (s.embedded_resource && is_meta_field(k))
                    || s.properties.contains_key(k)
                    || s.keeps_additional()
            });
            for (k, child) in m.iter_mut() {
                if s.embedded_resource && is_meta_field(k) {
                    continue;
                }
                prune(child, s.field(k));
            }
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.items.as_deref());
            for item in items {
                prune(item, item_schema);
            }
        }
        _ => {}
    }
}

/// A node that preserves unknown fields: keep every key, prune inside the declared ones.
fn skip_prune(v: &mut Value, s: &Schema) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if s.embedded_resource && is_meta_field(k) {
                    continue;
                }
                if s.properties.contains_key(k) || s.keeps_additional() {
                    prune(child, s.field(k));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.items.as_deref() {
                for item in items {
                    skip_prune(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

fn is_meta_field(k: &str) -> bool {
    matches!(k, "apiVersion" | "kind" | "metadata")
}

/// `PruneNonNullableNullsWithoutDefaults`.
fn prune_nulls(v: &mut Value, s: Option<&Schema>) {
    match v {
        Value::Object(m) => {
            m.retain(|k, child| {
                let field = s.and_then(|s| s.field(k));
                !(child.is_null() && field.is_some_and(|f| !f.nullable && f.default.is_none()))
            });
            for (k, child) in m.iter_mut() {
                prune_nulls(child, s.and_then(|s| s.field(k)));
            }
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.items.as_deref());
            for item in items {
                prune_nulls(item, item_schema);
            }
        }
        _ => {}
    }
}

/// `structuraldefaulting.Default`.
fn default(v: &mut Value, s: &Schema) {
    match v {
        Value::Object(m) => {
            for (k, prop) in &s.properties {
                let Some(d) = &prop.default else { continue };
                let missing = match m.get(k) {
                    None => true,
                    Some(Value::Null) => !prop.nullable,
                    Some(_) => false,
                };
                if missing {
                    m.insert(k.clone(), d.clone());
                }
            }
            for (k, child) in m.iter_mut() {
                if let Some(prop) = s.properties.get(k) {
                    default(child, prop);
                } else if let Some(Additional::Schema(a)) = &s.additional {
                    if child.is_null()
                        && !a.nullable
                        && let Some(d) = &a.default
                    {
                        *child = d.clone();
                    }
                    default(child, a);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.items.as_deref() {
                for item in items {
                    if item.is_null()
                        && !item_schema.nullable
                        && let Some(d) = &item_schema.default
                    {
                        *item = d.clone();
                    }
                    default(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

/// The JSON type kube-openapi infers for a decoded value: a number without fraction that fits
/// `int64` decodes as an integer, any other number as a float (`number`).
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::String(_) => "string",
        Value::Number(n) if n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Equality as kube-openapi's enum check sees it: numbers compare by value (`1` equals `1.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| json_equal(a, b)))
        }
        _ => a == b,
    }
}

/// A JSON number as the API server holds it after decoding: `int64` or `float64`.
enum GoNumber {
    Int(i64),
    Float(f64),
}

impl GoNumber {
    fn of(n: &serde_json::Number) -> GoNumber {
        match n.as_i64() {
            Some(i) => GoNumber::Int(i),
            None => GoNumber::Float(n.as_f64().unwrap_or(f64::NAN)),
        }
    }

    fn as_f64(&self) -> f64 {
        match self {
            GoNumber::Int(i) => *i as f64,
            GoNumber::Float(f) => *f,
        }
    }

    /// The value as Go's `%v` prints it.
    fn go(&self) -> String {
        match self {
            GoNumber::Int(i) => i.to_string(),
            GoNumber::Float(f) => go_float(*f),
        }
    }

    /// A schema limit as the message shows it: converted to `int64` for integer data (kube-openapi's
    /// `MinimumNativeType`), a `float64` otherwise.
    fn limit(&self, l: f64) -> String {
        match self {
            GoNumber::Int(_) => (l as i64).to_string(),
            GoNumber::Float(_) => go_float(l),
        }
    }
}

/// Go's `%v` of a `float64` (`strconv.FormatFloat(f, 'g', -1, 64)`): the shortest digits that
/// read back the same, in exponent form (`1e+06`) when the decimal exponent is below -4 or at
/// least 6.
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `1.5e-7`, `1e6`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

/// Go's `%q` of a string (`strconv.Quote`): printable characters as they are, `\"`, `\\` and
/// the usual escapes, other control characters as `\x..`/`\u....`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value as `field.Error` prints a bad value: strings quoted, numbers and booleans as `%v`,
/// `null` as `null`, objects and arrays in Go's `%#v` form.
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => go_quote(s),
        Value::Number(n) => GoNumber::of(n).go(),
        Value::Array(_) | Value::Object(_) => go_sharp(v),
    }
}

/// Go's `%#v` of a decoded JSON value (`map[string]interface {}{"a":1}`).
fn go_sharp(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => go_quote(s),
        Value::Number(n) => GoNumber::of(n).go(),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(go_sharp).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_sharp(v)))
                .collect();
            format!("map[string]interface {{}}{{{}}}", items.join(", "))
        }
    }
}

/// One `field.Error`: its cause reason (`FieldValueInvalid`...), field path and body (the error
/// without the field, as a Status cause's message).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldError {
    pub reason: &'static str,
    pub field: String,
    pub body: String,
}

impl FieldError {
    /// The field path of a kube-openapi error name (`.spec` → `spec`).
    fn field_of(path: &str) -> String {
        path.trim_start_matches('.').to_string()
    }

    fn type_invalid(path: &str, expected: &str, actual: &str) -> Self {
        FieldError {
            reason: "FieldValueTypeInvalid",
            field: Self::field_of(path),
            body: format!(
                "Invalid value: {q}: {path} in body must be of type {expected}: {q}",
                q = go_quote(actual)
            ),
        }
    }

    fn required(path: &str) -> Self {
        FieldError {
            reason: "FieldValueRequired",
            field: Self::field_of(path),
            body: "Required value".into(),
        }
    }

    fn not_supported(path: &str, v: &Value, allowed: &[Value]) -> Self {
        let supported: Vec<String> = allowed
            .iter()
            .map(|a| match a {
                Value::String(s) => go_quote(s),
                other => go_quote(&other.to_string()),
            })
            .collect();
        FieldError {
            reason: "FieldValueNotSupported",
            field: Self::field_of(path),
            body: format!(
                "Unsupported value: {}: supported values: {}",
                go_value(v),
                supported.join(", ")
            ),
        }
    }

    fn invalid(path: &str, shown: String, detail: String) -> Self {
        FieldError {
            reason: "FieldValueInvalid",
            field: Self::field_of(path),
            body: format!("Invalid value: {shown}: {detail}"),
        }
    }

    /// `field.TooLong`: the value is not shown. The wording is recent apimachinery's (`may not be
    /// more than 8 bytes`, though kube-openapi counts characters); older releases said `may not be
    /// longer than 8`.
    fn too_long(path: &str, max: u64) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        FieldError {
            reason: "FieldValueTooLong",
            field: Self::field_of(path),
            body: format!("Too long: may not be more than {max} {unit}"),
        }
    }

    /// `field.TooMany`.
    fn too_many(path: &str, actual: u64, max: u64) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        FieldError {
            reason: "FieldValueTooMany",
            field: Self::field_of(path),
            body: format!("Too many: {actual}: must have at most {max} {unit}"),
        }
    }

    /// `field: body`, as the error's `Error()` prints it.
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A cut-down RLAutoscaler schema: the shapes kube's schemars output has.
    fn schema() -> Schema {
        Schema::parse(&json!({
            "type": "object",
            "required": ["spec"],
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["maxReplicas", "target"],
                    "properties": {
                        "target": {"type": "object", "required": ["name"], "properties": {
                            "name": {"type": "string", "minLength": 1, "maxLength": 8,
                                     "pattern": "^[a-z][a-z0-9-]*$"},
                            "kind": {"type": "string", "default": "Deployment"}}},
                        "minReplicas": {"type": "integer", "format": "uint32", "minimum": 0.0,
                                        "default": 1},
                        "maxReplicas": {"type": "integer", "minimum": 1.0, "maximum": 100.0},
                        "ratio": {"type": "number", "minimum": 0.0, "exclusiveMinimum": true,
                                  "maximum": 1.0},
                        "mode": {"type": "string", "enum": ["Active", "Shadow"], "default": "Shadow"},
                        "model": {"type": "string", "nullable": true},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                 "properties": {"law": {"type": "string"}}},
                        "queries": {"type": "object", "default": {}, "properties": {
                            "p50": {"type": "string"},
                            "window": {"type": "string", "default": "1m"}}},
                        "labels": {"type": "object", "additionalProperties": {
                            "type": "object", "properties": {"v": {"type": "string"}}}},
                        "steps": {"type": "array", "minItems": 1, "maxItems": 2, "items": {
                            "type": "object", "properties": {"size": {"type": "integer",
                                "default": 1}}}},
                        "port": {"x-kubernetes-int-or-string": true},
                        "guard": {"type": "object", "properties": {
                            "step": {"type": "integer", "default": 4}}},
                    }
                },
                "status": {"type": "object", "nullable": true, "properties": {
                    "conditions": {"type": "array", "default": [], "items": {
                        "type": "object", "required": ["type"], "properties": {
                            "type": {"type": "string"}}}},
                    "desired": {"type": "integer"}}}
            }
        }))
    }

    fn coerced(mut obj: Value) -> Value {
        schema().coerce(&mut obj);
        obj
    }

    fn errors(obj: Value) -> Vec<String> {
        let s = schema();
        let mut obj = obj;
        s.coerce(&mut obj);
        s.validate(&obj).iter().map(FieldError::message).collect()
    }

    fn valid_spec() -> Value {
        json!({"target": {"name": "web"}, "maxReplicas": 4})
    }

    fn with(path: &str, v: Value) -> Value {
        let mut spec = valid_spec();
        spec[path] = v;
        json!({"spec": spec})
    }

    #[test]
    fn unknown_fields_are_pruned_at_every_depth_but_not_meta_or_preserved_nodes() {
        let got = coerced(json!({
            "apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "whatever": 1},
            "extra": true,
            "spec": {"target": {"name": "web", "typo": 1}, "maxReplicas": 4, "mxReplicas": 3,
                     "free": {"law": "hpa", "anything": {"deep": [1]}},
                     "labels": {"a": {"v": "x", "w": "gone"}},
                     "steps": [{"size": 2, "unit": "gone"}]},
            "status": {"desired": 2, "typo": 1, "conditions": [{"type": "Ready", "junk": 1}]}
        }));
        assert_eq!(got["metadata"], json!({"name": "a", "whatever": 1}));
        assert_eq!(
            (&got["apiVersion"], &got["kind"]),
            (&json!("x/v1"), &json!("X"))
        );
        assert!(got.get("extra").is_none());
        let spec = &got["spec"];
        assert!(spec.get("mxReplicas").is_none(), "{spec}");
        assert_eq!(spec["target"], json!({"name": "web", "kind": "Deployment"}));
        assert_eq!(
            spec["free"],
            json!({"law": "hpa", "anything": {"deep": [1]}})
        );
        assert_eq!(spec["labels"], json!({"a": {"v": "x"}}));
        assert_eq!(spec["steps"], json!([{"size": 2}]));
        assert_eq!(
            got["status"],
            json!({"desired": 2, "conditions": [{"type": "Ready"}]})
        );
    }

    #[test]
    fn defaults_fill_absent_fields_and_only_inside_existing_objects() {
        let got = coerced(json!({"spec": valid_spec()}));
        let spec = &got["spec"];
        assert_eq!(spec["minReplicas"], 1);
        assert_eq!(spec["mode"], "Shadow");
        // A defaulted object gets its own nested defaults.
        assert_eq!(spec["queries"], json!({"window": "1m"}));
        assert_eq!(spec["target"]["kind"], "Deployment");
        // `guard` has no default: its nested default does not conjure it up.
        assert!(spec.get("guard").is_none());
        // A present value wins; an existing parent gets its nested default.
        let got = coerced(with("guard", json!({})));
        assert_eq!(got["spec"]["guard"], json!({"step": 4}));
        let got = coerced(with("mode", json!("Active")));
        assert_eq!(got["spec"]["mode"], "Active");
        // Array items get their items' defaults.
        let got = coerced(with("steps", json!([{}])));
        assert_eq!(got["spec"]["steps"], json!([{"size": 1}]));
        // No status, no status defaults.
        assert!(got.get("status").is_none());
        let got = coerced(json!({"spec": valid_spec(), "status": {}}));
        assert_eq!(got["status"], json!({"conditions": []}));
    }

    #[test]
    fn nulls_are_dropped_defaulted_or_kept_by_nullable_and_default() {
        let got = coerced(json!({"spec": {"target": {"name": "web"}, "maxReplicas": 4,
            "minReplicas": null, "ratio": null, "model": null}}));
        let spec = &got["spec"];
        assert_eq!(
            spec["minReplicas"], 1,
            "non-nullable null with a default: defaulted"
        );
        assert!(spec.get("ratio").is_none(), "no default: dropped");
        assert_eq!(spec["model"], Value::Null, "nullable: kept");
        assert!(
            errors(json!({"spec": {"target": {"name": "web"}, "maxReplicas": 4,
            "ratio": null, "model": null}}))
            .is_empty()
        );
        // A null array item is not dropped: it fails the items' type.
        assert_eq!(
            errors(json!({"spec": valid_spec(), "status": {"conditions": [null]}})),
            [
                "status.conditions[0]: Invalid value: \"null\": status.conditions[0] in body must be of type object: \"null\""
            ]
        );
    }

    #[test]
    fn types_are_checked_with_the_real_messages() {
        assert_eq!(
            errors(with("maxReplicas", json!("4"))),
            [
                "spec.maxReplicas: Invalid value: \"string\": spec.maxReplicas in body must be of type integer: \"string\""
            ]
        );
        assert_eq!(
            errors(with("maxReplicas", json!(2.5))),
            [
                "spec.maxReplicas: Invalid value: \"number\": spec.maxReplicas in body must be of type integer: \"number\""
            ]
        );
        // An integer is a number without fraction, and a number accepts an integer.
        assert!(errors(with("maxReplicas", json!(4.0))).is_empty());
        assert!(errors(with("ratio", json!(1))).is_empty());
        assert_eq!(
            errors(with("target", json!(["web"]))),
            [
                "spec.target: Invalid value: \"array\": spec.target in body must be of type object: \"array\""
            ]
        );
        assert_eq!(
            errors(with("mode", json!(true))),
            [
                "spec.mode: Invalid value: \"boolean\": spec.mode in body must be of type string: \"boolean\"",
                "spec.mode: Unsupported value: true: supported values: \"Active\", \"Shadow\"",
            ]
        );
        assert!(errors(with("port", json!(80))).is_empty());
        assert!(errors(with("port", json!("http"))).is_empty());
        assert_eq!(
            errors(with("port", json!(false))),
            [
                "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\""
            ]
        );
    }

    #[test]
    fn required_enum_and_bounds() {
        // Nested properties first (by name), then the object's own `required`.
        assert_eq!(
            errors(json!({"spec": {"target": {}}})),
            [
                "spec.target.name: Required value",
                "spec.maxReplicas: Required value"
            ]
        );
        assert_eq!(errors(json!({"status": {}})), ["spec: Required value"]);
        assert_eq!(
            errors(with("mode", json!("Passive"))),
            ["spec.mode: Unsupported value: \"Passive\": supported values: \"Active\", \"Shadow\""]
        );
        assert_eq!(
            errors(with("minReplicas", json!(-1))),
            [
                "spec.minReplicas: Invalid value: -1: spec.minReplicas in body should be greater than or equal to 0"
            ]
        );
        assert_eq!(
            errors(with("maxReplicas", json!(101))),
            [
                "spec.maxReplicas: Invalid value: 101: spec.maxReplicas in body should be less than or equal to 100"
            ]
        );
        assert_eq!(
            errors(with("ratio", json!(0))),
            ["spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"]
        );
        assert_eq!(
            errors(with("ratio", json!(1.5))),
            [
                "spec.ratio: Invalid value: 1.5: spec.ratio in body should be less than or equal to 1"
            ]
        );
        assert!(errors(with("ratio", json!(1.0))).is_empty());
    }

    #[test]
    fn strings_and_arrays() {
        let name = |n: &str| json!({"spec": {"target": {"name": n}, "maxReplicas": 4}});
        assert_eq!(
            errors(name("")),
            [
                "spec.target.name: Invalid value: \"\": spec.target.name in body should be at least 1 chars long",
                "spec.target.name: Invalid value: \"\": spec.target.name in body should match '^[a-z][a-z0-9-]*$'",
            ]
        );
        assert_eq!(
            errors(name("abcdefghi")),
            ["spec.target.name: Too long: may not be more than 8 bytes"]
        );
        // Length in characters, not bytes.
        assert!(errors(name("wébé")).len() == 1, "only the pattern fails");
        assert_eq!(
            errors(name("Web")),
            [
                "spec.target.name: Invalid value: \"Web\": spec.target.name in body should match '^[a-z][a-z0-9-]*$'"
            ]
        );
        assert_eq!(
            errors(with("steps", json!([]))),
            ["spec.steps: Invalid value: 0: spec.steps in body should have at least 1 items"]
        );
        assert_eq!(
            errors(with("steps", json!([{}, {}, {}]))),
            ["spec.steps: Too many: 3: must have at most 2 items"]
        );
        assert_eq!(
            errors(with("steps", json!([{"size": "big"}]))),
            [
                "spec.steps[0].size: Invalid value: \"string\": spec.steps[0].size in body must be of type integer: \"string\""
            ]
        );
        assert_eq!(
            errors(with("labels", json!({"a": {"v": 1}}))),
            [
                "spec.labels.a.v: Invalid value: \"integer\": spec.labels.a.v in body must be of type string: \"integer\""
            ]
        );
        assert_eq!(
            errors(json!({"spec": valid_spec(), "status": {"conditions": [{}]}})),
            ["status.conditions[0].type: Required value"]
        );
    }

    #[test]
    fn a_schema_that_preserves_everything_keeps_everything() {
        let s =
            Schema::parse(&json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        let mut obj = json!({"spec": {"a": [1, {"b": null}]}, "status": {"x": 1}});
        let before = obj.clone();
        s.coerce(&mut obj);
        assert_eq!(obj, before);
        assert!(s.validate(&obj).is_empty());
    }

    #[test]
    fn go_formatting() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(1.5e-7), "1.5e-07");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(
            go_value(&json!({"a": [1, "x"]})),
            r#"map[string]interface {}{"a":[]interface {}{1, "x"}}"#
        );
    }
}
