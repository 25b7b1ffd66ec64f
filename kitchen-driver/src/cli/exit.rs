//! The process exit codes, in one table, and the one place a fatal error is printed.
//!
//! | code | when |
//! |---|---|
//! | 0 | success (`login`: the shell's own exit code instead) |
//! | 1 | usage errors, no instance matched, an ambiguous `login` pattern (test-kitchen's Thor `die`), a report path that cannot be written |
//! | 20 | `N actions failed.` and every other error, such as an unreadable kitchen.yml (test-kitchen's `Kitchen::Error`) |
//! | 130 | Ctrl-C before every action ran (128 + SIGINT) |
//!
//! test-kitchen also has 10 (`InstanceFailure`), which its own commands never reach through
//! `with_friendly_errors`; kitchen-driver does not use it.

use crate::config::ConfigError;
use crate::error::Error;

/// Success.
pub const SUCCESS: i32 = 0;
/// Usage errors and selections that match nothing.
pub const USAGE: i32 = 1;
/// Actions failed (test-kitchen's `ActionFailed`), and every other error.
pub const ACTIONS_FAILED: i32 = 20;
/// Ctrl-C (128 + SIGINT).
pub const INTERRUPTED: i32 = 130;

impl Error {
    /// The process exit code for this error (see the table in [`crate::cli::exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Load(
                ConfigError::NoMatch { .. }
                | ConfigError::NoInstances
                | ConfigError::Regex { at: None, .. },
            )
            | Error::AmbiguousInstance { .. }
            | Error::ReportPath { .. } => USAGE,
            Error::Interrupted => INTERRUPTED,
            _ => ACTIONS_FAILED,
        }
    }
}

/// Prints a fatal error on stderr as test-kitchen does, and returns its exit code. Every
/// command ends here on failure; nothing else prints a fatal error.
///
/// `N actions failed.` gets test-kitchen's exception block; anything else one `>>>>>> `
/// line.
pub fn report_fatal(error: &Error) -> i32 {
    use crate::events::redact::redact;
    match error {
        Error::ActionsFailed { summary } => {
            eprintln!(">>>>>> ------Exception-------");
            eprintln!(">>>>>> Class: Kitchen::ActionFailed");
            eprintln!(">>>>>> Message: {}", redact(summary));
            eprintln!(">>>>>> ----------------------");
            eprintln!(">>>>>> Please see .kitchen/logs/kitchen.log for more details");
            eprintln!(">>>>>> Also try running `kitchen-driver diagnose --all` for configuration");
        }
        other => eprintln!(">>>>>> {}", redact(&other.to_string())),
    }
    error.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        let load = |e| Error::Load(e).exit_code();
        assert_eq!(load(ConfigError::NoInstances), USAGE);
        assert_eq!(
            load(ConfigError::NoMatch {
                pattern: "x".into()
            }),
            USAGE
        );
        assert_eq!(
            load(ConfigError::Regex {
                at: None,
                context: "instance selection".into(),
                pattern: "(".into(),
                message: "m".into()
            }),
            USAGE
        );
        assert_eq!(
            load(ConfigError::NotFound {
                path: "kitchen.yml".into()
            }),
            ACTIONS_FAILED
        );
        assert_eq!(Error::Interrupted.exit_code(), INTERRUPTED);
        assert_eq!(
            Error::ActionsFailed {
                summary: "1 actions failed.".into()
            }
            .exit_code(),
            ACTIONS_FAILED
        );
        assert_eq!(
            Error::AmbiguousInstance {
                pattern: "d".into(),
                matches: "a, b".into()
            }
            .exit_code(),
            USAGE
        );
    }
}
