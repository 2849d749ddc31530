//! One error type for the harness: a message that says what failed and why.

use std::fmt;

/// What went wrong in an end-to-end run.
#[derive(Debug)]
pub struct E2eError(String);

impl E2eError {
    pub fn new(msg: impl Into<String>) -> Self {
        E2eError(msg.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for E2eError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for E2eError {}

impl From<std::io::Error> for E2eError {
    fn from(e: std::io::Error) -> Self {
        E2eError(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, E2eError>;

/// Adds what was being done to an error.
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| E2eError(format!("{what}: {e}")))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.ok_or_else(|| E2eError(what.to_string()))
    }
}

/// Returns an [`E2eError`] built with `format!`.
#[macro_export]
macro_rules! e2e_bail {
    ($($arg:tt)*) => {
        return Err($crate::e2e::E2eError::new(format!($($arg)*)))
    };
}
