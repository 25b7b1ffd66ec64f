//! Image bundles on the real Docker engine and the registry `scripts/setup-host` runs
//! (Debian's docker-registry on 127.0.0.1:5055): a bundle too large for the task definition is
//! built into an image `FROM` the platform image, pushed, referenced by digest, and runs with
//! `--local` from the image pulled by that digest.

mod common;

use common::{Project, RegistryNamespace, ecs_runner_in, incompressible};
use sha2::{Digest, Sha256};

/// A project whose provisioner data (96 KiB) cannot travel inline, with its registry.
fn big_bundle_project() -> (Project, RegistryNamespace, String) {
    let project = Project::new("", &[]);
    let registry = RegistryNamespace::new(project.path());
    let data = incompressible(96 * 1024);
    let digest: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::create_dir_all(project.path().join("data")).unwrap();
    std::fs::write(project.path().join("data/big.bin"), &data).unwrap();
    std::fs::write(
        project.path().join("kitchen.yml"),
        format!(
            "driver: {{name: docker, image: \"kitchen/busybox:latest\"}}\n\
             provisioner: {{name: shell, sudo: false, data_path: data, command: 'sha256sum /tmp/kitchen/data/big.bin'}}\n\
             verifier: {{name: shell, command: 'test -s /tmp/kitchen/data/big.bin'}}\n\
             ecs: {{registry: \"{}\"}}\n\
             platforms: [{{name: bb}}]\nsuites: [{{name: big}}]\n",
            registry.registry
        ),
    )
    .unwrap();
    (project, registry, digest)
}

#[test]
fn a_bundle_too_big_to_travel_inline_runs_locally_from_the_image_pulled_by_digest() {
    let (project, registry, data_digest) = big_bundle_project();
    // `render` publishes the image and shows the digest reference.
    let out = ecs_runner_in(project.path(), &["render", "big-bb"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let td: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &td["containerDefinitions"][0];
    let image = c["image"].as_str().unwrap().to_owned();
    let prefix = format!("{}/kitchen-ecs-bundles@sha256:", registry.registry);
    assert!(
        image.starts_with(&prefix) && image.len() == prefix.len() + 64,
        "{image}"
    );
    assert!(c.get("environment").is_none(), "no inline bundle: {c}");
    assert_eq!(registry.tags().len(), 1, "one image pushed");
    assert!(
        registry.local_images().is_empty(),
        "the local build is removed once pushed"
    );

    // `run --local` finds the image in the registry (no rebuild) and pulls it by digest.
    let out = ecs_runner_in(project.path(), &["run", "--local"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "bundle image {image} (unchanged, reused from the registry)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{data_digest}  /tmp/kitchen/data/big.bin")),
        "the 96 KiB file arrived intact: {stdout}"
    );
    assert_eq!(registry.tags().len(), 1);
    assert!(
        registry.local_images().is_empty(),
        "the pulled image is removed after the run"
    );
}

#[test]
fn without_a_registry_a_bundle_too_big_is_refused_before_anything_starts() {
    let (project, _registry, _) = big_bundle_project();
    let yml = std::fs::read_to_string(project.path().join("kitchen.yml")).unwrap();
    let yml: String = yml
        .lines()
        .filter(|l| !l.starts_with("ecs:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(project.path().join("kitchen.yml"), yml).unwrap();
    let out = ecs_runner_in(project.path(), &["run", "--local"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(ecs_runner::EXIT_USAGE), "{stderr}");
    assert!(
        stderr.contains("instance big-bb: the bundle makes the task definition")
            && stderr.contains("set `ecs: {registry: HOST[:PORT][/NAMESPACE]}`"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
