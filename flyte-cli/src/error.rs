//! How a command fails: a message, the next step, and the exit code.

use flyte_core::store::StoreError;
use flyte_core::TaskError;
use std::fmt;
use std::process::ExitCode;

/// The exit codes of the command line (documented in the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: it went well.
    Ok = 0,
    /// 1: the run (or the task run) failed.
    RunFailed = 1,
    /// 2: the command line was wrong.
    Usage = 2,
    /// 3: the store could not be used.
    Store = 3,
    /// 4: what was named does not exist.
    NotFound = 4,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// A failed command.
#[derive(Debug)]
pub struct CliError {
    pub(crate) exit: Exit,
    pub(crate) message: String,
    /// What to do next.
    pub(crate) hint: Option<String>,
}

impl CliError {
    pub(crate) fn new(exit: Exit, message: impl Into<String>) -> CliError {
        CliError {
            exit,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> CliError {
        CliError::new(Exit::Usage, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> CliError {
        CliError::new(Exit::NotFound, message)
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }

    /// The exit code.
    pub fn exit(&self) -> Exit {
        self.exit
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages can quote stored text (a task's error, a run's name).
        write!(f, "error: {}", crate::output::printable(&self.message))?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {}", crate::output::printable(hint))?;
        }
        Ok(())
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> CliError {
        CliError::new(Exit::Store, e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::new(Exit::Store, format!("cannot write the output: {e}"))
    }
}

/// A task error met before any run started (bad input, unknown task).
impl From<TaskError> for CliError {
    fn from(e: TaskError) -> CliError {
        let exit = match e.kind() {
            flyte_core::ErrorKind::UnknownTask => Exit::NotFound,
            flyte_core::ErrorKind::Input | flyte_core::ErrorKind::Config => Exit::Usage,
            flyte_core::ErrorKind::Store => Exit::Store,
            _ => Exit::RunFailed,
        };
        CliError::new(exit, e.to_string())
    }
}
