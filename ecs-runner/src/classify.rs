//! Deciding what a stopped task, or a RunTask failure, means (pure: unit-tested on responses
//! shaped as the ECS API documents them).
//!
//! The AWS layer converts the SDK's types into these views; `--local` builds them from
//! Docker's container state. One rule set decides both.

use serde::{Deserialize, Serialize};

/// A container of a task, as DescribeTasks returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ContainerView {
    /// The container's name.
    #[serde(default)]
    pub name: String,
    /// The exit code; absent when the container never ran.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Why it stopped (up to 1024 characters).
    #[serde(default)]
    pub reason: Option<String>,
    /// `PENDING`, `RUNNING`, `STOPPED`.
    #[serde(default)]
    pub last_status: Option<String>,
}

/// A task, as DescribeTasks returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TaskView {
    /// The ARN.
    #[serde(default)]
    pub task_arn: String,
    /// PROVISIONING ... STOPPED.
    #[serde(default)]
    pub last_status: String,
    /// `TaskFailedToStart`, `EssentialContainerExited`, `UserInitiated`, ...
    #[serde(default)]
    pub stop_code: Option<String>,
    /// Free text (`CannotPullContainerError: ...`).
    #[serde(default)]
    pub stopped_reason: Option<String>,
    /// The containers.
    #[serde(default)]
    pub containers: Vec<ContainerView>,
}

impl TaskView {
    /// Whether ECS has stopped it.
    pub fn is_stopped(&self) -> bool {
        self.last_status == "STOPPED"
    }

    /// The task ID: the last segment of the ARN.
    pub fn id(&self) -> &str {
        task_id(&self.task_arn)
    }
}

/// The last `/` segment of a task ARN (the awslogs stream's last part).
pub fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// A `failures[]` item of RunTask or DescribeTasks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailureView {
    /// The resource concerned.
    #[serde(default)]
    pub arn: Option<String>,
    /// `RESOURCE:MEMORY`, `AGENT`, `MISSING`, ...
    #[serde(default)]
    pub reason: Option<String>,
    /// More text.
    #[serde(default)]
    pub detail: Option<String>,
}

impl FailureView {
    /// `reason (detail)`.
    pub fn describe(&self) -> String {
        match (&self.reason, &self.detail) {
            (Some(r), Some(d)) => format!("{r} ({d})"),
            (Some(r), None) => r.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => "unknown failure".into(),
        }
    }
}

/// What a stopped task means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Every essential container exited 0.
    Passed,
    /// An essential container exited non-zero: the suite failed.
    Failed {
        /// The exit code.
        exit_code: i32,
    },
    /// The infrastructure failed: the suite's result is unknown.
    Infrastructure {
        /// What happened.
        reason: String,
    },
    /// Stopped by someone (this run's Ctrl-C, a timeout, or a person).
    Stopped {
        /// The stopped reason.
        reason: String,
    },
}

/// stoppedReason / container reason texts that mean the task never got to run its code.
const INFRA_REASONS: &[&str] = &[
    "CannotPullContainerError",
    "ResourceInitializationError",
    "CannotStartContainerError",
    "CannotCreateContainerError",
    "ContainerRuntimeError",
    "OutOfMemoryError",
];

/// Classifies a STOPPED task from its essential containers.
pub fn classify_stopped(task: &TaskView, essential: &[&str]) -> Verdict {
    let reason = task.stopped_reason.clone().unwrap_or_default();
    let infra_text = |s: &str| INFRA_REASONS.iter().find(|r| s.contains(*r)).copied();
    match task.stop_code.as_deref() {
        Some("TaskFailedToStart") => {
            return Verdict::Infrastructure {
                reason: format!("TaskFailedToStart: {reason}"),
            };
        }
        Some(
            code @ ("SpotInterruption"
            | "TerminationNotice"
            | "InfrastructureHealth"
            | "ServiceSchedulerInitiated"),
        ) => {
            return Verdict::Infrastructure {
                reason: format!("{code}: {reason}"),
            };
        }
        Some("UserInitiated") => return Verdict::Stopped { reason },
        _ => {}
    }
    if let Some(r) = infra_text(&reason) {
        return Verdict::Infrastructure {
            reason: format!("{r}: {reason}"),
        };
    }
    let relevant: Vec<&ContainerView> = task
        .containers
        .iter()
        .filter(|c| essential.is_empty() || essential.contains(&c.name.as_str()))
        .collect();
    if relevant.is_empty() {
        return Verdict::Infrastructure {
            reason: format!("no essential container in the task ({reason})"),
        };
    }
    for c in &relevant {
        if let Some(r) = c.reason.as_deref().and_then(infra_text) {
            return Verdict::Infrastructure {
                reason: format!(
                    "container {}: {r}: {}",
                    c.name,
                    c.reason.as_deref().unwrap_or("")
                ),
            };
        }
    }
    for c in &relevant {
        match c.exit_code {
            None => {
                return Verdict::Infrastructure {
                    reason: format!(
                        "container {} has no exit code (it never ran){}",
                        c.name,
                        if reason.is_empty() {
                            String::new()
                        } else {
                            format!(": {reason}")
                        }
                    ),
                };
            }
            Some(0) => {}
            Some(code) => return Verdict::Failed { exit_code: code },
        }
    }
    Verdict::Passed
}

/// What to do about a RunTask `failures[]` item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunFailure {
    /// Capacity or agent trouble: retry with backoff.
    Retry,
    /// The request cannot succeed as is.
    Fatal,
}

/// Classifies a RunTask failure reason: `RESOURCE:*` and `AGENT` are retried.
pub fn classify_run_failure(f: &FailureView) -> RunFailure {
    match f.reason.as_deref() {
        Some(r) if r.starts_with("RESOURCE:") || r == "AGENT" => RunFailure::Retry,
        _ => RunFailure::Fatal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(json: &str) -> TaskView {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_essential_container_exit_code_decides() {
        let t = task(
            r#"{"taskArn":"arn:aws:ecs:us-east-1:123456789012:task/c/0123abcd","lastStatus":"STOPPED",
            "stopCode":"EssentialContainerExited","stoppedReason":"Essential container in task exited",
            "containers":[{"name":"kitchen","exitCode":0,"lastStatus":"STOPPED"},{"name":"side","exitCode":2}]}"#,
        );
        assert_eq!(classify_stopped(&t, &["kitchen"]), Verdict::Passed);
        assert_eq!(
            classify_stopped(&t, &["kitchen", "side"]),
            Verdict::Failed { exit_code: 2 }
        );
        assert_eq!(t.id(), "0123abcd");
    }

    #[test]
    fn a_missing_exit_code_is_infrastructure() {
        let t = task(
            r#"{"taskArn":"a","lastStatus":"STOPPED","stopCode":"EssentialContainerExited",
            "containers":[{"name":"kitchen","lastStatus":"STOPPED"}]}"#,
        );
        assert!(
            matches!(classify_stopped(&t, &["kitchen"]), Verdict::Infrastructure { reason } if reason.contains("no exit code"))
        );
    }

    #[test]
    fn failed_to_start_and_pull_errors_are_infrastructure() {
        let t = task(
            r#"{"taskArn":"a","lastStatus":"STOPPED","stopCode":"TaskFailedToStart",
            "stoppedReason":"CannotPullContainerError: pull image manifest has been retried 1 time(s)",
            "containers":[{"name":"kitchen","reason":"CannotPullContainerError: ref not found"}]}"#,
        );
        assert!(
            matches!(classify_stopped(&t, &["kitchen"]), Verdict::Infrastructure { reason } if reason.starts_with("TaskFailedToStart"))
        );
        // The same reason without a stop code (older agents), in the container's reason.
        let t = task(
            r#"{"taskArn":"a","lastStatus":"STOPPED",
            "containers":[{"name":"kitchen","reason":"ResourceInitializationError: unable to pull secrets"}]}"#,
        );
        assert!(
            matches!(classify_stopped(&t, &["kitchen"]), Verdict::Infrastructure { reason } if reason.contains("ResourceInitializationError"))
        );
        let t = task(
            r#"{"taskArn":"a","lastStatus":"STOPPED","stoppedReason":"CannotPullContainerError: denied",
            "containers":[{"name":"kitchen"}]}"#,
        );
        assert!(matches!(
            classify_stopped(&t, &["kitchen"]),
            Verdict::Infrastructure { .. }
        ));
    }

    #[test]
    fn a_user_stop_is_stopped_and_spot_is_infrastructure() {
        let t = task(
            r#"{"taskArn":"a","lastStatus":"STOPPED","stopCode":"UserInitiated","stoppedReason":"ecs-runner: interrupted",
            "containers":[{"name":"kitchen","exitCode":137}]}"#,
        );
        assert_eq!(
            classify_stopped(&t, &["kitchen"]),
            Verdict::Stopped {
                reason: "ecs-runner: interrupted".into()
            }
        );
        let t = task(
            r#"{"taskArn":"a","lastStatus":"STOPPED","stopCode":"SpotInterruption","containers":[{"name":"kitchen","exitCode":143}]}"#,
        );
        assert!(matches!(
            classify_stopped(&t, &["kitchen"]),
            Verdict::Infrastructure { .. }
        ));
    }

    #[test]
    fn run_failures_retry_on_capacity_and_agent_only() {
        let f: Vec<FailureView> = serde_json::from_str(r#"[
            {"arn":"arn:aws:ecs:us-east-1:1:container-instance/x","reason":"RESOURCE:MEMORY"},
            {"reason":"RESOURCE:CPU"},{"reason":"AGENT"},{"reason":"ATTRIBUTE","detail":"requires ecs.capability.x"},
            {"reason":"MISSING"}]"#).unwrap();
        let got: Vec<RunFailure> = f.iter().map(classify_run_failure).collect();
        use RunFailure::*;
        assert_eq!(got, [Retry, Retry, Retry, Fatal, Fatal]);
        assert_eq!(f[3].describe(), "ATTRIBUTE (requires ecs.capability.x)");
    }
}
