//! `destroy --orphans`, and the orphans note of `list` (see [`crate::orphans`]).

use std::io::Write;

use clap::Args;

use super::ActionArgs;
use crate::config::{self, LoadOptions, Project};
use crate::error::{Error, Result};
use crate::orphans::{self, Removal, Survey};

/// `destroy` flags.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Flags shared with the other actions.
    #[command(flatten)]
    pub common: ActionArgs,
    /// Instead of instances, remove what this checkout created that no state file knows:
    /// containers of renamed or removed instances, or of runs killed before they saved, and
    /// the `kitchen-driver-build:*` images no state uses (`list` mentions them).
    #[arg(long, conflicts_with = "instances")]
    pub orphans: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Startup {
            action: "start the async runtime",
            source,
        })
}

/// `destroy --orphans`: removes the orphans, printing one line for each.
///
/// # Errors
/// [`Error::ActionsFailed`] when a runtime kitchen.yml uses could not be asked (so nothing
/// can be promised about it); a runtime error that stopped a removal.
pub(super) fn destroy(opts: &LoadOptions) -> Result<i32> {
    let project = config::load(opts)?;
    let rt = runtime()?;
    let survey = rt.block_on(orphans::find(&project));
    let mut out = std::io::stdout().lock();
    if survey.orphans.is_empty() {
        let _ = writeln!(
            out,
            "-----> No orphans of {}",
            project.kitchen_root.display()
        );
    }
    let unreachable = survey.unreachable.clone();
    for removal in rt.block_on(orphans::remove(&project, survey.orphans))? {
        let _ = match removal {
            Removal::Removed(o) => writeln!(out, "-----> Removed {o}"),
            Removal::Kept(o, why) => writeln!(out, "-----> Kept {o}: {why}"),
        };
    }
    let _ = out.flush();
    if unreachable.is_empty() {
        Ok(super::exit::SUCCESS)
    } else {
        Err(Error::ActionsFailed {
            summary: format!(
                "Orphans could not be looked for everywhere kitchen.yml creates instances:\n>>>>>>     {}",
                unreachable.join("\n>>>>>>     ")
            ),
        })
    }
}

/// The note `list` prints on stderr when the checkout has orphans (or a runtime it uses could
/// not be asked); `None` when there is nothing to say.
pub(super) fn list_note(project: &Project) -> Option<String> {
    let survey: Survey = runtime().ok()?.block_on(orphans::find(project));
    let mut lines = Vec::new();
    if !survey.orphans.is_empty() {
        lines.push(format!(
            "{} resource(s) of this checkout that no state file knows (`kitchen-driver destroy --orphans` removes them):",
            survey.orphans.len()
        ));
        lines.extend(survey.orphans.iter().map(|o| format!("  {o}")));
    }
    for u in &survey.unreachable {
        lines.push(format!("orphans not looked for: {u}"));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}
