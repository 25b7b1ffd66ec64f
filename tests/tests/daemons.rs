//! The real daemons are there: LXD answers through `lxd-client`, Docker runs `kitchen/busybox`.
//!
//! These tests never skip: `scripts/setup-host` brings both daemons up, and a test run without
//! them must fail loudly rather than pass empty.

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, StartContainerOptions, WaitContainerOptions,
};
use futures::StreamExt;
use workspace_tests::unique_name;

#[tokio::test]
async fn lxd_socket_answers_get_1_0_through_lxd_client() {
    let client = lxd_client::Client::connect_local()
        .await
        .expect("LXD socket (run scripts/setup-host)");
    let server = client.server().await.expect("GET /1.0");
    assert_eq!(server.api_version, "1.0");
    assert_eq!(server.auth, "trusted", "root on the unix socket is trusted");
    assert!(
        server
            .api_extensions
            .iter()
            .any(|e| e == "container_exec_recording"),
        "a real 5.x daemon lists its API extensions"
    );
}

/// Removes the container when dropped, even if the test panics.
struct ContainerGuard {
    docker: Docker,
    name: String,
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let name = self.name.clone();
        // Drop cannot be async; run the removal to completion on a fresh runtime thread.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| {
                    rt.block_on(docker.remove_container(
                        &name,
                        Some(RemoveContainerOptions {
                            force: true,
                            ..Default::default()
                        }),
                    ))
                })
        })
        .join();
    }
}

/// Creates `kitchen/busybox:latest` running `exit 42` on the engine behind `docker`, and
/// checks the exit code the engine reports and that the container is gone afterwards.
async fn busybox_exit_code_round_trip(docker: Docker) {
    let name = unique_name("busybox-exit");
    let guard = ContainerGuard {
        docker: docker.clone(),
        name: name.clone(),
    };
    let body = ContainerCreateBody {
        image: Some("kitchen/busybox:latest".into()),
        cmd: Some(vec!["sh".into(), "-c".into(), "exit 42".into()]),
        network_disabled: Some(true),
        ..Default::default()
    };
    docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            body,
        )
        .await
        .expect("create container from kitchen/busybox:latest");
    docker
        .start_container(&name, None::<StartContainerOptions>)
        .await
        .expect("start");
    // bollard reports a non-zero exit as an error carrying the code; read the code either way.
    let waited = match docker
        .wait_container(&name, None::<WaitContainerOptions>)
        .next()
        .await
        .expect("wait yields one response")
    {
        Ok(resp) => resp.status_code,
        Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => code,
        Err(e) => panic!("wait failed: {e}"),
    };
    // Compatibility layers have misreported exit codes (runtimes-here.md): the inspected state
    // is the authority, and both must agree.
    let inspected = docker
        .inspect_container(&name, None)
        .await
        .expect("inspect")
        .state
        .and_then(|s| s.exit_code);
    assert_eq!((waited, inspected), (42, Some(42)));
    drop(guard);
    let gone = docker.inspect_container(&name, None).await;
    assert!(gone.is_err(), "container {name} was removed");
}

#[tokio::test]
async fn docker_runs_kitchen_busybox_and_reports_its_exit_code() {
    let docker = Docker::connect_with_local_defaults()
        .expect("Docker socket")
        .negotiate_version()
        .await
        .expect("Docker engine answers (run scripts/setup-host)");
    busybox_exit_code_round_trip(docker).await;
}

/// Podman's Docker-compatible API, started by `scripts/setup-host` at this socket.
const PODMAN_SOCKET: &str = "/run/podman/podman.sock";

#[tokio::test]
async fn podman_compat_api_runs_kitchen_busybox_and_reports_its_exit_code() {
    let docker = Docker::connect_with_unix(PODMAN_SOCKET, 120, bollard::API_DEFAULT_VERSION)
        .expect("Podman socket")
        .negotiate_version()
        .await
        .expect("Podman API answers (run scripts/setup-host)");
    busybox_exit_code_round_trip(docker).await;
}
