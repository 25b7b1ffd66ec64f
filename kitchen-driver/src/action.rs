//! [`Action`]: the five lifecycle actions, their names in state files and hook keys, and
//! their words in banners and `list`. Shared by the lifecycle, the state file and the CLI;
//! depends on nothing else in the crate.

use std::fmt;
use std::str::FromStr;

/// One lifecycle action, in test-kitchen's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Remove the instance.
    Destroy,
    /// Create and start the instance.
    Create,
    /// Run the provisioner.
    Converge,
    /// An empty step in test-kitchen 4 (kept for hooks and state compatibility).
    Setup,
    /// Run the verifier.
    Verify,
}

impl Action {
    /// Every action, in order.
    pub const ALL: [Action; 5] = [
        Action::Destroy,
        Action::Create,
        Action::Converge,
        Action::Setup,
        Action::Verify,
    ];

    /// The name as written in state files and hook keys (`converge`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Destroy => "destroy",
            Action::Create => "create",
            Action::Converge => "converge",
            Action::Setup => "setup",
            Action::Verify => "verify",
        }
    }

    /// The banner verb (`Converging`).
    pub fn verb(self) -> &'static str {
        match self {
            Action::Destroy => "Destroying",
            Action::Create => "Creating",
            Action::Converge => "Converging",
            Action::Setup => "Setting up",
            Action::Verify => "Verifying",
        }
    }

    /// `list`'s Last Action label (`Converged`).
    pub fn label(self) -> &'static str {
        match self {
            Action::Destroy => "<Not Created>",
            Action::Create => "Created",
            Action::Converge => "Converged",
            Action::Setup => "Set Up",
            Action::Verify => "Verified",
        }
    }

    /// The position in test-kitchen's order (destroy is 0).
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of the five actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAction(pub String);

impl fmt::Display for UnknownAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown action `{}`", self.0)
    }
}

impl std::error::Error for UnknownAction {}

impl FromStr for Action {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>().unwrap(), a);
        }
        assert!("test".parse::<Action>().is_err());
    }

    #[test]
    fn labels_as_test_kitchen_list() {
        assert_eq!(Action::Setup.label(), "Set Up");
        assert_eq!(Action::Verify.label(), "Verified");
        assert_eq!(Action::Destroy.label(), "<Not Created>");
    }
}
