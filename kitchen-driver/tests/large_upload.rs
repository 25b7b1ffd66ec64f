//! A large upload through the real binary, on the real daemons: the shell provisioner's
//! sandbox holds a tree of more than 300 MiB of random (incompressible) data, which reaches
//! the instance intact (checked there with `sha256sum -c`), with its modes, and with a symlink
//! to a directory outside the tree followed (its files arrive, as test-kitchen's scp gives
//! them).
//!
//! Memory is not asserted here (no timed or measured assertions in tests): the committed
//! benchmark `kitchen-driver/benches/upload-memory.sh` records the peak RSS of this upload.

use std::io::Read;
use std::path::Path;

use test_support::{Runtime, TestProject, text, unique_dir};

/// 5 x 64 MiB at the top, and 1 MiB two levels down: 321 MiB.
const BIG_FILES: usize = 5;
const BIG_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Writes `bytes` of random data to `path`.
fn random_file(path: &Path, bytes: u64) {
    let mut random = std::fs::File::open("/dev/urandom").unwrap().take(bytes);
    let mut out = std::fs::File::create(path).unwrap();
    assert_eq!(std::io::copy(&mut random, &mut out).unwrap(), bytes);
}

/// The converge script: the data arrived intact, the executable stayed executable, and the
/// link out of the tree arrived as the directory behind it (not as a link to a host path).
fn bootstrap() -> String {
    "#!/bin/sh\nset -eu\ncd /tmp/kitchen/data\nsha256sum -c SUMS\ntest -x tools/run.sh\n\
     test -d shared && ! test -L shared\ngrep -qx SHARED-CONTENT shared/key\n\
     echo upload-intact\n"
        .to_string()
}

fn a_tree_over_300_mib_arrives_intact(runtime: Runtime) {
    let outside = unique_dir("upload-outside");
    std::fs::write(outside.path().join("key"), "SHARED-CONTENT\n").unwrap();
    let p = TestProject::new(&format!("bigupload-{}", runtime.label()));
    let data = p.tbp().join("default/data");
    std::fs::create_dir_all(data.join("nested/deeper")).unwrap();
    for i in 0..BIG_FILES {
        random_file(&data.join(format!("blob{i}.bin")), BIG_FILE_BYTES);
    }
    random_file(&data.join("nested/deeper/small.bin"), 1024 * 1024);
    let run = p.write("test/integration/default/data/tools/run.sh", "#!/bin/sh\n");
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(outside.path(), data.join("shared")).unwrap();
    // The checksums, taken on the host with coreutils; SUMS travels with the data.
    let sums = std::process::Command::new("sh")
        .arg("-c")
        .arg("find . -type f ! -name SUMS | sort | xargs sha256sum > SUMS")
        .current_dir(&data)
        .status()
        .unwrap();
    assert!(sums.success());
    let listed = std::fs::read_to_string(data.join("SUMS")).unwrap();
    assert_eq!(listed.lines().count(), BIG_FILES + 2, "{listed}");

    p.write(
        "kitchen.yml",
        &format!(
            "driver:\n  name: {driver}\nprovisioner:\n  name: shell\n  sudo: false\nplatforms:\n  - name: busybox\n    driver:\n      image: {image}\nsuites:\n  - name: default\n",
            driver = runtime.driver(),
            image = runtime.busybox_image(),
        ),
    );
    p.write("test/integration/default/bootstrap.sh", &bootstrap());
    let out = p.kitchen_driver(280).args(["converge"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("upload-intact"), "{stdout}");
    assert!(stdout.contains("blob4.bin: OK"), "{stdout}");

    let out = p.kitchen_driver(120).args(["destroy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    p.assert_no_containers();
}

#[test]
fn a_tree_over_300_mib_arrives_intact_on_docker() {
    a_tree_over_300_mib_arrives_intact(Runtime::Docker);
}

#[test]
fn a_tree_over_300_mib_arrives_intact_on_lxd() {
    a_tree_over_300_mib_arrives_intact(Runtime::Lxd);
}
