//! Instances against the real daemon: lifecycle, listing, ETags, state, failure paths.

mod common;

use common::*;
use lxd_client::models::StatusCode;

#[tokio::test]
async fn server_info_is_trusted_and_has_extensions() {
    let client = client().await;
    let server = client.server().await.unwrap();
    assert_eq!(server.auth, "trusted");
    assert!(server.has_extension("container_exec_recording"));
    assert!(!server.environment.server_version.is_empty());
}

#[tokio::test]
async fn lifecycle_create_start_freeze_stop_rename_delete() {
    let client = client().await;
    let mut guard = busybox(&client, "life").await;
    let instances = client.instances();

    let inst = instances.get(&guard.name).await.unwrap();
    assert_eq!(inst.name, guard.name);
    assert_eq!(inst.status_code, StatusCode::STOPPED);
    assert_eq!(inst.profiles, vec!["default".to_string()]);

    instances
        .start(&guard.name)
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    let state = instances.state(&guard.name).await.unwrap();
    assert_eq!(state.status_code, StatusCode::RUNNING);
    assert!(state.pid > 0);
    assert!(state.processes >= 1);
    assert!(state.memory.unwrap().usage > 0);

    instances
        .freeze(&guard.name)
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        instances.get(&guard.name).await.unwrap().status_code,
        StatusCode::FROZEN
    );
    instances
        .unfreeze(&guard.name)
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    instances
        .restart(&guard.name)
        .force()
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    assert!(instances.get(&guard.name).await.unwrap().is_running());

    instances
        .stop(&guard.name)
        .force()
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    let renamed = unique_name("renamed");
    instances
        .rename(&guard.name, &renamed)
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    let old = std::mem::replace(&mut guard.name, renamed.clone());
    assert!(instances.get(&old).await.unwrap_err().is_not_found());

    instances
        .delete(&renamed)
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    assert!(instances.get(&renamed).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn starting_a_running_instance_is_an_operation_failure() {
    let client = client().await;
    let guard = running_busybox(&client, "twice").await;
    let op = client.instances().start(&guard.name).await.unwrap();
    // Wait longer than LXD keeps finished operations: the handle must still know the result.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let err = op.wait_for(OP_TIMEOUT).await.unwrap_err();
    assert!(err.is_operation_failure(), "{err}");
    assert!(err.message().unwrap().contains("already running"), "{err}");
}

#[tokio::test]
async fn missing_instance_is_not_found() {
    let client = client().await;
    let name = unique_name("missing");
    let err = client.instances().get(&name).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.message().unwrap().contains("not found"), "{err}");
    let err = client.instances().start(&name).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn missing_image_fails_creation() {
    let client = client().await;
    let name = unique_name("noimage");
    let _guard = InstanceGuard { name: name.clone() };
    let result = match client
        .instances()
        .create(&name)
        .image_alias("kdtest/no-such-image")
        .send()
        .await
    {
        Ok(op) => op.wait_for(OP_TIMEOUT).await.map(|_| ()),
        Err(e) => Err(e),
    };
    let err = result.unwrap_err();
    assert!(err.is_not_found() || err.is_operation_failure(), "{err}");
    assert!(
        client
            .instances()
            .get(&name)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn update_with_etag_and_stale_etag_412() {
    let client = client().await;
    let guard = busybox(&client, "etag").await;
    let instances = client.instances();
    let (inst, etag) = instances.get_with_etag(&guard.name).await.unwrap();
    let etag = etag.expect("LXD sends an ETag");
    let mut put = inst.to_put();
    put.config.insert("user.kdtest".into(), "one".into());
    put.description = "updated".into();
    if let Some(op) = instances
        .update(&guard.name, &put, Some(&etag))
        .await
        .unwrap()
    {
        op.wait_for(OP_TIMEOUT).await.unwrap();
    }
    let inst = instances.get(&guard.name).await.unwrap();
    assert_eq!(
        inst.config.get("user.kdtest").map(String::as_str),
        Some("one")
    );
    assert_eq!(inst.description, "updated");

    // The old ETag is stale now.
    put.config.insert("user.kdtest".into(), "two".into());
    let err = instances
        .update(&guard.name, &put, Some(&etag))
        .await
        .unwrap_err();
    assert!(err.is_precondition_failed(), "{err}");
    let err = instances
        .patch(
            &guard.name,
            &serde_json::json!({"description": "x"}),
            Some(&etag),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(412), "{err}");

    instances
        .patch(
            &guard.name,
            &serde_json::json!({"config": {"user.other": "3"}}),
            None,
        )
        .await
        .unwrap();
    let inst = instances.get(&guard.name).await.unwrap();
    assert_eq!(inst.config.get("user.other").map(String::as_str), Some("3"));
    assert_eq!(
        inst.config.get("user.kdtest").map(String::as_str),
        Some("one")
    );
}

#[tokio::test]
async fn list_recursion_and_filter() {
    let client = client().await;
    let guard = running_busybox(&client, "list").await;
    let instances = client.instances();
    assert!(instances.names().await.unwrap().contains(&guard.name));
    let filter = format!("name eq {}", guard.name);
    let names = instances.names_filtered(Some(&filter)).await.unwrap();
    assert_eq!(names, vec![guard.name.clone()]);
    let full = instances.list_filtered(Some(&filter), false).await.unwrap();
    assert_eq!(full.len(), 1);
    assert!(full[0].state.is_none());
    let with_state = instances.list_filtered(Some(&filter), true).await.unwrap();
    assert_eq!(
        with_state[0].state.as_ref().unwrap().status_code,
        StatusCode::RUNNING
    );
    assert!(
        instances
            .list()
            .await
            .unwrap()
            .iter()
            .any(|i| i.name == guard.name)
    );
}

#[tokio::test]
async fn create_with_builder_options() {
    let client = client().await;
    let name = unique_name("opts");
    let _guard = InstanceGuard { name: name.clone() };
    client
        .instances()
        .create(&name)
        .image_alias(BUSYBOX)
        .profiles(Vec::<String>::new())
        .storage_pool("default")
        .config("user.kdtest", "yes")
        .device(
            "kdtmp",
            [
                ("type", "disk"),
                ("source", "/tmp"),
                ("path", "/mnt/host-tmp"),
            ],
        )
        .description("made by a test")
        .send()
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    let inst = client.instances().get(&name).await.unwrap();
    assert!(inst.profiles.is_empty());
    assert_eq!(inst.devices["root"]["pool"], "default");
    assert_eq!(inst.devices["kdtmp"]["path"], "/mnt/host-tmp");
    assert_eq!(inst.config["user.kdtest"], "yes");
    assert_eq!(inst.description, "made by a test");
}

#[tokio::test]
async fn ephemeral_instance_goes_away_on_stop() {
    let client = client().await;
    let name = unique_name("eph");
    let _guard = InstanceGuard { name: name.clone() };
    client
        .instances()
        .create(&name)
        .image_alias(BUSYBOX)
        .ephemeral(true)
        .launch()
        .await
        .unwrap();
    assert!(client.instances().get(&name).await.unwrap().ephemeral);
    client
        .instances()
        .stop(&name)
        .force()
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    // Ephemeral deletion happens right after the stop; give it a moment.
    let mut gone = false;
    for _ in 0..50 {
        if client
            .instances()
            .get(&name)
            .await
            .is_err_and(|e| e.is_not_found())
        {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone);
}

#[tokio::test]
async fn daemon_not_running_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    // A path where nothing exists...
    let missing = lxd_client::Client::with_socket(dir.path().join("no.socket"));
    let err = missing.server().await.unwrap_err();
    assert!(err.is_daemon_unreachable(), "{err}");
    // ...and a socket file with nothing listening.
    let path = dir.path().join("dead.socket");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let dead = lxd_client::Client::with_socket(&path);
    let err = dead.instances().names().await.unwrap_err();
    assert!(err.is_daemon_unreachable(), "{err}");
}

#[tokio::test]
async fn logs_and_console() {
    let client = client().await;
    let guard = running_busybox(&client, "logs").await;
    let logs = client.instances().logs(&guard.name).await.unwrap();
    assert!(logs.iter().any(|l| l == "lxc.log"), "{logs:?}");
    let conf = client
        .instances()
        .log(&guard.name, "lxc.conf")
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&conf).contains("lxc.uts.name"));
    // LXD 5.0.2 keeps no console log file for containers on this host: it answers 500
    // "open : no such file or directory", exactly as `lxc console --show-log` reports.
    match client.instances().console_log(&guard.name).await {
        Ok(_) => {}
        Err(e) => assert_eq!(e.status(), Some(500), "{e}"),
    }
    let missing = unique_name("nolog");
    let err = client.instances().console_log(&missing).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

/// The sockets this process has open, by inode (`socket:[N]`).
fn open_sockets() -> std::collections::BTreeSet<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .filter(|t| t.starts_with("socket:"))
        .collect()
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let client = client().await;
    client.server().await.unwrap();
    let before = open_sockets();
    assert!(
        !before.is_empty(),
        "the first request left a pooled connection"
    );
    for _ in 0..50 {
        client.server().await.unwrap();
        client.instances().names().await.unwrap();
    }
    // The same connection (same socket inode) served all 100 requests.
    assert_eq!(open_sockets(), before);
}

#[tokio::test]
async fn a_taken_name_is_already_exists_on_every_path() {
    let client = client().await;
    let guard = busybox(&client, "dup").await;
    // LXD 5.0.2 accepts the create and fails the operation with 400.
    let result = match client
        .instances()
        .create(&guard.name)
        .image_alias(BUSYBOX)
        .send()
        .await
    {
        Ok(op) => op.wait_for(OP_TIMEOUT).await.map(drop),
        Err(e) => Err(e),
    };
    let err = result.unwrap_err();
    assert!(err.is_already_exists(), "{err}");
    assert!(err.is_conflict(), "{err}");
    assert!(!err.is_not_found(), "{err}");
    // launch and launch_guarded say the same, and leave the existing instance alone.
    let err = client
        .instances()
        .create(&guard.name)
        .image_alias(BUSYBOX)
        .launch_guarded()
        .await
        .unwrap_err();
    assert!(err.is_already_exists(), "{err}");
    let existing = client.instances().get(&guard.name).await.unwrap();
    assert_eq!(existing.status_code, StatusCode::STOPPED);
}

#[tokio::test]
async fn delete_force_removes_running_and_stopped_instances() {
    let client = client().await;
    let instances = client.instances();
    let running = running_busybox(&client, "dfrun").await;
    assert!(instances.state(&running.name).await.unwrap().is_running());
    instances.delete_force(&running.name).await.unwrap();
    assert!(
        instances
            .get(&running.name)
            .await
            .unwrap_err()
            .is_not_found()
    );

    let stopped = busybox(&client, "dfstop").await;
    assert!(!instances.state(&stopped.name).await.unwrap().is_running());
    instances.delete_force(&stopped.name).await.unwrap();
    assert!(
        instances
            .get(&stopped.name)
            .await
            .unwrap_err()
            .is_not_found()
    );

    // Nothing to delete is an error, as with `lxc delete --force`.
    let err = instances.delete_force(&stopped.name).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn state_changes_take_options() {
    let client = client().await;
    let guard = running_busybox(&client, "opts").await;
    let instances = client.instances();
    let stop = instances
        .stop(&guard.name)
        .force()
        .timeout(std::time::Duration::from_secs(5));
    assert!(stop.body().force);
    assert_eq!(stop.body().timeout, 5);
    stop.await.unwrap().wait().await.unwrap();
    assert!(!instances.state(&guard.name).await.unwrap().is_running());
    // A stateful snapshot of a stopped instance: the option reaches the server, which refuses.
    let stateful = match instances
        .snapshots(&guard.name)
        .create("s0")
        .stateful()
        .await
    {
        Ok(op) => op.wait().await.map(drop),
        Err(e) => Err(e),
    };
    let err = stateful.unwrap_err();
    assert!(
        err.message()
            .unwrap()
            .contains("Unable to create a stateful snapshot"),
        "{err}"
    );
    instances
        .snapshots(&guard.name)
        .create("s1")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(
        instances.snapshots(&guard.name).names().await.unwrap(),
        ["s1"]
    );
}
