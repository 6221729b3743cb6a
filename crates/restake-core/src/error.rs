//! What can go wrong in the core: a scenario that does not parse or does not check out,
//! and a run that cannot start.

use thiserror::Error;

/// Errors of [`crate::Scenario`] parsing and checking, and of starting a run.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The TOML text does not parse, or a key is unknown, missing or of the wrong type.
    /// `message` is the parser's, with the line, the column and the offending key.
    #[error("{message}")]
    Parse {
        /// The parser's message.
        message: String,
    },
    /// A value is outside its range or refers to an undeclared name.
    #[error("{field}: {message}")]
    Invalid {
        /// Field path of the field ([`crate::scenario::field_path`]), e.g.
        /// `avs.EigenDA.slash_prob` or `operator."ether.fi-1 - Pier Two".weight`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A partial state (of a shard) that cannot be read, merged or finished: truncated,
    /// corrupted, of another run, given twice, or missing paths.
    #[error("{message}")]
    Partial {
        /// What is wrong.
        message: String,
    },
    /// The worker threads could not be started.
    #[error("cannot start {threads} worker threads: {message}")]
    Threads {
        /// Threads asked for.
        threads: usize,
        /// The thread pool's message.
        message: String,
    },
}
