//! Broken kitchen.yml files: each gets a located, clear error before anything is created, and
//! none makes kitchen-driver panic. The messages are what a user reads (the loader's error,
//! or the preflight check `test` runs before the first create), snapshotted together so that
//! a reviewer reads them side by side.
//!
//! Then the problems test-kitchen only meets when a step runs (a missing script, playbook,
//! roles directory, requirements file, upload source, bats directory or Dockerfile, a bad
//! hook entry), through the real binary on the real Docker engine: each is refused by the
//! preflight check, before any container exists, with the key as written, the file and what
//! to do, and exit 20; and `list` still works on such a project, as test-kitchen's does.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use kitchen_driver::config::{self, LoadOptions};
use kitchen_driver::lifecycle::{Command, DestroyMode, preflight};
use test_support::{TestProject, text};

/// A working project around the broken part: one docker platform, one shell suite.
const PLATFORM: &str = "verifier:\n  name: shell\nplatforms:\n  - name: p\n    driver:\n      name: docker\n      image: kitchen/busybox:latest\n";

/// `(case, kitchen.yml)`: every case must fail.
fn cases() -> Vec<(&'static str, String)> {
    let with = |body: &str| format!("{PLATFORM}{body}");
    let suite = |block: &str| format!("{PLATFORM}suites:\n  - name: s\n{block}");
    vec![
        // Syntax.
        ("unclosed flow mapping", "platforms: [{name: p\nsuites: []\n".into()),
        ("tab indentation", "platforms:\n\t- name: p\n".into()),
        ("a flow sequence that never closes", with("suites: [{name: s}\n")),
        ("unclosed quote", with("suites:\n  - name: \"s\n")),
        ("bad indentation", "platforms:\n  - name: p\n   driver: docker\n".into()),
        ("undefined alias", with("suites:\n  - *nothing\n")),
        ("a list at the top", "- platforms\n- suites\n".into()),
        ("ERB that does not close", with("suites:\n  - name: <%= 'a' \n")),
        // Types.
        ("platforms is a string", "platforms: ubuntu\nsuites:\n  - name: s\n".into()),
        ("suites is a mapping", with("suites:\n  name: s\n")),
        ("a platform without a name", "platforms:\n  - driver: {name: docker}\nsuites:\n  - name: s\n".into()),
        ("a suite without a name", with("suites:\n  - provisioner: {name: shell}\n")),
        ("a suite that is a number", with("suites:\n  - 42\n")),
        ("max_retries is words", suite("    provisioner:\n      name: shell\n      max_retries: many\n")),
        ("driver block is a list", "platforms:\n  - name: p\n    driver: [docker]\nsuites:\n  - name: s\n".into()),
        ("verifier sleep is text", suite("    verifier:\n      name: shell\n      sleep: soon\n")),
        ("docker privileged is text", "platforms:\n  - name: p\n    driver:\n      name: docker\n      image: kitchen/busybox:latest\n      privileged: maybe\nsuites:\n  - name: s\n".into()),
        ("lxd ready_timeout is negative", "platforms:\n  - name: p\n    driver:\n      name: lxd\n      image: kitchen/busybox\n      ready_timeout: -5\nsuites:\n  - name: s\n".into()),
        // Unknown plugins.
        ("unknown driver", "platforms:\n  - name: p\n    driver: {name: vagrant}\nsuites:\n  - name: s\n".into()),
        ("unknown provisioner", suite("    provisioner: {name: chef_zero}\n")),
        ("unknown verifier", suite("    verifier: {name: inspec}\n")),
        ("unknown transport", "platforms:\n  - name: p\n    driver: {name: docker, image: kitchen/busybox:latest}\n    transport: {name: winrm}\nsuites:\n  - name: s\n".into()),
        // Missing files and scripts.
        ("ERB that needs Ruby", with("suites:\n  - name: s\n").replace("platforms:", "<%= File.read('/nonexistent/kitchen-hostile.yml') %>\nplatforms:")),
        ("busser (the default verifier) without bats tests", "platforms:\n  - name: p\n    driver: {name: docker, image: kitchen/busybox:latest}\nsuites:\n  - name: s\n".into()),
        // Bad regexes.
        ("includes with a bad regex", with("suites:\n  - name: s\n    includes: ['/p(/']\n")),
        ("excludes with a bad regex", with("suites:\n  - name: s\n    excludes: ['/[z-a]/']\n")),
        // Huge and impossible numbers.
        ("verifier sleep 1.0e+300", suite("    verifier:\n      name: shell\n      sleep: 1.0e+300\n")),
        ("wait_for_retry 1e300", suite("    provisioner:\n      name: shell\n      wait_for_retry: 1e300\n")),
        ("verifier sleep .inf", suite("    verifier:\n      name: shell\n      sleep: .inf\n")),
        ("wait_for_retry .nan", suite("    provisioner:\n      name: shell\n      wait_for_retry: .nan\n")),
        ("max_retries beyond u32", suite("    provisioner:\n      name: shell\n      max_retries: 99999999999999999999999\n")),
        ("docker cpus 1.0e+300", "platforms:\n  - name: p\n    driver:\n      name: docker\n      image: kitchen/busybox:latest\n      cpus: 1.0e+300\nsuites:\n  - name: s\n".into()),
        ("docker cpus negative", "platforms:\n  - name: p\n    driver:\n      name: docker\n      image: kitchen/busybox:latest\n      cpus: -2\nsuites:\n  - name: s\n".into()),
        ("ready_timeout 1.0e+300", "platforms:\n  - name: p\n    driver:\n      name: docker\n      image: kitchen/busybox:latest\n      ready_timeout: 1.0e+300\nsuites:\n  - name: s\n".into()),
    ]
}

/// The first error a user gets for the project in `dir`: from loading, or from the
/// preflight check of `kitchen-driver test`.
fn first_error(dir: &Path) -> Option<String> {
    let opts = LoadOptions::new(dir.to_path_buf(), BTreeMap::new());
    let project = match config::load(&opts) {
        Ok(p) => p,
        Err(e) => return Some(e.to_string()),
    };
    let command = Command::Test(DestroyMode::Passing);
    project.instances.iter().find_map(|i| {
        preflight::check(i, &command, &project.kitchen_root, &project.test_base_path)
            .err()
            .map(|e| e.to_string())
    })
}

#[test]
fn every_broken_kitchen_yml_gets_a_located_clear_error() {
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut report = String::new();
    let mut passed = Vec::new();
    for (name, text) in &cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kitchen.yml"), text).unwrap();
        let outcome = std::panic::catch_unwind(|| first_error(dir.path()));
        let message = match outcome {
            Err(_) => panic!("{name}: kitchen-driver panicked on\n{text}"),
            Ok(None) => {
                passed.push(*name);
                continue;
            }
            // Temporary paths differ on each run.
            Ok(Some(m)) => m.replace(&dir.path().display().to_string(), "<project>"),
        };
        assert!(!message.trim().is_empty(), "{name}: empty message");
        writeln!(report, "## {name}\n{message}\n").unwrap();
    }
    assert!(passed.is_empty(), "accepted as valid: {passed:?}");
    insta::assert_snapshot!(report);
}

/// A problem found only when a step runs, today or in test-kitchen.
struct RunTimeCase {
    name: &'static str,
    /// kitchen.yml: one Docker platform `p`, one suite `s` (instance `s-p`).
    kitchen_yml: String,
    /// Files to create first (relative path, content).
    files: &'static [(&'static str, &'static str)],
    /// The command that must refuse.
    command: &'static str,
    /// What the message must hold (`<project>` stands for the project directory).
    expected: &'static [&'static str],
}

fn run_time_cases() -> Vec<RunTimeCase> {
    let docker = "driver:\n  name: docker\n  image: kitchen/busybox:latest\n";
    let shell_verifier = "verifier:\n  name: shell\n";
    let yml = |top: &str, platform: &str, suite: &str| {
        format!(
            "{docker}{shell_verifier}{top}platforms:\n  - name: p\n{platform}suites:\n  - name: s\n{suite}"
        )
    };
    let suite = |block: &str| yml("", "", block);
    let ansible = |keys: &str| {
        suite(&format!(
            "    provisioner:\n      name: ansible_playbook\n{keys}"
        ))
    };
    let playbook: &[(&str, &str)] = &[("site.yml", "- hosts: all\n  tasks: []\n")];
    vec![
        RunTimeCase {
            name: "shell script missing",
            kitchen_yml: suite("    provisioner:\n      name: shell\n      script: scripts/nope.sh\n"),
            files: &[],
            command: "converge",
            expected: &[
                "`suites[0].provisioner.script` (<project>/kitchen.yml:12:15)",
                "the script <project>/scripts/nope.sh does not exist",
                "create it, correct the path, or set `command` instead",
            ],
        },
        RunTimeCase {
            name: "shell data_path missing",
            kitchen_yml: suite("    provisioner:\n      name: shell\n      data_path: nodata\n"),
            files: &[],
            command: "converge",
            expected: &[
                "`suites[0].provisioner.data_path` (<project>/kitchen.yml:12:18)",
                "the data directory <project>/nodata does not exist",
                "create it, or correct or remove `data_path`",
            ],
        },
        RunTimeCase {
            name: "shell upload source missing",
            kitchen_yml: suite("    provisioner:\n      name: shell\n      command: 'true'\n      uploads:\n        files/nothing: /opt/x\n"),
            files: &[],
            command: "test",
            expected: &[
                "`suites[0].provisioner.uploads` (<project>/kitchen.yml:",
                "the upload source <project>/files/nothing does not exist",
                "its `uploads` entry",
            ],
        },
        RunTimeCase {
            name: "ansible playbook missing",
            kitchen_yml: ansible("      playbook: missing.yml\n"),
            files: &[],
            command: "converge",
            expected: &[
                "invalid provisioner configuration for instance s-p",
                "`suites[0].provisioner.playbook` (<project>/kitchen.yml:12:17)",
                "the playbook <project>/missing.yml does not exist",
                "create it, or correct the path",
            ],
        },
        RunTimeCase {
            name: "ansible playbook neither set nor found",
            kitchen_yml: ansible(""),
            files: &[],
            command: "test",
            expected: &[
                "`provisioner.playbook`: no playbook is set and none was found",
                "set `playbook`, or create <project>/test/integration/s/default.yml",
            ],
        },
        RunTimeCase {
            name: "ansible roles_path missing",
            kitchen_yml: ansible("      playbook: site.yml\n      roles_path: roles-nowhere\n"),
            files: playbook,
            command: "converge",
            expected: &[
                "`suites[0].provisioner.roles_path` (<project>/kitchen.yml:13:",
                "the roles directory <project>/roles-nowhere does not exist",
            ],
        },
        RunTimeCase {
            name: "ansible group_vars_path missing",
            kitchen_yml: ansible("      playbook: site.yml\n      group_vars_path: gv\n"),
            files: playbook,
            command: "converge",
            expected: &[
                "`suites[0].provisioner.group_vars_path`",
                "the group_vars directory <project>/gv does not exist",
            ],
        },
        RunTimeCase {
            name: "ansible requirements file missing",
            kitchen_yml: ansible("      playbook: site.yml\n      requirements_path: requirements.yml\n"),
            files: playbook,
            command: "converge",
            expected: &[
                "`suites[0].provisioner.requirements_path` (<project>/kitchen.yml:13:",
                "the requirements file <project>/requirements.yml: cannot be read",
                "correct the file or the path, or remove `requirements_path`",
            ],
        },
        RunTimeCase {
            name: "ansible requirements file not YAML",
            kitchen_yml: ansible("      playbook: site.yml\n      requirements_path: requirements.yml\n"),
            files: &[
                ("site.yml", "- hosts: all\n  tasks: []\n"),
                ("requirements.yml", "roles: [{name: x\n"),
            ],
            command: "converge",
            expected: &[
                "`suites[0].provisioner.requirements_path`",
                "the requirements file <project>/requirements.yml: not valid YAML",
            ],
        },
        RunTimeCase {
            name: "ansible vault password file missing",
            kitchen_yml: ansible("      playbook: site.yml\n      ansible_vault_password_file: vault-pass\n"),
            files: playbook,
            command: "converge",
            expected: &[
                "`suites[0].provisioner.ansible_vault_password_file`",
                "the file <project>/vault-pass does not exist",
            ],
        },
        RunTimeCase {
            name: "bats directory missing",
            kitchen_yml: yml("", "", "    verifier:\n      name: bats\n      bats_path: tests/bats\n"),
            files: &[],
            command: "test",
            expected: &[
                "invalid verifier configuration for instance s-p",
                "`suites[0].verifier.bats_path` (<project>/kitchen.yml:",
                "no bats tests: <project>/tests/bats is not a directory",
                "put *.bats files in <project>/test/integration/s/bats",
            ],
        },
        RunTimeCase {
            name: "bats directory without .bats files",
            kitchen_yml: yml("", "", "    verifier:\n      name: bats\n"),
            files: &[("test/integration/s/bats/README", "no tests\n")],
            command: "verify",
            expected: &[
                "`verifier.bats_path`: no *.bats files in <project>/test/integration/s/bats",
            ],
        },
        RunTimeCase {
            name: "hook entry without local or remote",
            kitchen_yml: suite("    lifecycle:\n      pre_create:\n        - echo fine\n        - {cwd: /tmp}\n"),
            files: &[],
            command: "create",
            expected: &[
                "invalid lifecycle configuration for instance s-p",
                "`suites[0].lifecycle.pre_create[1]` (<project>/kitchen.yml:13:11)",
                "a hook needs `local:` or `remote:`",
                "write a hook as a command string, or a map with `local:` or `remote:`",
            ],
        },
        RunTimeCase {
            name: "hook local that is a list",
            kitchen_yml: yml("", "    lifecycle:\n      post_converge:\n        - local: [echo, one]\n", ""),
            files: &[],
            command: "create",
            expected: &[
                "`platforms[0].lifecycle.post_converge[0]` (<project>/kitchen.yml:",
                "`local` must be a string",
            ],
        },
        RunTimeCase {
            name: "top-level hook that is a number",
            kitchen_yml: yml("lifecycle:\n  pre_verify:\n    - echo a\n    - 42\n", "", ""),
            files: &[],
            command: "test",
            expected: &[
                "`lifecycle.pre_verify[1]` (<project>/kitchen.yml:9:7)",
                "a hook is a string or a map, not 42",
            ],
        },
        RunTimeCase {
            name: "dockerfile missing",
            kitchen_yml: "driver:\n  name: docker\nverifier:\n  name: shell\nplatforms:\n  - name: p\n    driver:\n      dockerfile: images/Dockerfile\nsuites:\n  - name: s\n".into(),
            files: &[],
            command: "create",
            expected: &[
                "invalid driver configuration for instance s-p",
                "`platforms[0].driver.dockerfile` (<project>/kitchen.yml:8:19)",
                "the Dockerfile <project>/images/Dockerfile does not exist",
            ],
        },
    ]
}

#[test]
fn problems_found_when_a_step_runs_are_refused_before_any_container_exists() {
    let mut failures = Vec::new();
    for case in run_time_cases() {
        let p = TestProject::new("broken-runtime");
        p.write("kitchen.yml", &case.kitchen_yml);
        for (path, content) in case.files {
            p.write(path, content);
        }
        let out = p.kitchen_driver(120).args([case.command]).output().unwrap();
        let root = p.root().display().to_string();
        let stderr = text(&out.stderr).replace(&root, "<project>");
        let stdout = text(&out.stdout).replace(&root, "<project>");
        let mut problems = Vec::new();
        if out.status.code() != Some(20) {
            problems.push(format!("exit {:?}, not 20", out.status.code()));
        }
        for want in case.expected {
            if !stderr.contains(want) {
                problems.push(format!("no {want:?} in the message"));
            }
        }
        if stdout.contains("Creating <s-p>") {
            problems.push("create ran".into());
        }
        if p.state_exists("s-p") {
            problems.push("a state file was written".into());
        }
        let containers = p.containers(None);
        if !containers.is_empty() {
            problems.push(format!("containers were created: {containers:?}"));
        }
        // `list` takes no action: it works on the same project, as test-kitchen's does.
        let list = p.kitchen_driver(60).args(["list"]).output().unwrap();
        if !list.status.success() || !text(&list.stdout).contains("s-p") {
            problems.push(format!("list failed: {}", text(&list.stderr)));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} (`{}`): {}\n{stdout}\n{stderr}",
                case.name,
                case.command,
                problems.join("; ")
            ));
        }
        p.assert_no_containers();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The checks stop only the commands that reach the step: a `create` does not need the
/// playbook or the bats tests yet, so it runs (test-kitchen creates without reading them).
#[test]
fn a_missing_playbook_or_bats_directory_does_not_stop_create() {
    let p = TestProject::new("broken-runtime-create");
    p.write(
        "kitchen.yml",
        "driver:\n  name: docker\n  image: kitchen/busybox:latest\nprovisioner:\n  name: ansible_playbook\n  playbook: missing.yml\nverifier:\n  name: bats\nplatforms:\n  - name: p\nsuites:\n  - name: s\n",
    );
    let out = p.kitchen_driver(120).args(["create"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(p.containers(Some("s-p")).len(), 1);
    let out = p.kitchen_driver(120).args(["converge"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(20), "{stderr}");
    assert!(stderr.contains("provisioner.playbook"), "{stderr}");
    let out = p.kitchen_driver(120).args(["destroy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    p.assert_no_containers();
}
