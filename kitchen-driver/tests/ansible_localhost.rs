//! `ansible_playbook` runs Ansible on the host, so a test playbook's `localhost` must mean the
//! instance, as it does under kitchen-ansible (which runs Ansible inside the instance), and never
//! the user's machine. Through the real binary, on the real LXD daemon and Docker engine with
//! `kitchen/debian-12`: every way a playbook names the local machine (`hosts: localhost`,
//! `hosts: 127.0.0.1`, `hosts: all`, `connection: local` on a play and on a task, play vars
//! `ansible_connection: local`, `delegate_to: localhost`, `local_action`, a delegation to a host
//! that is not in the inventory) writes its marker inside the instance, and none on the host.
//! A play that matches no host fails the converge and is named. Every test removes what it
//! created and asserts that nothing is left.

mod common;

use std::path::PathBuf;

use common::{TestProject, text};

/// Markers the playbook writes, one per way of naming the local machine.
const MARKERS: &[&str] = &[
    "play-localhost-connection-local",
    "delegate-to-localhost",
    "local-action",
    "play-127-0-0-1",
    "play-all",
    "play-vars-connection-local",
    "task-connection-local",
    "delegate-to-unknown-host",
];

/// The playbook, writing each marker as `<prefix>-<marker>`.
fn playbook(prefix: &str) -> String {
    format!(
        r#"---
- name: localhost with connection local
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.copy: {{content: "x", dest: "{prefix}-play-localhost-connection-local"}}
    - ansible.builtin.copy: {{content: "x", dest: "{prefix}-delegate-to-localhost"}}
      delegate_to: localhost
    - local_action: {{module: ansible.builtin.copy, content: "x", dest: "{prefix}-local-action"}}
- name: the loopback address
  hosts: 127.0.0.1
  gather_facts: false
  tasks:
    - ansible.builtin.copy: {{content: "x", dest: "{prefix}-play-127-0-0-1"}}
- name: every host
  hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy: {{content: "x", dest: "{prefix}-play-all"}}
- name: play vars asking for the local connection
  hosts: all
  gather_facts: false
  vars:
    ansible_connection: local
  tasks:
    - ansible.builtin.copy: {{content: "x", dest: "{prefix}-play-vars-connection-local"}}
    - ansible.builtin.copy: {{content: "x", dest: "{prefix}-task-connection-local"}}
      connection: local
    - ansible.builtin.copy: {{content: "x", dest: "{prefix}-delegate-to-unknown-host"}}
      delegate_to: build-server.example
"#
    )
}

const KITCHEN_YML: &str = r#"
provisioner:
  name: ansible_playbook
verifier:
  name: shell
platforms:
  - name: lxd
    driver: {name: lxd, image: kitchen/debian-12}
  - name: docker
    driver: {name: docker, image: "kitchen/debian-12:latest"}
suites:
  - name: local
  - name: unmatched
    provisioner:
      playbook: test/integration/unmatched/default.yml
"#;

const UNMATCHED: &str = r#"---
- name: configure the web tier
  hosts: webservers
  gather_facts: false
  tasks:
    - ansible.builtin.command: "true"
"#;

/// Host files starting with `prefix` (the markers, should any have been written here).
fn on_host(prefix: &str) -> Vec<PathBuf> {
    let path = PathBuf::from(prefix);
    let (dir, stem) = (path.parent().unwrap(), path.file_name().unwrap());
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&*stem.to_string_lossy())
        })
        .map(|e| e.path())
        .collect()
}

/// Removes the host markers on drop, so a regression does not leave files in /tmp.
struct HostMarkers(String);

impl Drop for HostMarkers {
    fn drop(&mut self) {
        for p in on_host(&self.0) {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[test]
fn localhost_plays_run_in_the_instance_and_never_on_the_host() {
    let p = TestProject::new("ans-localhost");
    let stem = p.root().file_name().unwrap().to_string_lossy().into_owned();
    let prefix = format!("/tmp/{stem}-marker");
    let _cleanup = HostMarkers(prefix.clone());
    p.write("kitchen.yml", KITCHEN_YML);
    p.write("test/integration/local/default.yml", &playbook(&prefix));
    p.write("test/integration/unmatched/default.yml", UNMATCHED);

    let out = p
        .kitchen_driver(900)
        .args(["converge", "local", "-c", "2"])
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "converge failed:\n{all}");
    assert!(
        on_host(&prefix).is_empty(),
        "the playbook wrote on the host: {:?}\n{all}",
        on_host(&prefix)
    );
    for platform in ["lxd", "docker"] {
        let listing = p
            .kitchen_driver(120)
            .args(["exec", &format!("local-{platform}"), "-c"])
            .arg(format!("ls {prefix}-*"))
            .output()
            .unwrap();
        let listing = text(&listing.stdout);
        for marker in MARKERS {
            assert!(
                listing.contains(&format!("{prefix}-{marker}")),
                "{marker} is missing in local-{platform}:\n{listing}\n{all}"
            );
        }
    }

    // A play for a group the instance is not in fails the converge, naming the play.
    let out = p
        .kitchen_driver(900)
        .args(["converge", "unmatched", "-c", "2"])
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(20), "{all}");
    for platform in ["lxd", "docker"] {
        let state =
            std::fs::read_to_string(p.root().join(format!(".kitchen/unmatched-{platform}.yml")))
                .unwrap();
        assert!(state.contains("last_error"), "{state}");
    }
    assert!(
        all.contains("play `configure the web tier` matched no host"),
        "{all}"
    );

    let out = p.kitchen_driver(600).args(["destroy"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    p.assert_no_containers();
}
