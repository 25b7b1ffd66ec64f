//! The `ansible_playbook` provisioner and the `bats` verifier on the real Docker engine, with
//! `kitchen/debian-12` (python3 and bats inside) and `kitchen/busybox` (neither): passing
//! suites with per-test results, a failing task, a failing bats test, missing tools, galaxy
//! requirements from local sources and offline errors, the idempotency test, and the real
//! binary's exit code 20. Every test removes what it created (drop guard on the project label)
//! and asserts that nothing of its project is left.

use assert_cmd::Command as Bin;
use kitchen_driver::Error;
use kitchen_driver::lifecycle::{Command, DestroyMode};
use kitchen_driver::verifier::CaseOutcome;
use serde_json::{Value, json};
use test_support::{TestProject, busybox, instance, run};

fn debian() -> Value {
    json!({"name": "docker", "image": "kitchen/debian-12:latest"})
}

const PLAYBOOK: &str = r#"---
- hosts: all
  gather_facts: false
  roles:
    - hello
  tasks:
    - name: write the marker
      ansible.builtin.copy:
        dest: /etc/hello/marker
        content: "{{ marker }}\n"
    - name: write the notes
      ansible.builtin.copy:
        dest: /etc/hello/notes
        content: "{{ group_note | default('no group') }} {{ lookup('env', 'KD_NOTE') }}\n"
"#;

const ROLE_TASKS: &str = r#"---
- name: create the config directory
  ansible.builtin.file:
    path: /etc/hello
    state: directory
- name: write the greeting
  ansible.builtin.copy:
    dest: /etc/hello/hello.conf
    content: "greeting=hello from {{ inventory_hostname }}\n"
"#;

const PASSING_BATS: &str = r#"#!/usr/bin/env bats
load helper

@test "the greeting is configured" {
  grep -q '^greeting=hello from ' /etc/hello/hello.conf
}

@test "the marker has the extra var" {
  [ "$(cat /etc/hello/marker)" = "$EXPECTED_MARKER" ]
}

@test "not on this platform" {
  skip "needs systemd"
}
"#;

const SECOND_BATS: &str = r#"#!/usr/bin/env bats
@test "python3 is there" {
  run python3 -c 'print(42)'
  [ "$status" -eq 0 ]
  [ "$output" = "42" ]
}
"#;

/// A project with an `ansible` suite: playbook, a role under `roles/`, bats files and a helper.
fn ansible_project(label: &str) -> TestProject {
    let p = TestProject::new(label);
    p.write("test/integration/ansible/default.yml", PLAYBOOK);
    p.write("roles/hello/tasks/main.yml", ROLE_TASKS);
    p.write("test/integration/ansible/bats/hello.bats", PASSING_BATS);
    p.write("test/integration/ansible/bats/python.bats", SECOND_BATS);
    p.write(
        "test/integration/ansible/bats/helper.bash",
        "EXPECTED_MARKER=from-extra-vars\n",
    );
    p
}

fn ansible_provisioner() -> Value {
    json!({"name": "ansible_playbook", "extra_vars": {"marker": "from-extra-vars"}})
}

fn bats() -> Value {
    json!({"name": "bats"})
}

#[tokio::test]
async fn ansible_converge_and_bats_verify_pass_with_one_result_per_test() {
    let p = ansible_project("ans-pass");
    // group_vars found beside the suite (kitchen-ansible's lookup) apply to the `hosts` group;
    // env_vars reach ansible-playbook's environment.
    p.write(
        "test/integration/ansible/group_vars/webservers.yml",
        "group_note: from-group-vars\n",
    );
    // busser's shared helpers (<tbp>/helpers/bats/) sit beside the suite's files.
    p.write(
        "test/integration/helpers/bats/notes.bash",
        "notes() { cat /etc/hello/notes; }\n",
    );
    p.write(
        "test/integration/ansible/bats/notes.bats",
        "load notes\n@test \"group_vars and env_vars reached the play\" {\n  [ \"$(notes)\" = 'from-group-vars from-env' ]\n}\n",
    );
    let mut prov = ansible_provisioner();
    prov["hosts"] = json!("webservers");
    prov["env_vars"] = json!({"KD_NOTE": "from-env"});
    let inst = instance("ansible", "debian-12", debian(), prov, bats(), json!({}));
    let (outcomes, out) = run(&p, &[inst], Command::Test(DestroyMode::Passing), 1).await;
    let o = &outcomes[0];
    assert!(o.error.is_none(), "{:?}\n{out}", o.error);
    // Ansible's output streamed through the instance's prefixed lines.
    for needle in [
        "[ansible-debian-12]        TASK [hello : write the greeting]",
        "[ansible-debian-12]        changed: [localhost]",
        "[ansible-debian-12]        TASK [write the marker]",
        "[ansible-debian-12]        ok 1 the greeting is configured",
    ] {
        assert!(out.contains(needle), "{needle}\n{out}");
    }
    let got: Vec<(Option<&str>, &str, CaseOutcome)> = o
        .cases
        .iter()
        .map(|c| (c.group.as_deref(), c.name.as_str(), c.outcome))
        .collect();
    assert_eq!(
        got,
        [
            (
                Some("hello.bats"),
                "the greeting is configured",
                CaseOutcome::Passed
            ),
            (
                Some("hello.bats"),
                "the marker has the extra var",
                CaseOutcome::Passed
            ),
            (
                Some("hello.bats"),
                "not on this platform",
                CaseOutcome::Skipped
            ),
            (
                Some("notes.bats"),
                "group_vars and env_vars reached the play",
                CaseOutcome::Passed
            ),
            (Some("python.bats"), "python3 is there", CaseOutcome::Passed),
        ]
    );
    assert!(o.cases.iter().all(|c| c.duration.is_some()));
    assert!(o.cases[2].output.contains("needs systemd"));
    assert!(
        out.contains("bats: 5 tests, 4 passed, 0 failed, 1 skipped"),
        "{out}"
    );
    assert!(!p.state_exists("ansible-debian-12"));
    p.assert_no_containers();
}

#[tokio::test]
async fn a_failing_task_fails_converge_naming_the_task() {
    let p = ansible_project("ans-task");
    p.write(
        "test/integration/ansible/default.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: fine\n      ansible.builtin.command: 'true'\n    - name: install the impossible\n      ansible.builtin.command: /bin/sh -c 'echo nope >&2; exit 3'\n    - name: never reached\n      ansible.builtin.command: 'true'\n",
    );
    // kitchen-ansible's default connection is `local`: replaced, with a warning.
    let mut prov = ansible_provisioner();
    prov["ansible_connection"] = json!("local");
    let inst = instance("ansible", "debian-12", debian(), prov, bats(), json!({}));
    let (outcomes, out) = run(&p, &[inst], Command::Test(DestroyMode::Passing), 1).await;
    let message = match &outcomes[0].error {
        Some(Error::ProvisionFailed { message, .. }) => message.clone(),
        other => panic!("expected ProvisionFailed, got {other:?}\n{out}"),
    };
    assert!(
        message.contains("task `install the impossible` failed on ansible-debian-12"),
        "{message}"
    );
    assert!(message.contains("stderr: nope"), "{message}");
    assert!(message.contains("rc 3"), "{message}");
    assert!(!out.contains("TASK [never reached]"), "{out}");
    assert!(
        out.contains("ansible_connection `local` is not used: Ansible runs on the host and reaches the instance with community.docker.docker"),
        "{out}"
    );
    assert!(
        outcomes[0].cases.is_empty(),
        "verify must not run after a failed converge"
    );
    // test-kitchen's record of the failure, kept because --destroy passing keeps failures.
    let st = p.state("ansible-debian-12");
    assert_eq!(st.get_str("last_action"), Some("create"));
    assert_eq!(st.get_str("last_error"), Some("Kitchen::ActionFailed"));
    assert!(
        st.get_str("last_error_message")
            .unwrap()
            .contains("install the impossible")
    );
    let (outcomes, _) = run(
        &p,
        &[instance(
            "ansible",
            "debian-12",
            debian(),
            ansible_provisioner(),
            bats(),
            json!({}),
        )],
        Command::Action(kitchen_driver::lifecycle::Action::Destroy),
        1,
    )
    .await;
    assert!(outcomes[0].error.is_none());
    p.assert_no_containers();
}

#[tokio::test]
async fn a_failing_bats_test_fails_verify_and_is_recorded() {
    let p = ansible_project("ans-bats");
    p.write(
        "test/integration/ansible/bats/zfail.bats",
        "@test \"the port is open\" {\n  echo 'checking 8080'\n  [ -e /etc/hello/no-such-file ]\n}\n@test \"still fine\" {\n  true\n}\n",
    );
    let inst = instance(
        "ansible",
        "debian-12",
        debian(),
        ansible_provisioner(),
        bats(),
        json!({}),
    );
    let (outcomes, out) = run(&p, &[inst], Command::Test(DestroyMode::Always), 1).await;
    let o = &outcomes[0];
    let message = match &o.error {
        Some(Error::VerifyFailed { message, .. }) => message.clone(),
        other => panic!("expected VerifyFailed, got {other:?}\n{out}"),
    };
    assert_eq!(
        message,
        "1 of 6 bats tests failed: zfail.bats: the port is open"
    );
    let failed: Vec<_> = o
        .cases
        .iter()
        .filter(|c| c.outcome == CaseOutcome::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].output.contains("checking 8080"),
        "{:?}",
        failed[0]
    );
    assert!(
        failed[0].output.contains("in test file zfail.bats, line 3"),
        "{:?}",
        failed[0]
    );
    assert!(out.contains("not ok 1 the port is open"), "{out}");
    p.assert_no_containers();
}

#[tokio::test]
async fn busybox_has_neither_bats_nor_python() {
    let p = ansible_project("ans-busybox");
    let shell_true = json!({"name": "shell", "command": "true", "sudo": false});
    let bats_on_busybox = instance(
        "ansible",
        "busybox",
        busybox(),
        shell_true,
        bats(),
        json!({}),
    );
    let ansible_on_busybox = instance(
        "ansible",
        "bb2",
        busybox(),
        ansible_provisioner(),
        bats(),
        json!({}),
    );
    let (outcomes, out) = run(
        &p,
        &[bats_on_busybox, ansible_on_busybox],
        Command::Test(DestroyMode::Always),
        2,
    )
    .await;
    let e = outcomes[0].error.as_ref().expect("bats is missing");
    assert!(matches!(e, Error::MissingTool { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "instance ansible-busybox: bats not found in the instance; install it in the image (Debian: apt-get install bats; kitchen/debian-12 has it), or set verifier.bats_command to where it is"
    );
    let e = outcomes[1].error.as_ref().expect("python is missing");
    let Error::ProvisionFailed { message, .. } = e else {
        panic!("{e:?}\n{out}")
    };
    assert!(
        message.contains("task `hello : create the config directory` failed on ansible-bb2"),
        "{message}"
    );
    assert!(
        message.contains("module_stderr: /bin/sh: /usr/bin/python: not found"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains("needs python3"), "{message}");
    p.assert_no_containers();
}

#[tokio::test]
async fn galaxy_requirements_install_local_roles_and_refuse_the_network() {
    let p = ansible_project("ans-galaxy");
    // A role packed as a tarball, installed by ansible-galaxy from a file:// source.
    let src = p.root().join("vendor-src");
    std::fs::create_dir_all(src.join("greeter/tasks")).unwrap();
    std::fs::create_dir_all(src.join("greeter/meta")).unwrap();
    std::fs::write(
        src.join("greeter/tasks/main.yml"),
        "- name: greet from a galaxy role\n  ansible.builtin.copy:\n    dest: /etc/greeter\n    content: galaxy\n",
    )
    .unwrap();
    std::fs::write(
        src.join("greeter/meta/main.yml"),
        "galaxy_info:\n  author: kdtest\n  description: test role\n  license: MIT\n  min_ansible_version: '2.9'\n  platforms: []\ndependencies: []\n",
    )
    .unwrap();
    let tarball = p.root().join("greeter.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("greeter")
        .status()
        .unwrap();
    assert!(status.success());
    // A collection built here, installed from its tarball (`type: file`).
    let coll = p.root().join("coll-src");
    std::fs::create_dir_all(&coll).unwrap();
    let galaxy = |args: &[&str]| {
        let o = std::process::Command::new("ansible-galaxy")
            .args(args)
            .current_dir(&coll)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
    };
    galaxy(&["collection", "init", "kdtest.demo"]);
    std::fs::create_dir_all(coll.join("kdtest/demo/roles/hi/tasks")).unwrap();
    std::fs::write(
        coll.join("kdtest/demo/roles/hi/tasks/main.yml"),
        "- name: hi from a collection role\n  ansible.builtin.copy: {dest: /etc/from-collection, content: coll}\n",
    )
    .unwrap();
    galaxy(&["collection", "build", "kdtest/demo"]);
    p.write(
        "requirements.yml",
        &format!(
            "roles:\n  - src: file://{}\n    name: greeter\n  - src: vendor-src/greeter\n    name: local_greeter\ncollections:\n  - name: {}\n    type: file\n",
            tarball.display(),
            coll.join("kdtest-demo-1.0.0.tar.gz").display()
        ),
    );
    p.write(
        "test/integration/ansible/default.yml",
        "- hosts: all\n  gather_facts: false\n  roles: [greeter, local_greeter, kdtest.demo.hi]\n",
    );
    p.write(
        "test/integration/ansible/bats/hello.bats",
        "@test \"the galaxy role ran\" {\n  [ \"$(cat /etc/greeter)\" = galaxy ]\n}\n@test \"the collection role ran\" {\n  [ \"$(cat /etc/from-collection)\" = coll ]\n}\n",
    );
    std::fs::remove_file(p.root().join("test/integration/ansible/bats/python.bats")).unwrap();
    let prov = json!({"name": "ansible_playbook", "requirements_path": "requirements.yml"});
    let inst = instance("ansible", "debian-12", debian(), prov, bats(), json!({}));
    let (outcomes, out) = run(&p, &[inst], Command::Test(DestroyMode::Always), 1).await;
    assert!(
        outcomes[0].error.is_none(),
        "{:?}\n{out}",
        outcomes[0].error
    );
    assert!(
        out.contains("TASK [greeter : greet from a galaxy role]"),
        "{out}"
    );
    assert!(
        out.contains("TASK [kdtest.demo.hi : hi from a collection role]"),
        "{out}"
    );
    assert_eq!(outcomes[0].cases.len(), 2);
    // A plain local directory (which ansible-galaxy would look up on the Galaxy API) is
    // linked in as the role it names.
    assert!(
        out.contains("TASK [local_greeter : greet from a galaxy role]"),
        "{out}"
    );

    // A local source that ansible-galaxy cannot install: the summary carries galaxy's own
    // reason, not only its closing `ERROR! - you can use --ignore-errors` line.
    p.write(
        "requirements.yml",
        "roles:\n  - src: git+file:///nonexistent/kdtest-repo\n    name: other\n",
    );
    let prov = json!({"name": "ansible_playbook", "requirements_path": "requirements.yml"});
    let inst = instance("ansible", "debian-12", debian(), prov, bats(), json!({}));
    let (outcomes, out) = run(&p, &[inst], Command::Test(DestroyMode::Always), 1).await;
    let e = outcomes[0]
        .error
        .as_ref()
        .expect("galaxy error")
        .to_string();
    assert!(
        e.contains("other was NOT installed successfully")
            && e.contains("does not appear to be a git repository"),
        "{e}\n{out}"
    );

    // A Galaxy name would need the network: a clear error before anything runs.
    p.write(
        "requirements.yml",
        "roles:\n  - name: geerlingguy.nginx\n    version: 3.2.0\n",
    );
    let prov = json!({"name": "ansible_playbook", "requirements_path": "requirements.yml"});
    let inst = instance("ansible", "busybox", busybox(), prov, bats(), json!({}));
    let (outcomes, out) = run(&p, &[inst], Command::Test(DestroyMode::Always), 1).await;
    let e = outcomes[0]
        .error
        .as_ref()
        .expect("offline error")
        .to_string();
    assert!(
        e.contains("role `geerlingguy.nginx` would be downloaded") && e.contains("no network"),
        "{e}"
    );
    assert!(!out.contains("ansible-galaxy role install"), "{out}");
    p.assert_no_containers();
}

#[tokio::test]
async fn idempotency_test_names_the_tasks_that_change_again() {
    let p = ansible_project("ans-idem");
    p.write(
        "test/integration/ansible/default.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: stable file\n      ansible.builtin.copy: {dest: /tmp/stable, content: x}\n    - name: always runs\n      ansible.builtin.command: date\n",
    );
    let prov = json!({"name": "ansible_playbook", "idempotency_test": true});
    let inst = instance("ansible", "debian-12", debian(), prov, bats(), json!({}));
    let (outcomes, out) = run(
        &p,
        &[inst],
        Command::Action(kitchen_driver::lifecycle::Action::Converge),
        1,
    )
    .await;
    let e = outcomes[0]
        .error
        .as_ref()
        .expect("not idempotent")
        .to_string();
    assert!(
        e.contains("idempotency test failed: 1 task(s) changed on the second run: always runs"),
        "{e}\n{out}"
    );
    let (outcomes, _) = run(
        &p,
        &[instance(
            "ansible",
            "debian-12",
            debian(),
            json!({}),
            bats(),
            json!({}),
        )],
        Command::Action(kitchen_driver::lifecycle::Action::Destroy),
        1,
    )
    .await;
    assert!(outcomes[0].error.is_none());
    p.assert_no_containers();
}

/// The real binary: one passing and one failing Ansible suite, `test -c 2`, exit 20 with the
/// failure recorded in the state and the summary.
#[test]
fn binary_exits_20_when_a_task_fails_and_records_it() {
    let p = ansible_project("ans-cli");
    p.write(
        "test/integration/broken/default.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: break on purpose\n      ansible.builtin.fail: {msg: deliberately broken}\n",
    );
    // `test` reaches verify, so the preflight check wants the suite's bats tests to exist
    // (they never run: the converge fails first).
    p.write(
        "test/integration/broken/bats/never.bats",
        "@test \"never runs\" { false; }\n",
    );
    p.write(
        "kitchen.yml",
        r#"
driver:
  name: docker
provisioner:
  name: ansible_playbook
  extra_vars:
    marker: from-extra-vars
verifier:
  name: bats
platforms:
  - name: debian-12
    driver:
      image: kitchen/debian-12:latest
suites:
  - name: ansible
  - name: broken
"#,
    );
    let out = Bin::cargo_bin("kitchen-driver")
        .unwrap()
        .current_dir(p.root())
        .env("HOME", p.root())
        .env_remove("KITCHEN_YAML")
        .env_remove("KITCHEN_LOCAL_YAML")
        .env_remove("KITCHEN_GLOBAL_YAML")
        .args(["test", "-c", "2"])
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(20), "{stdout}\n{stderr}");
    assert!(stderr.contains("1 actions failed."), "{stderr}");
    assert!(
        stderr.contains("instance broken-debian-12: converge failed: ansible-playbook exited with code 2: task `break on purpose` failed on broken-debian-12: deliberately broken"),
        "{stderr}"
    );
    assert!(
        stdout.contains("[ansible-debian-12]        ok 1 the greeting is configured"),
        "{stdout}"
    );
    assert!(
        !p.state_exists("ansible-debian-12"),
        "the passing suite is destroyed"
    );
    let st = p.state("broken-debian-12");
    assert_eq!(st.get_str("last_error"), Some("Kitchen::ActionFailed"));
    assert!(
        st.get_str("last_error_message")
            .unwrap()
            .contains("break on purpose")
    );
    let destroy = Bin::cargo_bin("kitchen-driver")
        .unwrap()
        .current_dir(p.root())
        .env("HOME", p.root())
        .args(["destroy"])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    assert_eq!(destroy.status.code(), Some(0));
    p.assert_no_containers();
}

#[tokio::test]
async fn role_name_names_the_role_under_test() {
    // The project is the role (its directory is `kdtest-...`), as in a role's own repository;
    // the playbook calls it by its real name, which kitchen-ansible's `role_name` gives.
    let p = TestProject::new("ans-role-name");
    p.write(
        "tasks/main.yml",
        "- name: mark the role\n  ansible.builtin.copy: {dest: /etc/role-under-test, content: yes}\n",
    );
    p.write(
        "test/integration/ansible/default.yml",
        "- hosts: localhost\n  gather_facts: false\n  roles: [hardening]\n",
    );
    let prov = json!({"name": "ansible_playbook", "roles_path": ".", "role_name": "hardening"});
    let inst = instance(
        "ansible",
        "debian-12",
        debian(),
        prov,
        json!({"name": "shell", "remote_exec": true, "command": "test -f /etc/role-under-test"}),
        json!({}),
    );
    let (outcomes, out) = run(&p, &[inst], Command::Test(DestroyMode::Always), 1).await;
    assert!(
        outcomes[0].error.is_none(),
        "{:?}\n{out}",
        outcomes[0].error
    );
    assert!(out.contains("TASK [hardening : mark the role]"), "{out}");
    assert!(!out.contains("key `role_name` is ignored"), "{out}");
    p.assert_no_containers();
}
