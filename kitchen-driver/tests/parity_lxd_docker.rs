//! The parity matrix on the real daemons: the example project's suites (shell and Ansible
//! provisioners; shell and bats verifiers) on LXD and on Docker give the same per-instance
//! results, passing and failing alike, and leave nothing behind (checked through the APIs and
//! through `lxc list` and `docker ps -a` by label).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{TestProject, run};
use kitchen_driver::config::{InstanceConfig, LoadOptions, load};
use kitchen_driver::driver::docker::LABEL_PROJECT;
use kitchen_driver::driver::naming::project_hash;
use kitchen_driver::lifecycle::{Command, DestroyMode, InstanceOutcome};
use kitchen_driver::verifier::CaseOutcome;

/// LXD platform -> its Docker twin in examples/kitchen.yml.
const TWINS: &[(&str, &str)] = &[
    ("busybox", "docker-busybox"),
    ("debian-12", "docker-debian-12"),
];

/// Copies `from` into `to` recursively (skipping `.kitchen`).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".kitchen" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The example project, copied into a `kdtest-...` directory.
fn example(label: &str) -> TestProject {
    let p = TestProject::new(label);
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    copy_tree(&examples, p.root());
    p
}

fn instances(p: &TestProject) -> Vec<InstanceConfig> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    load(&LoadOptions::new(p.root().to_path_buf(), env))
        .expect("examples/kitchen.yml loads")
        .instances
}

/// What must be equal between twins: the error text (with the instance name neutralised) and
/// every case's group, name and outcome.
type Result = (Option<String>, Vec<(Option<String>, String, CaseOutcome)>);

fn result_of(o: &InstanceOutcome) -> Result {
    (
        o.error
            .as_ref()
            .map(|e| e.to_string().replace(&o.instance, "<instance>")),
        o.cases
            .iter()
            .map(|c| (c.group.clone(), c.name.clone(), c.outcome))
            .collect(),
    )
}

/// The `ok=.. changed=.. failed=..` counts of the PLAY RECAP line of `instance` in `out`.
fn recap(out: &str, instance: &str) -> Option<String> {
    let prefix = format!("[{instance}]");
    out.lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim())
        // The instance is `localhost` in the generated inventory, as under kitchen-ansible.
        .find(|l| l.starts_with("localhost ") && l.contains("ok="))
        .map(|l| {
            l.split_once(':')
                .map(|x| x.1)
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
}

/// `lxc list` and `docker ps -a` (the CLIs, not the APIs the driver uses) show nothing of `p`.
fn assert_nothing_left(p: &TestProject) {
    p.assert_no_containers();
    let hash = project_hash(p.root());
    let lxc = std::process::Command::new("lxc")
        .args(["list", "--format", "csv", "-c", "n"])
        .output()
        .expect("lxc CLI");
    assert!(lxc.status.success());
    let names = String::from_utf8_lossy(&lxc.stdout);
    assert!(
        !names.contains(&format!("kitchen-{hash}-")),
        "LXD instances left behind:\n{names}"
    );
    let docker = std::process::Command::new("/usr/bin/docker")
        .args(["ps", "-a", "-q", "--filter"])
        .arg(format!("label={LABEL_PROJECT}={}", p.root().display()))
        .output()
        .expect("docker CLI");
    assert!(docker.status.success());
    assert_eq!(String::from_utf8_lossy(&docker.stdout).trim(), "");
}

#[tokio::test]
async fn example_suites_give_the_same_results_on_lxd_and_docker() {
    let p = example("parity");
    let all = instances(&p);
    assert_eq!(
        all.len(),
        6,
        "{:?}",
        all.iter().map(|i| &i.name).collect::<Vec<_>>()
    );
    let (outcomes, out) = run(&p, &all, Command::Test(DestroyMode::Always), 3).await;
    let by_name: BTreeMap<&str, &InstanceOutcome> =
        outcomes.iter().map(|o| (o.instance.as_str(), o)).collect();
    for o in &outcomes {
        assert!(o.error.is_none(), "{}: {:?}\n{out}", o.instance, o.error);
    }
    let mut compared = 0;
    for suite in ["default", "ansible"] {
        for (lxd, docker) in TWINS {
            let (a, b) = (format!("{suite}-{lxd}"), format!("{suite}-{docker}"));
            let (Some(x), Some(y)) = (by_name.get(a.as_str()), by_name.get(b.as_str())) else {
                continue;
            };
            assert_eq!(result_of(x), result_of(y), "{a} vs {b}");
            assert_eq!(recap(&out, &a), recap(&out, &b), "{a} vs {b}\n{out}");
            compared += 1;
        }
    }
    assert_eq!(compared, 3, "default x 2 twins + ansible x debian-12");
    let ansible = by_name["ansible-debian-12"];
    assert_eq!(ansible.cases.len(), 5);
    assert!(
        ansible
            .cases
            .iter()
            .all(|c| c.outcome == CaseOutcome::Passed)
    );
    assert_eq!(
        recap(&out, "ansible-debian-12").as_deref(),
        Some("ok=5 changed=4 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0")
    );
    assert_nothing_left(&p);
}

#[tokio::test]
async fn failures_are_the_same_on_lxd_and_docker() {
    let p = example("parity-fail");
    // One failing and one skipped bats test beside the example's passing ones.
    p.write(
        "test/integration/ansible/bats/zz_extra.bats",
        "@test \"the service listens on its port\" {\n  grep -q '^port=9090$' /etc/hello/hello.conf\n}\n@test \"later\" {\n  skip \"not yet\"\n}\n",
    );
    let ansible: Vec<InstanceConfig> = instances(&p)
        .into_iter()
        .filter(|i| i.suite == "ansible")
        .collect();
    assert_eq!(ansible.len(), 2);
    let (outcomes, out) = run(&p, &ansible, Command::Test(DestroyMode::Always), 2).await;
    let (x, y) = (result_of(&outcomes[0]), result_of(&outcomes[1]));
    assert_eq!(x, y, "{out}");
    assert_eq!(
        x.0.as_deref(),
        Some(
            "instance <instance>: verify failed: 1 of 7 bats tests failed: zz_extra.bats: the service listens on its port"
        ),
        "{out}"
    );
    assert_eq!(
        x.1.iter().filter(|c| c.2 == CaseOutcome::Skipped).count(),
        1
    );
    assert_nothing_left(&p);
}
