//! `kitchen-driver reset` on the real daemons, through the real binary: an instance converged
//! and dirtied by hand comes back with its pristine files, on Docker and on LXD, and its last
//! action goes back to `create`; a Debian instance comes back with create's files, byte for
//! byte, and ready (systemd up) when `reset` returns; `reset` is bounded by the step timeout.

use kitchen_driver::state::keys;
use test_support::{Runtime, basic_kitchen_yml, standard_project, succeed, text};

const INSTANCE: &str = "default-busybox";

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
    succeed(p.kitchen_driver(300).args(["destroy", INSTANCE]));
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

/// `basic_kitchen_yml` on Debian, systemd as PID 1: instance `default-debian`.
fn debian_kitchen_yml(runtime: Runtime) -> String {
    // Docker runs the image's systemd only when asked to.
    let image = match runtime {
        Runtime::Docker => "kitchen/debian-12:latest\n      run_command: /sbin/init",
        Runtime::Lxd => "kitchen/debian-12",
    };
    basic_kitchen_yml(runtime)
        .replace("  - name: busybox\n", "  - name: debian\n")
        .replace(runtime.busybox_image(), image)
}

const DEBIAN: &str = "default-debian";

/// What of the instance's files a reset must bring back as create left them: files of the
/// image changed, removed and added, and the hostname create wrote.
const FILES_PRINT: &str = "cat /etc/hostname /etc/debian_version; sha256sum /etc/os-release /usr/bin/bats; ls -A /root /etc/hello 2>&1; test -e /etc/dirty && echo dirty-present; true";

/// Changes to the image's files, as a converge makes.
const DIRTY: &str = "echo changed >> /etc/os-release && rm /etc/debian_version /usr/bin/bats && echo x > /etc/dirty && touch /root/dirty";

/// What `command` prints in `instance`, joined into one line (`kitchen-driver exec` prefixes
/// each line it shows with the instance's name).
fn exec_stdout(p: &test_support::TestProject, instance: &str, command: &str) -> String {
    let wrapped = format!("({command}) 2>&1 | tr '\\n' '|' | sed 's/^/OUT=/'; echo");
    let out = p
        .kitchen_driver(120)
        .args(["exec", instance, "-c", &wrapped])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    stdout
        .lines()
        .find_map(|l| l.split_once("OUT=").map(|(_, rest)| rest.to_string()))
        .unwrap_or_else(|| panic!("no output of `{command}`:\n{stdout}"))
}

/// A Debian instance (systemd) reset after its files were changed: the files are those create
/// left, byte for byte, and the instance is ready by create's definition (systemd `running`
/// or `degraded`) the moment `reset` returns, not still booting.
fn reset_of_a_debian_instance_restores_its_files_and_is_ready(runtime: Runtime) {
    let p = standard_project(
        &format!("reset-deb-{}", runtime.label()),
        &debian_kitchen_yml(runtime),
    );
    let create = p
        .kitchen_driver(300)
        .args(["create", DEBIAN])
        .output()
        .unwrap();
    assert!(create.status.success(), "{}", text(&create.stdout));
    let created = exec_stdout(&p, DEBIAN, FILES_PRINT);
    assert!(created.contains("/usr/bin/bats"), "{created}");
    let dirty = p
        .kitchen_driver(120)
        .args(["exec", DEBIAN, "-c", DIRTY])
        .output()
        .unwrap();
    assert!(dirty.status.success(), "{}", text(&dirty.stderr));
    let changed = exec_stdout(&p, DEBIAN, FILES_PRINT);
    assert_ne!(changed, created, "the change took");

    let reset = p
        .kitchen_driver(300)
        .args(["reset", DEBIAN])
        .output()
        .unwrap();
    let out = text(&reset.stdout);
    assert!(reset.status.success(), "{out}{}", text(&reset.stderr));
    // Asked at once, without a wait of our own: a reset that returned while systemd still
    // boots answers `starting` here.
    let state = exec_stdout(
        &p,
        DEBIAN,
        "readlink /proc/1/exe; systemctl is-system-running",
    );
    let mut fields = state.split('|');
    assert!(
        fields.next().is_some_and(|l| l.contains("systemd")),
        "{state}"
    );
    assert!(
        matches!(fields.next(), Some("running" | "degraded")),
        "not ready after reset: {state}\n{out}"
    );
    assert_eq!(exec_stdout(&p, DEBIAN, FILES_PRINT), created, "{out}");
    assert_eq!(p.state(DEBIAN).get_str(keys::LAST_ACTION), Some("create"));

    succeed(p.kitchen_driver(300).args(["destroy", DEBIAN]));
    p.assert_no_containers();
}

#[test]
fn reset_of_a_debian_instance_restores_its_files_and_is_ready_on_docker() {
    reset_of_a_debian_instance_restores_its_files_and_is_ready(Runtime::Docker);
}

#[test]
fn reset_of_a_debian_instance_restores_its_files_and_is_ready_on_lxd() {
    reset_of_a_debian_instance_restores_its_files_and_is_ready(Runtime::Lxd);
}

/// A reset whose readiness wait never ends (a `wait_for` that always fails, added after
/// create) is cut by `--step-timeout`, then by the driver's `step_timeout`: exit 20, the state
/// records the error, and destroy still removes the instance.
#[test]
fn reset_is_bounded_by_the_step_timeout_on_lxd() {
    let yml = basic_kitchen_yml(Runtime::Lxd);
    let p = standard_project("reset-timeout", &yml);
    let create = p
        .kitchen_driver(300)
        .args(["create", INSTANCE])
        .output()
        .unwrap();
    assert!(create.status.success(), "{}", text(&create.stdout));
    let image = format!("      image: {}\n", Runtime::Lxd.busybox_image());
    let never_ready = format!("{image}      wait_for: \"false\"\n");
    let cut = |args: &[&str], yml: &str, how: &str| {
        p.write("kitchen.yml", yml);
        let reset = p.kitchen_driver(300).args(args).output().unwrap();
        let out = text(&reset.stdout);
        assert_eq!(
            reset.status.code(),
            Some(20),
            "{how}: {out}{}",
            text(&reset.stderr)
        );
        assert!(
            out.contains("reset did not finish within its step timeout of 2s"),
            "{how}: {out}"
        );
        let state = p.state(INSTANCE);
        assert_eq!(
            state.get_str(keys::LAST_ERROR),
            Some("Kitchen::ActionFailed"),
            "{how}"
        );
        assert!(state.get_str(keys::CONTAINER_NAME).is_some(), "{how}");
    };
    let never_ready_yml = yml.replace(&image, &never_ready);
    cut(
        &["reset", INSTANCE, "--step-timeout", "2"],
        &never_ready_yml,
        "--step-timeout",
    );
    let with_key = yml.replace(
        &image,
        &format!("{image}      wait_for: \"false\"\n      step_timeout: 2\n"),
    );
    cut(&["reset", INSTANCE], &with_key, "driver step_timeout");

    p.write("kitchen.yml", &yml);
    succeed(p.kitchen_driver(300).args(["destroy", INSTANCE]));
    p.assert_no_containers();
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

// ---- the converge cache ----------------------------------------------------------------

use std::path::{Path, PathBuf};

use bollard::query_parameters::RemoveImageOptions;
use kitchen_driver::converge_cache::{CachedImage, STATE_HIT};
use kitchen_driver::driver::docker::docker_cached_images;
use kitchen_driver::driver::lxd::{lxd_cached_images, remove_lxd_cached};
use test_support::{TestProject, on_fresh_runtime};

/// This checkout's cached images, on both runtimes, read through the runtimes' APIs.
fn cached(root: &Path) -> Vec<CachedImage> {
    let root = root.to_path_buf();
    on_fresh_runtime(async move {
        let client = lxd_client::Client::connect_local().await.expect("LXD");
        let mut all = lxd_cached_images(&client, &root).await.expect("LXD images");
        let docker = test_support::docker().await;
        all.extend(
            docker_cached_images(&docker, &root)
                .await
                .expect("Docker images"),
        );
        all
    })
}

/// Removes the project's cached images when dropped (TestProject removes only containers).
struct CacheGuard(PathBuf);

impl Drop for CacheGuard {
    fn drop(&mut self) {
        let images = cached(&self.0);
        on_fresh_runtime(async move {
            let client = lxd_client::Client::connect_local().await.expect("LXD");
            let docker = test_support::docker().await;
            for i in images {
                // Forced on Docker: a failed test may leave a container on the image (the
                // project's own guard removes it after this one).
                let _ = match i.runtime {
                    "lxd" => remove_lxd_cached(&client, &i)
                        .await
                        .map_err(|e| e.to_string()),
                    _ => docker
                        .remove_image(
                            &i.id,
                            Some(RemoveImageOptions {
                                force: true,
                                ..Default::default()
                            }),
                            None,
                        )
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                };
            }
        });
    }
}

fn cached_project(label: &str, runtime: Runtime, bootstrap: &str) -> (TestProject, CacheGuard) {
    let yml = basic_kitchen_yml(runtime).replace(
        &format!("      image: {}\n", runtime.busybox_image()),
        &format!(
            "      image: {}\n      converge_cache: true\n",
            runtime.busybox_image()
        ),
    );
    let p = standard_project(label, &yml);
    p.write("test/integration/default/bootstrap.sh", bootstrap);
    let guard = CacheGuard(p.root().to_path_buf());
    (p, guard)
}

fn run(p: &TestProject, args: &[&str]) -> (bool, String) {
    let out = p.kitchen_driver(600).args(args).output().unwrap();
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// The standard bootstrap, plus a marker so a converge that ran is seen in the output.
const COUNTING_BOOTSTRAP: &str = "#!/bin/sh\nset -eu\necho provisioner-ran\nmkdir -p /etc/hello\necho \"hello from $(hostname)\" > /etc/hello/hello.conf\n";

fn a_hit_skips_the_converge_and_cache_clear_removes_the_image(runtime: Runtime) {
    let (p, _guard) = cached_project(
        &format!("cache-hit-{}", runtime.label()),
        runtime,
        COUNTING_BOOTSTRAP,
    );
    let (ok, first) = run(&p, &["test", INSTANCE]);
    assert!(ok, "{first}");
    assert!(
        first.contains("converge cache miss") && first.contains("provisioner-ran"),
        "{first}"
    );
    assert!(first.contains("converge cache: published"), "{first}");
    let images = cached(p.root());
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0].runtime, runtime.driver());

    // The same inputs: created from the image, the converge skipped, the verifier still
    // finds the converged file.
    let (ok, second) = run(&p, &["verify", INSTANCE]);
    assert!(ok, "{second}");
    let hit = format!("converge cache hit {}", images[0].key);
    assert!(
        second.contains(&format!("{hit}: converge skipped")),
        "{second}"
    );
    assert!(
        !second.contains("provisioner-ran"),
        "the provisioner ran on a hit:\n{second}"
    );
    assert!(second.contains("verified-ok"), "{second}");
    assert_eq!(
        p.state(INSTANCE).get_str(STATE_HIT),
        Some(images[0].key.as_str())
    );
    let (ok, out) = run(&p, &["destroy", INSTANCE]);
    assert!(ok, "{out}");

    let (ok, list) = run(&p, &["cache", "list"]);
    assert!(ok && list.contains(&images[0].name), "{list}");
    // Not older than a day: kept.
    let (ok, kept) = run(&p, &["cache", "clear", "--older-than", "1"]);
    assert!(ok && kept.contains("0 cached image(s) removed"), "{kept}");
    let (ok, cleared) = run(&p, &["cache", "clear"]);
    assert!(ok, "{cleared}");
    assert!(
        cleared.contains(&format!(
            "Removed {} image {}",
            runtime.driver(),
            images[0].name
        )),
        "{cleared}"
    );
    assert!(cached(p.root()).is_empty(), "cache clear left images");
    p.assert_no_containers();
}

#[test]
fn a_converge_cache_hit_skips_the_converge_and_cache_clear_removes_it_on_docker() {
    a_hit_skips_the_converge_and_cache_clear_removes_the_image(Runtime::Docker);
}

#[test]
fn a_converge_cache_hit_skips_the_converge_and_cache_clear_removes_it_on_lxd() {
    a_hit_skips_the_converge_and_cache_clear_removes_the_image(Runtime::Lxd);
}

fn a_failed_converge_never_publishes(runtime: Runtime) {
    let (p, _guard) = cached_project(
        &format!("cache-fail-{}", runtime.label()),
        runtime,
        "#!/bin/sh\necho provisioner-ran\nexit 3\n",
    );
    let (ok, out) = run(&p, &["converge", INSTANCE]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("provisioner-ran") && !out.contains("published"),
        "{out}"
    );
    assert!(
        cached(p.root()).is_empty(),
        "a failed converge published an image"
    );
    let (ok, out) = run(&p, &["destroy", INSTANCE]);
    assert!(ok, "{out}");
    p.assert_no_containers();
}

#[test]
fn a_failed_converge_never_publishes_on_docker() {
    a_failed_converge_never_publishes(Runtime::Docker);
}

#[test]
fn a_failed_converge_never_publishes_on_lxd() {
    a_failed_converge_never_publishes(Runtime::Lxd);
}

/// The example's Ansible suite on Docker: one byte more in the role's defaults is a miss.
#[test]
fn changing_one_byte_of_a_role_file_misses_the_converge_cache() {
    let p = TestProject::new("cache-role");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for rel in [
        "kitchen.yml",
        "roles/hello/tasks/main.yml",
        "roles/hello/templates/hello.conf.j2",
        "roles/hello/defaults/main.yml",
        "test/integration/ansible/default.yml",
        "test/integration/ansible/bats/hello.bats",
    ] {
        p.write(rel, &std::fs::read_to_string(examples.join(rel)).unwrap());
    }
    let _guard = CacheGuard(p.root().to_path_buf());
    let instance = "ansible-docker-debian-12";
    let (ok, first) = run(&p, &["converge", instance, "--converge-cache"]);
    assert!(ok && first.contains("converge cache: published"), "{first}");
    let key = cached(p.root())[0].key.clone();
    let (ok, out) = run(&p, &["destroy", instance]);
    assert!(ok, "{out}");

    let defaults = p.root().join("roles/hello/defaults/main.yml");
    let mut content = std::fs::read(&defaults).unwrap();
    content.push(b'\n');
    std::fs::write(&defaults, content).unwrap();
    let (ok, second) = run(&p, &["converge", instance, "--converge-cache"]);
    assert!(ok, "{second}");
    assert!(second.contains("converge cache miss"), "{second}");
    assert!(
        !second.contains(&format!("converge cache hit {key}")),
        "{second}"
    );
    assert!(
        second.contains("PLAY RECAP"),
        "the playbook ran again:\n{second}"
    );
    assert_eq!(
        cached(p.root()).len(),
        2,
        "the new key was published beside the old"
    );
    let (ok, out) = run(&p, &["destroy", instance]);
    assert!(ok, "{out}");
    p.assert_no_containers();
}
