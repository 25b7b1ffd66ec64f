//! Unit tests of the ansible_playbook provisioner: arguments, inventory, output parsing,
//! requirements.

use serde_json::json;

use super::galaxy::galaxy_reason;
use super::output::fallback_reason;
use super::*;

fn prov(v: Value) -> Result<AnsiblePlaybookProvisioner> {
    let Value::Object(m) = v else {
        panic!("object")
    };
    AnsiblePlaybookProvisioner::from_config("default-debian-12", &m)
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

fn docker_target() -> Target {
    Target::Docker {
        container_id: "8f68f65a".into(),
        container_name: "kitchen-x-default".into(),
        docker_host: None,
    }
}

#[test]
fn argv_follows_the_keys() {
    let p = prov(json!({
        "name": "ansible_playbook", "ansible_verbose": true, "ansible_verbosity": 2,
        "extra_vars": {"port": 8080, "name": "web"}, "tags": ["a", "b"],
        "skip_tags": "slow", "ansible_check": true, "ansible_diff": true,
        "ansible_extra_flags": "--forks 1 --limit 'default-*'"
    }))
    .unwrap();
    let a = p.args(
        Path::new("/t/inv.yml"),
        Path::new("/p/site.yml"),
        None,
        "{}",
    );
    assert_eq!(
        a,
        [
            "-i",
            "/t/inv.yml",
            "-vv",
            "--check",
            "--diff",
            "-e",
            "@/t/extra_vars.json",
            "--tags",
            "a,b",
            "--skip-tags",
            "slow",
            "--forks",
            "1",
            "--limit",
            "default-*",
            "-e",
            "{}",
            "/p/site.yml"
        ]
    );
    let p = prov(json!({})).unwrap();
    assert_eq!(
        p.args(
            Path::new("i"),
            Path::new("pb.yml"),
            Some(Path::new("/v")),
            "{}"
        ),
        ["-i", "i", "--vault-password-file=/v", "-e", "{}", "pb.yml"]
    );
}

#[test]
fn verbosity_needs_ansible_verbose_and_accepts_names() {
    assert_eq!(
        prov(json!({"ansible_verbosity": 3})).unwrap().verbosity,
        None
    );
    for (v, n) in [
        (json!(1), 1),
        (json!("debug"), 3),
        (json!(":trace"), 4),
        (json!("warn"), 2),
    ] {
        let p = prov(json!({"ansible_verbose": true, "ansible_verbosity": v})).unwrap();
        assert_eq!(p.verbosity, Some(n));
    }
    assert_eq!(
        prov(json!({"ansible_verbose": true})).unwrap().verbosity,
        Some(1)
    );
    let e = prov(json!({"ansible_verbose": true, "ansible_verbosity": "loud"}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("ansible_verbosity"), "{e}");
    let e = prov(json!({"ansible_extra_flags": "'open"}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("ansible_extra_flags"), "{e}");
    let e = prov(json!({"extra_vars": ["not", "a", "map"]}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("extra_vars"), "{e}");
}

#[test]
fn attributes_override_extra_vars_and_tags() {
    let p = prov(json!({
        "extra_vars": {"a": 1}, "tags": ["x"],
        "attributes": {"extra_vars": {"b": 2}, "tags": ["y"]},
        "requirements_path": false
    }))
    .unwrap();
    let a = p.args(Path::new("i"), Path::new("pb"), None, "{}");
    assert!(a.contains(&"@extra_vars.json".to_string()), "{a:?}");
    assert_eq!(p.extra_vars().as_deref(), Some(r#"{"b":2}"#));
    assert!(a.contains(&"y".to_string()), "{a:?}");
    assert_eq!(p.config.requirements_path.path(), None);
}

#[test]
fn inventory_names_the_instance_localhost_with_the_runtime_connection() {
    let inv = inventory(&docker_target(), Some("webservers")).unwrap();
    let hosts = inv["all"]["hosts"].as_object().unwrap();
    assert_eq!(hosts.keys().collect::<Vec<_>>(), ["localhost"]);
    let host = &hosts["localhost"];
    assert_eq!(host["ansible_connection"], "community.docker.docker");
    assert_eq!(host["ansible_host"], "8f68f65a");
    assert_eq!(host["ansible_python_interpreter"], "auto_silent");
    assert!(
        inv["all"]["children"]["webservers"]["hosts"]
            .get("localhost")
            .is_some()
    );

    let lxd = Target::Lxd {
        name: "kitchen-abc-default".into(),
        project: "kitchen".into(),
    };
    let inv = inventory(&lxd, None).unwrap();
    let host = &inv["all"]["hosts"]["localhost"];
    assert_eq!(host["ansible_connection"], "community.general.lxd");
    assert_eq!(host["ansible_host"], "kitchen-abc-default");
    assert_eq!(host["ansible_lxd_project"], "kitchen");
    assert!(inv["all"].get("children").is_none());
    let lxd = Target::Lxd {
        name: "n".into(),
        project: "default".into(),
    };
    let inv = inventory(&lxd, Some("all")).unwrap();
    assert!(
        inv["all"]["hosts"]["localhost"]
            .get("ansible_lxd_project")
            .is_none()
    );
    assert!(inv["all"].get("children").is_none());
}

#[test]
fn the_pin_is_the_connection_alone() {
    let pin = connection_vars(&docker_target()).unwrap();
    assert_eq!(
        Value::Object(pin),
        json!({"ansible_connection": "community.docker.docker", "ansible_host": "8f68f65a"})
    );
}

/// ansible-playbook 2.14 with the instance as `localhost` (recorded here): a play for a
/// group that does not exist, and the recap.
const UNMATCHED_RUN: &str = r#"
PLAY [localhost] ***************************************************************

TASK [copy] ********************************************************************
changed: [localhost]
[WARNING]: Could not match supplied host pattern, ignoring: nosuchgroup

PLAY [configure the web tier] **************************************************
skipping: no hosts matched

PLAY RECAP *********************************************************************
localhost                  : ok=1    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0   
"#;

#[test]
fn a_play_that_matches_no_host_is_named() {
    let l = lines(UNMATCHED_RUN);
    assert_eq!(unmatched_plays(&l), ["configure the web tier"]);
    assert_eq!(recap_hosts(&l), ["localhost"]);
    let why = reach_problem(&l, "default-debian-12").unwrap();
    assert!(
        why.contains("play `configure the web tier` matched no host"),
        "{why}"
    );
    assert!(why.contains("default-debian-12"), "{why}");
}

#[test]
fn a_recap_host_other_than_the_instance_is_a_problem() {
    let l = lines(FAILED_RUN);
    assert_eq!(recap_hosts(&l), ["probe-host"]);
    let why = reach_problem(&l, "i").unwrap();
    assert!(why.contains("other than the instance: probe-host"), "{why}");
    let ok = lines(&UNMATCHED_RUN.replace("skipping: no hosts matched", ""));
    assert_eq!(reach_problem(&ok, "i"), None);
}

/// Output of ansible-playbook 2.14 against kitchen/debian-12 on Docker (recorded here).
const FAILED_RUN: &str = r#"
PLAY [all] *********************************************************************

TASK [Gathering Facts] *********************************************************
ok: [probe-host]

TASK [write a file] ************************************************************
changed: [probe-host]

TASK [this fails] **************************************************************
fatal: [probe-host]: FAILED! => {"changed": true, "cmd": ["/bin/false"], "delta": "0:00:00.004587", "end": "2026-11-26 05:56:56.777892", "msg": "non-zero return code", "rc": 1, "start": "2026-11-26 05:56:56.773305", "stderr": "", "stderr_lines": [], "stdout": "", "stdout_lines": []}

PLAY RECAP *********************************************************************
probe-host                 : ok=2    changed=1    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0   
"#;

/// ansible-playbook 2.14: a loop task with `ignore_errors: true` whose items all failed,
/// then a task that really failed (recorded here, abridged).
const IGNORED_LOOP: &str = r#"
TASK [try each item] ***********************************************************
failed: [localhost] (item=a) => {"ansible_loop_var": "item", "changed": true, "cmd": ["false"], "item": "a", "msg": "non-zero return code", "rc": 1}
failed: [localhost] (item=b) => {"ansible_loop_var": "item", "changed": true, "cmd": ["false"], "item": "b", "msg": "non-zero return code", "rc": 1}
...ignoring

TASK [the real failure] ********************************************************
fatal: [localhost]: FAILED! => {"changed": false, "msg": "really broken"}
"#;

#[test]
fn an_ignored_loop_excuses_every_item() {
    let f = failed_tasks(&lines(IGNORED_LOOP));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].task, "the real failure");
    assert_eq!(f[0].message, "really broken");
}

#[test]
fn the_failing_task_is_named() {
    let l = lines(FAILED_RUN);
    let f = failed_tasks(&l);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].task, "this fails");
    assert_eq!(f[0].host, "probe-host");
    assert_eq!(f[0].kind, "FAILED");
    assert_eq!(f[0].message, "non-zero return code; rc 1");
    assert_eq!(
        f[0].to_string(),
        "task `this fails` failed on probe-host: non-zero return code; rc 1"
    );
    assert_eq!(recap_changed(&l, "probe-host"), Some(1));
    assert_eq!(changed_tasks(&l), ["write a file"]);
}

#[test]
fn loop_items_ignored_failures_unreachable_and_missing_python() {
    let out = r#"TASK [role1 : loop fails] ****
changed: [h] => (item=a)
failed: [h] (item=b) => {"ansible_loop_var": "item", "changed": true, "item": "b", "msg": "non-zero return code", "rc": 1, "stderr": "boom\nmore"}
TASK [tolerated] ****
fatal: [h]: FAILED! => {"changed": false, "msg": "nope"}
...ignoring
TASK [Gathering Facts] ****
fatal: [bb]: FAILED! => {"ansible_facts": {}, "changed": false, "failed_modules": {"ansible.legacy.setup": {"failed": true, "module_stderr": "/bin/sh: /usr/bin/python: not found\n", "msg": "The module failed to execute correctly, you probably need to set the interpreter.\nSee stdout/stderr for the exact error", "rc": 127}}, "msg": "The following modules failed to execute: ansible.legacy.setup\n"}
TASK [connect] ****
fatal: [u]: UNREACHABLE! => {"changed": false, "msg": "Failed to create temporary directory.", "unreachable": true}
"#;
    let f = failed_tasks(&lines(out));
    assert_eq!(f.len(), 3, "{f:?}");
    assert_eq!(f[0].task, "role1 : loop fails");
    assert_eq!(f[0].kind, "item=b");
    assert_eq!(f[0].message, "non-zero return code; stderr: boom; rc 1");
    assert_eq!(f[1].host, "bb");
    assert!(
        f[1].message.contains("ansible.legacy.setup"),
        "{}",
        f[1].message
    );
    assert_eq!(
        f[1].message.matches("needs python3").count(),
        1,
        "{}",
        f[1].message
    );
    assert_eq!(f[2].kind, "UNREACHABLE");
    assert!(f[2].to_string().contains("(UNREACHABLE)"));
}

#[test]
fn verbose_results_span_lines() {
    let out = "TASK [t] ***\nfatal: [h]: FAILED! => {\n    \"changed\": false,\n    \"msg\": \"multi\"\n}\nPLAY RECAP ***\n";
    let f = failed_tasks(&lines(out));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].message, "multi");
}

#[test]
fn fallback_uses_error_lines() {
    let l = lines("noise\nERROR! the playbook: missing.yml could not be found\n\nmore");
    assert_eq!(
        fallback_reason(&l),
        "ERROR! the playbook: missing.yml could not be found"
    );
    assert_eq!(fallback_reason(&lines("a\nb\n\nc\nd")), "b | c | d");
    let r = with_hint(fallback_reason(&lines(
        "ERROR! the connection plugin 'community.docker.docker' was not found",
    )));
    assert!(r.contains("ships community.docker"), "{r}");
    // What ansible-playbook 2.14 prints when the plugin is missing.
    let f = failed_tasks(&lines(
        "TASK [t] ***\nfatal: [h]: FAILED! => {\"msg\": \"the connection plugin 'community.nope.nope' was not found\"}",
    ));
    assert!(
        f[0].message
            .contains("lacks the runtime's connection plugin"),
        "{f:?}"
    );
    assert_eq!(with_hint("ERROR! other".into()), "ERROR! other");
}

/// ansible-galaxy 2.14 with no network (recorded here).
const GALAXY_OFFLINE: &str = "Starting galaxy role install process
[WARNING]: - myrole was NOT installed successfully: Unknown error when
attempting to call Galaxy at 'https://galaxy.ansible.com/api/': <urlopen error
[Errno -2] Name or service not known>. <urlopen error [Errno -2] Name or
service not known>
ERROR! - you can use --ignore-errors to skip failed roles and finish processing the list.";

#[test]
fn the_galaxy_failure_says_why() {
    let why = galaxy_reason(&lines(GALAXY_OFFLINE));
    assert!(
        why.starts_with(
            "- myrole was NOT installed successfully: Unknown error when attempting to call Galaxy"
        ),
        "{why}"
    );
    assert!(why.contains("Name or service not known"), "{why}");
    assert!(!why.contains("--ignore-errors"), "{why}");
}

#[test]
fn local_role_directories_are_taken_out_of_the_requirements() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("vendor/web")).unwrap();
    let web = d.path().join("vendor/web");
    let doc = json!({"roles": [
        {"src": "vendor/web", "name": "nginx"},
        "./vendor/web",
        format!("file://{}", web.display()),
        {"src": "file:///srv/x.tar.gz", "name": "x"},
    ], "collections": []});
    let (dirs, rest) = split_local_role_dirs(doc, d.path());
    let names: Vec<&str> = dirs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["nginx", "web", "web"]);
    assert!(dirs.iter().all(|(_, p)| p.is_dir()));
    assert_eq!(
        rest,
        json!({"roles": [{"src": "file:///srv/x.tar.gz", "name": "x"}], "collections": []})
    );
    let (dirs, rest) = split_local_role_dirs(json!(["geerlingguy.nginx"]), d.path());
    assert!(dirs.is_empty());
    assert_eq!(rest, json!(["geerlingguy.nginx"]));
}

#[test]
fn requirements_must_be_local() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("vendor")).unwrap();
    std::fs::write(d.path().join("vendor/r.tar.gz"), "").unwrap();
    let root = d.path();
    let ok = json!([{"src": "file:///srv/role.tar.gz", "name": "x"}, {"src": "./vendor/r.tar.gz"}, "vendor/r.tar.gz"]);
    assert_eq!(check_requirements(&ok, root), Ok((true, false)));
    let ok = json!({"collections": [{"name": "/srv/ns-c-1.0.0.tar.gz", "type": "file"}, {"name": "./c", "type": "dir"}]});
    assert_eq!(check_requirements(&ok, root), Ok((false, true)));
    assert_eq!(check_requirements(&Value::Null, root), Ok((false, false)));

    let e = check_requirements(&json!(["geerlingguy.nginx"]), root).unwrap_err();
    assert!(
        e.contains("role `geerlingguy.nginx`") && e.contains("no network"),
        "{e}"
    );
    let e = check_requirements(
        &json!({"roles": [{"src": "https://github.com/x/y.git", "scm": "git", "name": "y"}]}),
        root,
    )
    .unwrap_err();
    assert!(
        e.contains("role `y`") && e.contains("https://github.com/x/y.git"),
        "{e}"
    );
    let e = check_requirements(&json!({"collections": ["community.general"]}), root).unwrap_err();
    assert!(e.contains("collection `community.general`"), "{e}");
    let e = check_requirements(
        &json!({"collections": [{"name": "a.b", "source": "https://galaxy.example"}]}),
        root,
    )
    .unwrap_err();
    assert!(e.contains("from https://galaxy.example"), "{e}");
    assert!(check_requirements(&json!({"roles": "x"}), root).is_err());
    assert!(check_requirements(&json!(3), root).is_err());
    // A relative path that does not exist is a Galaxy name, not a local source.
    assert!(check_requirements(&json!(["missing/role.tar.gz"]), root).is_err());
}

#[test]
fn playbook_and_roles_are_found_as_kitchen_ansible_finds_them() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let tbp = root.join("test/integration");
    std::fs::create_dir_all(tbp.join("web/ansible")).unwrap();
    assert_eq!(ansible_path(&tbp, "web", root, "default.yml", true), None);
    std::fs::write(root.join("default.yml"), "").unwrap();
    assert_eq!(
        ansible_path(&tbp, "web", root, "default.yml", true),
        Some(root.join("default.yml"))
    );
    std::fs::write(tbp.join("web/default.yml"), "").unwrap();
    assert_eq!(
        ansible_path(&tbp, "web", root, "default.yml", true),
        Some(tbp.join("web/default.yml"))
    );
    std::fs::write(tbp.join("web/ansible/default.yml"), "").unwrap();
    assert_eq!(
        ansible_path(&tbp, "web", root, "default.yml", true),
        Some(tbp.join("web/ansible/default.yml"))
    );
    assert_eq!(
        roles_search_path(Path::new("/p/roles")),
        [PathBuf::from("/p/roles")]
    );
    assert_eq!(
        roles_search_path(Path::new("/src/myrole")),
        [PathBuf::from("/src/myrole"), PathBuf::from("/src")]
    );
}

#[test]
fn env_has_roles_docker_host_and_user_vars() {
    let p =
        prov(json!({"env_vars": {"A": 1}, "env": {"B": "two"}, "ansible_cfg_path": "ansible.cfg"}))
            .unwrap();
    let target = Target::Docker {
        container_id: "c".into(),
        container_name: "n".into(),
        docker_host: Some("unix:///run/podman/podman.sock".into()),
    };
    let host_env = vec![("ANSIBLE_COLLECTIONS_PATH".to_string(), "/c".to_string())];
    let env = p.env(
        &[PathBuf::from("/r1"), PathBuf::from("/r2")],
        Some(Path::new("/tmp/col")),
        &target,
        &host_env,
        Path::new("/proj"),
    );
    let get = |k: &str| {
        env.iter()
            .rev()
            .find(|(x, _)| x == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("ANSIBLE_ROLES_PATH"), Some("/r1:/r2"));
    assert_eq!(get("ANSIBLE_COLLECTIONS_PATH"), Some("/tmp/col:/c"));
    assert_eq!(get("DOCKER_HOST"), Some("unix:///run/podman/podman.sock"));
    assert_eq!(get("PYTHONUNBUFFERED"), Some("1"));
    assert_eq!(get("A"), Some("1"));
    assert_eq!(get("B"), Some("two"));
    assert_eq!(get("ANSIBLE_CONFIG"), Some("/proj/ansible.cfg"));
}
