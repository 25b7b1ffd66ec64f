//! Hostile instances and secrets, on the real daemons through the real binary:
//! - a converge that plants symlinks to host paths (and `/`) in a `downloads:` directory gets
//!   symlinks back, never the host files behind them, and a later download that would write
//!   through such a link is refused and fails the converge;
//! - secrets from `TKENV_*`, `secret_env` and a proxy URL, printed by the instance on purpose,
//!   and an Ansible `extra_vars` password printed by a play, are found nowhere under
//!   `.kitchen/`, in JUnit or in the JSON events.
//!
//! Each test removes what it created (the project's drop guard) and ends by asserting that
//! nothing remains.

use std::path::Path;

use test_support::{Runtime, TestProject, text, unique_dir, unique_name};

/// Every regular file under `dir`, without following symlinks.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            out.extend(files_under(&e.path()));
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    out
}

/// The converge command: the first run plants links to `host_dir` and `/` beside a plain
/// file; the second turns the first link into a directory holding a file with the same name
/// as the host's.
fn planting_command(host_dir: &Path) -> String {
    format!(
        "grep -q tree-ok /opt/up/tree/deep/link.txt && test -x /opt/up/tree/run.sh && \
         if [ -e /tmp/planted ]; then rm /tmp/out/k && mkdir /tmp/out/k && echo EVIL > /tmp/out/k/key; \
         else mkdir -p /tmp/out/sub && ln -s {host} /tmp/out/k && ln -s / /tmp/out/rootlink \
         && ln -s ../../../../../../etc /tmp/out/sub/up && echo fine > /tmp/out/ok.txt && touch /tmp/planted; fi",
        host = host_dir.display()
    )
}

fn downloads_keep_symlinks_and_refuse_writing_through_them(runtime: Runtime) {
    // A host directory the instance must not reach: it stands for ~/.ssh.
    let host = unique_dir("hostile-hostdir");
    std::fs::write(host.path().join("key"), "HOST-KEY-CONTENT\n").unwrap();
    let p = TestProject::new(&format!("hostile-dl-{}", runtime.label()));
    // An upload (streamed file by file on LXD) whose links inside the project are followed.
    p.write("files/tree/a.txt", "tree-ok\n");
    let run = p.write("files/tree/run.sh", "#!/bin/sh\n");
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(p.root().join("files/tree/deep")).unwrap();
    std::os::unix::fs::symlink("../a.txt", p.root().join("files/tree/deep/link.txt")).unwrap();
    p.write(
        "kitchen.yml",
        &format!(
            "driver:\n  name: {driver}\nprovisioner:\n  name: shell\n  sudo: false\n  command: \"{cmd}\"\n  uploads:\n    files/tree: /opt/up\n  downloads:\n    /tmp/out: got\nplatforms:\n  - name: busybox\n    driver:\n      image: {image}\nsuites:\n  - name: default\n",
            driver = runtime.driver(),
            image = runtime.busybox_image(),
            cmd = planting_command(host.path()),
        ),
    );
    let out = p.kitchen_driver(300).args(["converge"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let got = p.root().join("got/out");
    assert_eq!(
        std::fs::read_to_string(got.join("ok.txt")).unwrap(),
        "fine\n"
    );
    for link in ["k", "rootlink", "sub/up"] {
        let meta = std::fs::symlink_metadata(got.join(link)).unwrap();
        assert!(
            meta.file_type().is_symlink(),
            "{link} is not a symlink: {meta:?}"
        );
    }
    assert_eq!(
        std::fs::read_link(got.join("k")).unwrap(),
        host.path(),
        "the link keeps its target"
    );
    // Nothing behind a link was copied into the project.
    for f in files_under(p.root()) {
        let content = std::fs::read(&f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&content).contains("HOST-KEY-CONTENT"),
            "host content copied into {}",
            f.display()
        );
    }

    // Second converge: the instance now sends `k/key` as a file inside a directory `k`, where
    // the host has the link from the first download.
    let out = p.kitchen_driver(300).args(["converge"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(0),
        "{}\n{stderr}",
        text(&out.stdout)
    );
    assert!(
        stderr.contains("refusing to download /tmp/out") && stderr.contains("through the symlink"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("key")).unwrap(),
        "HOST-KEY-CONTENT\n",
        "the host file was written through the link"
    );

    let out = p.kitchen_driver(300).args(["destroy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    p.assert_no_containers();
}

#[test]
fn downloads_keep_symlinks_and_refuse_writing_through_them_on_docker() {
    downloads_keep_symlinks_and_refuse_writing_through_them(Runtime::Docker);
}

#[test]
fn downloads_keep_symlinks_and_refuse_writing_through_them_on_lxd() {
    downloads_keep_symlinks_and_refuse_writing_through_them(Runtime::Lxd);
}

const PLAYBOOK: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: show the password\n      debug:\n        msg: \"the password is {{ db_password }}\"\n";

#[test]
fn secrets_are_found_nowhere_in_state_logs_junit_or_json() {
    let tag = unique_name("s").replace('-', "");
    let tkenv = format!("tkenv-secret-{tag}");
    let listed = format!("listed-secret-{tag}");
    let proxy_pw = format!("proxy-pw-{tag}");
    let extra = format!("extra-vars-pw-{tag}");
    let p = TestProject::new("hostile-secrets");
    p.write("test/integration/ansible/default.yml", PLAYBOOK);
    p.write(
        "kitchen.yml",
        &format!(
            r#"driver:
  name: docker
verifier:
  name: shell
  command: "true"
platforms:
  - name: busybox
    driver:
      image: kitchen/busybox:latest
  - name: debian-12
    driver:
      image: kitchen/debian-12:latest
suites:
  - name: shell
    includes: [busybox]
    provisioner:
      name: shell
      sudo: false
      http_proxy: http://bob:{proxy_pw}@127.0.0.1:9
      secret_env: [KD_LISTED]
      command: echo "api=$API_KEY listed=$KD_LISTED proxy=$http_proxy" && exit 7
  - name: ansible
    includes: [debian-12]
    provisioner:
      name: ansible_playbook
      extra_vars:
        db_password: {extra}
    verifier:
      name: shell
      command: echo "checking with {tkenv}" && exit 3
"#
        ),
    );
    let out = p
        .kitchen_driver(600)
        .env("TKENV_API_KEY", &tkenv)
        .env("KD_LISTED", &listed)
        .args([
            "verify",
            "-c",
            "2",
            "--junit",
            "junit.xml",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(20), "{stdout}\n{stderr}");
    // The secrets did reach the instance and the play: the outputs show where they were.
    let log = std::fs::read_to_string(p.root().join(".kitchen/logs/shell-busybox.log")).unwrap();
    assert!(
        log.contains("api=*** listed=*** proxy=http://bob:***@127.0.0.1:9"),
        "{log}"
    );
    let log =
        std::fs::read_to_string(p.root().join(".kitchen/logs/ansible-debian-12.log")).unwrap();
    assert!(log.contains("the password is ***"), "{log}");
    let last_error = p.state("ansible-debian-12");
    assert!(last_error.last_error().is_some());

    for f in files_under(&p.root().join(".kitchen/logs")) {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    let secrets = [&tkenv, &listed, &proxy_pw, &extra];
    let mut places = files_under(&p.root().join(".kitchen"));
    places.push(p.root().join("junit.xml"));
    assert!(
        places.iter().any(|f| f.ends_with("shell-busybox.yml")),
        "{places:?}"
    );
    for f in &places {
        let content = std::fs::read_to_string(f).unwrap();
        for s in secrets {
            assert!(
                !content.contains(s.as_str()),
                "{s} found in {}:\n{content}",
                f.display()
            );
        }
    }
    for s in secrets {
        assert!(
            !stdout.contains(s.as_str()),
            "{s} in the JSON events:\n{stdout}"
        );
        assert!(!stderr.contains(s.as_str()), "{s} on stderr:\n{stderr}");
    }
    let diagnose = p
        .kitchen_driver(60)
        .env("TKENV_API_KEY", &tkenv)
        .args(["diagnose", "all"])
        .output()
        .unwrap();
    let diagnose = text(&diagnose.stdout);
    assert!(diagnose.contains("***"), "{diagnose}");
    for s in secrets {
        assert!(
            !diagnose.contains(s.as_str()),
            "{s} in diagnose:\n{diagnose}"
        );
    }

    let out = p.kitchen_driver(300).args(["destroy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    p.assert_no_containers();
}

/// A Dockerfile platform whose context holds an ignored secret and links to a host directory
/// and to `/`: the image gets neither the ignored file nor anything behind the links.
#[tokio::test]
async fn docker_build_context_honours_dockerignore_and_never_follows_links() {
    use bollard::query_parameters::RemoveImageOptions;
    use kitchen_driver::lifecycle::{Command, DestroyMode};
    use serde_json::json;
    use test_support::{docker, instance, on_fresh_runtime, run_one};

    let host = unique_dir("hostile-ctx-host");
    std::fs::write(host.path().join("id_rsa"), "HOST-KEY-CONTENT\n").unwrap();
    let p = TestProject::new("hostile-ctx");
    // The project path in a comment makes the image tag unique to this test.
    p.write(
        "docker/Dockerfile",
        &format!(
            "# {}\nFROM kitchen/busybox:latest\nCOPY . /ctx/\n",
            p.root().display()
        ),
    );
    p.write(
        "docker/.dockerignore",
        "*.secret\nnotes/**\n!notes/keep.txt\n",
    );
    p.write("docker/db.secret", "ignored-secret\n");
    p.write("docker/notes/drop.txt", "dropped\n");
    p.write("docker/notes/keep.txt", "kept\n");
    std::os::unix::fs::symlink(host.path(), p.root().join("docker/ssh")).unwrap();
    std::os::unix::fs::symlink("/", p.root().join("docker/rootfs")).unwrap();
    let check = format!(
        "set -e; test ! -e /ctx/db.secret; test ! -e /ctx/notes/drop.txt; grep -q kept /ctx/notes/keep.txt; \
         test -L /ctx/ssh; test \"$(readlink /ctx/ssh)\" = {host}; test -L /ctx/rootfs; \
         ! grep -rqs HOST-KEY-CONTENT /ctx; echo context-ok",
        host = host.path().display()
    );
    let inst = instance(
        "default",
        "ctx",
        json!({"name": "docker", "dockerfile": "docker/Dockerfile"}),
        json!({"name": "shell", "sudo": false, "command": "true"}),
        json!({"name": "shell", "remote_exec": true, "command": check}),
        json!({}),
    );
    let (o, out) = run_one(&p, &inst, Command::Test(DestroyMode::Never)).await;
    let image = p.state("default-ctx").get_str("image").map(str::to_string);
    struct ImageGuard(Option<String>);
    impl Drop for ImageGuard {
        fn drop(&mut self) {
            if let Some(tag) = self.0.clone() {
                on_fresh_runtime(async move {
                    let opts = RemoveImageOptions {
                        force: true,
                        ..Default::default()
                    };
                    let _ = docker().await.remove_image(&tag, Some(opts), None).await;
                });
            }
        }
    }
    let _image_guard = ImageGuard(image);
    assert!(o[0].error.is_none(), "{:?}\n{out}", o[0].error);
    assert!(out.contains("context-ok"), "{out}");
    let (o, out) = run_one(
        &p,
        &inst,
        Command::Action(kitchen_driver::lifecycle::Action::Destroy),
    )
    .await;
    assert!(o[0].error.is_none(), "{:?}\n{out}", o[0].error);
    p.assert_no_containers();
}
