//! The simulator's error type.

use std::path::PathBuf;

/// Everything that can go wrong loading or building a scenario.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A TOML file did not parse, or had an unknown or mistyped field.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the field, line and column).
        message: String,
    },
    /// A field parsed but holds a value that is not allowed.
    #[error("{}: field `{field}` = {value}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted path of the field, e.g. `cold_start.provision_s.mean`.
        field: String,
        /// The offending value as written.
        value: String,
        /// What is allowed.
        message: String,
    },
    /// A trace CSV line is malformed.
    #[error("{}:{line}: field `{field}`: {message}", path.display())]
    Trace {
        /// The trace file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Column name.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A scenario id or profile name was not found.
    #[error("no {kind} `{name}` in {}; {hint}", dir.display())]
    NotFound {
        /// "scenario" or "profile".
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// Where we looked.
        dir: PathBuf,
        /// What exists, or what to do.
        hint: String,
    },
    /// A trace-replay scenario needs data the user must supply.
    #[error(
        "scenario `{scenario}` replays a trace that rlscale cannot ship ({why}); get it from {obtain} and pass its path with --trace PATH"
    )]
    TraceNotSupplied {
        /// Scenario id.
        scenario: String,
        /// Why it is not shipped (licence).
        why: String,
        /// Where to get the data.
        obtain: String,
    },
}

/// The simulator's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Invalid`] for `field` = `value` in `path`.
    pub(crate) fn invalid(
        path: &std::path::Path,
        field: impl Into<String>,
        value: impl std::fmt::Display,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            path: path.to_path_buf(),
            field: field.into(),
            value: value.to_string(),
            message: message.into(),
        }
    }
}
