//! The instance lifecycle: test-kitchen's state machine, hooks and the concurrent runner.
//!
//! Actions run in the order `destroy create converge setup verify` ([`Action`]). Asking for an
//! action runs every later step not yet run ([`steps`]); asking again for an action already
//! reached runs just that action again. [`Runner`] takes many instances through a
//! [`Command`] at once, collecting failures as test-kitchen does.
//!
//! ```no_run
//! use kitchen_driver::config::{self, LoadOptions};
//! use kitchen_driver::lifecycle::{Command, DestroyMode, RunOptions, Runner, failure_summary};
//! use kitchen_driver::events::EventBus;
//! use kitchen_driver::report::{TextOptions, TextReporter};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let project = config::load(&LoadOptions::from_process("examples".into()))?;
//! let bus = EventBus::new();
//! bus.subscribe(TextReporter::plain(Box::new(std::io::stdout()), TextOptions::default()));
//! let runner = Runner::new(&project.kitchen_root, &project.test_base_path, bus);
//! let outcomes = runner
//!     .run(&project.instances, &Command::Test(DestroyMode::Always), RunOptions::new(4, false))
//!     .await;
//! if let Some(summary) = failure_summary(&outcomes) {
//!     eprintln!("{summary}"); // "N actions failed." and one line per failure
//! }
//! # Ok(())
//! # }
//! ```

mod hooks;
pub mod preflight;
mod runner;
mod sampler;

pub use crate::action::{Action, UnknownAction};
pub use hooks::{Hook, HookCommand, Hooks, Phase};
pub use runner::{
    Canceller, Command, DestroyMode, InstanceOutcome, RunOptions, Runner, STEP_TIMEOUT_KEY,
    failure_summary, parse_step_timeout, step_timeout_of,
};

/// The steps that take an instance whose last completed action is `last` to `target`
/// (test-kitchen's `Instance::FSM.actions`): every step after `last` up to `target`, or just
/// `target` again when it was already reached. No `last` counts as destroyed.
pub fn steps(last: Option<Action>, target: Action) -> Vec<Action> {
    let from = last.unwrap_or(Action::Destroy).index();
    let to = target.index();
    if from >= to {
        vec![target]
    } else {
        Action::ALL[from + 1..=to].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    #[test]
    fn fresh_instance_runs_everything_up_to_the_target() {
        assert_eq!(steps(None, Create), [Create]);
        assert_eq!(steps(None, Verify), [Create, Converge, Setup, Verify]);
        assert_eq!(steps(Some(Destroy), Converge), [Create, Converge]);
        assert_eq!(steps(None, Destroy), [Destroy]);
    }

    #[test]
    fn partly_done_instance_runs_only_the_rest() {
        assert_eq!(steps(Some(Create), Verify), [Converge, Setup, Verify]);
        assert_eq!(steps(Some(Converge), Setup), [Setup]);
    }

    #[test]
    fn reached_or_passed_target_reruns_only_the_target() {
        assert_eq!(steps(Some(Verify), Converge), [Converge]);
        assert_eq!(steps(Some(Converge), Converge), [Converge]);
        assert_eq!(steps(Some(Verify), Destroy), [Destroy]);
        assert_eq!(steps(Some(Create), Create), [Create]);
    }

    #[test]
    fn every_pair_ends_at_the_target_and_is_in_order() {
        for last in [
            None,
            Some(Destroy),
            Some(Create),
            Some(Converge),
            Some(Setup),
            Some(Verify),
        ] {
            for target in Action::ALL {
                let s = steps(last, target);
                assert_eq!(s.last(), Some(&target));
                assert!(
                    s.windows(2).all(|w| w[0] < w[1]),
                    "{last:?} {target:?} {s:?}"
                );
                assert!(!s.is_empty());
            }
        }
    }
}
