//! `kitchen-driver reset` on the real daemons, through the real binary: an instance converged
//! and dirtied by hand comes back with its pristine files, on Docker and on LXD, and its last
//! action goes back to `create`.

use kitchen_driver::state::keys;
use test_support::{Runtime, basic_kitchen_yml, standard_project};

const INSTANCE: &str = "default-busybox";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn reset_restores_the_pristine_files(runtime: Runtime) {
    let p = standard_project(
        &format!("reset-{}", runtime.label()),
        &basic_kitchen_yml(runtime),
    );
    let converge = p
        .kitchen_driver(300)
        .args(["converge", INSTANCE])
        .output()
        .unwrap();
    assert!(converge.status.success(), "{}", text(&converge.stderr));
    // Dirty it further by hand, as a user iterating would.
    let dirty = p
        .kitchen_driver(120)
        .args([
            "exec",
            INSTANCE,
            "-c",
            "echo dirty > /root/dirty && cat /etc/hello/hello.conf",
        ])
        .output()
        .unwrap();
    assert!(dirty.status.success(), "{}", text(&dirty.stdout));
    assert!(
        text(&dirty.stdout).contains("hello from"),
        "{}",
        text(&dirty.stdout)
    );
    let before = p.state(INSTANCE);
    assert_eq!(before.get_str(keys::LAST_ACTION), Some("converge"));

    let reset = p
        .kitchen_driver(300)
        .args(["reset", INSTANCE])
        .output()
        .unwrap();
    let out = text(&reset.stdout);
    assert!(reset.status.success(), "{out}{}", text(&reset.stderr));
    let after = p.state(INSTANCE);
    assert_eq!(after.get_str(keys::LAST_ACTION), Some("create"), "{out}");
    assert_eq!(
        after.get_str(keys::CONTAINER_NAME),
        before.get_str(keys::CONTAINER_NAME)
    );
    match runtime {
        Runtime::Docker => {
            assert!(out.contains("Recreating container"), "{out}");
            assert_ne!(
                after.get_str(keys::CONTAINER_ID),
                before.get_str(keys::CONTAINER_ID)
            );
            assert_eq!(
                p.containers(Some(INSTANCE)).len(),
                1,
                "the old container is gone"
            );
        }
        Runtime::Lxd => {
            // setup-host's default pool is copy-on-write: create took the snapshot.
            assert!(out.contains("Restoring LXD instance"), "{out}");
            assert_eq!(
                after.get_str("lxd_pristine_snapshot"),
                Some("kitchen-pristine")
            );
        }
    }
    // The pristine files: neither the converge's nor the hand-made change is there.
    let check = p
        .kitchen_driver(120)
        .args([
            "exec",
            INSTANCE,
            "-c",
            "test ! -e /etc/hello/hello.conf && test ! -e /root/dirty && echo pristine-ok",
        ])
        .output()
        .unwrap();
    assert!(
        check.status.success() && text(&check.stdout).contains("pristine-ok"),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    // And it converges again from there.
    let again = p
        .kitchen_driver(300)
        .args(["verify", INSTANCE])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stdout));
    assert!(
        text(&again.stdout).contains("verified-ok"),
        "{}",
        text(&again.stdout)
    );
    let destroy = p
        .kitchen_driver(300)
        .args(["destroy", INSTANCE])
        .output()
        .unwrap();
    assert!(destroy.status.success(), "{}", text(&destroy.stderr));
    p.assert_no_containers();
}

#[test]
fn reset_restores_the_pristine_files_on_docker() {
    reset_restores_the_pristine_files(Runtime::Docker);
}

#[test]
fn reset_restores_the_pristine_files_on_lxd() {
    reset_restores_the_pristine_files(Runtime::Lxd);
}

#[test]
fn reset_of_an_instance_never_created_fails_and_names_it() {
    let p = standard_project("reset-none", &basic_kitchen_yml(Runtime::Docker));
    let reset = p
        .kitchen_driver(60)
        .args(["reset", INSTANCE])
        .output()
        .unwrap();
    assert_eq!(reset.status.code(), Some(20), "{}", text(&reset.stdout));
    let all = format!("{}{}", text(&reset.stdout), text(&reset.stderr));
    assert!(
        all.contains(INSTANCE) && all.contains("not yet been created"),
        "{all}"
    );
    assert!(!p.state_exists(INSTANCE), "a failed reset writes no state");
    p.assert_no_containers();
}
