//! Snapshots, profiles, networks, storage, events and operations against the real daemon.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use lxd_client::FileOptions;
use lxd_client::models::{EventType, NetworkPost, ProfilePost};

#[tokio::test]
async fn snapshot_create_list_restore_rename_delete() {
    let client = client().await;
    let c = running_busybox(&client, "snap").await;
    let files = client.instances().files(&c.name);
    files
        .push("/root/state", "before", FileOptions::default())
        .await
        .unwrap();
    let snaps = client.instances().snapshots(&c.name);
    snaps
        .create("s1")
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(snaps.names().await.unwrap(), vec!["s1"]);
    let list = snaps.list().await.unwrap();
    assert_eq!(list[0].name, "s1");
    assert!(!list[0].stateful);
    assert_eq!(snaps.get("s1").await.unwrap().name, "s1");

    files
        .push("/root/state", "after", FileOptions::default())
        .await
        .unwrap();
    snaps
        .restore("s1")
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(&files.read("/root/state").await.unwrap().1[..], b"before");

    snaps
        .rename("s1", "s2")
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    assert!(snaps.get("s1").await.unwrap_err().is_not_found());
    let err = snaps.restore("nope").await;
    let err = match err {
        Ok(op) => op.wait_for(OP_TIMEOUT).await.unwrap_err(),
        Err(e) => e,
    };
    assert!(err.is_not_found() || err.is_operation_failure(), "{err}");
    snaps
        .delete("s2")
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    assert!(snaps.names().await.unwrap().is_empty());
}

#[tokio::test]
async fn profiles_create_get_update_delete() {
    let client = client().await;
    let name = unique_name("prof");
    let _guard = ProfileGuard { name: name.clone() };
    let profiles = client.profiles();
    let mut body = ProfilePost::default();
    body.name = name.clone();
    body.description = "kdtest profile".into();
    body.config.insert("limits.memory".into(), "128MiB".into());
    profiles.create(&body).await.unwrap();
    let got = profiles.get(&name).await.unwrap();
    assert_eq!(got.config["limits.memory"], "128MiB");
    assert_eq!(got.description, "kdtest profile");
    assert!(profiles.names().await.unwrap().contains(&name));
    assert!(
        profiles
            .list()
            .await
            .unwrap()
            .iter()
            .any(|p| p.name == "default")
    );

    body.config.insert("limits.memory".into(), "256MiB".into());
    profiles.update(&name, &body).await.unwrap();
    assert_eq!(
        profiles.get(&name).await.unwrap().config["limits.memory"],
        "256MiB"
    );

    // An instance with the profile.
    let inst = unique_name("withprof");
    let _ig = InstanceGuard { name: inst.clone() };
    client
        .instances()
        .create(&inst)
        .image_alias(BUSYBOX)
        .profile("default")
        .profile(&name)
        .send()
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    let i = client.instances().get(&inst).await.unwrap();
    assert_eq!(i.profiles, vec!["default".to_string(), name.clone()]);
    assert_eq!(i.expanded_config["limits.memory"], "256MiB");
    // In use: cannot be deleted.
    assert!(profiles.delete(&name).await.is_err());
    client
        .instances()
        .delete(&inst)
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();

    profiles.delete(&name).await.unwrap();
    assert!(profiles.get(&name).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn networks_list_get_create_delete() {
    let client = client().await;
    let networks = client.networks();
    let all = networks.list().await.unwrap();
    assert!(
        all.iter()
            .any(|n| n.name == "lo" && n.network_type == "loopback")
    );
    assert!(networks.names().await.unwrap().contains(&"lo".to_string()));
    assert_eq!(networks.get("lo").await.unwrap().network_type, "loopback");
    assert!(
        networks
            .get("kdtest-none")
            .await
            .unwrap_err()
            .is_not_found()
    );

    // Interface names are limited to 15 characters, so the usual kdtest-<pid>-<n>-<label>
    // is shortened to kdtest-<pid in base 36>: one network per test process. A macvlan
    // network is only a record until an instance uses it, so nothing changes on the host.
    let name = format!("kdtest-{}", base36(std::process::id()));
    let _guard = NetworkGuard { name: name.clone() };
    let parent = all
        .iter()
        .find(|n| n.network_type == "physical")
        .map(|n| n.name.clone())
        .expect("a physical interface for the macvlan parent");
    let mut body = NetworkPost::default();
    body.name = name.clone();
    body.network_type = "macvlan".into();
    body.config.insert("parent".into(), parent.clone());
    networks.create(&body).await.unwrap();
    let got = networks.get(&name).await.unwrap();
    assert!(got.managed);
    assert_eq!(got.config["parent"], parent);
    networks.delete(&name).await.unwrap();
    assert!(networks.get(&name).await.unwrap_err().is_not_found());
}

fn base36(mut n: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn storage_pools_and_volumes() {
    let client = client().await;
    let c = busybox(&client, "vol").await;
    // The pool the instance's root disk is on: `default` (dir) on a plain set-up, the btrfs
    // pool `kitchen` where scripts/setup-host made one the default profile's root.
    let instance = client.instances().get(&c.name).await.unwrap();
    let root_pool = instance.expanded_devices["root"]["pool"].clone();
    let pools = client.storage_pools();
    let names = pools.names().await.unwrap();
    assert!(names.contains(&root_pool) && names.contains(&"default".to_string()));
    let pool = pools.get(&root_pool).await.unwrap();
    assert!(["dir", "btrfs", "zfs"].contains(&pool.driver.as_str()));
    assert!(pool.used_by.iter().any(|u| u.ends_with(&c.name)));
    // Every pool decodes, including one nothing uses (LXD sends `used_by: null`).
    assert!(
        pools
            .list()
            .await
            .unwrap()
            .iter()
            .any(|p| p.name == root_pool)
    );
    let volumes = pools.volumes(&root_pool).await.unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v.name == c.name && v.volume_type == "container")
    );
    let vol = pools
        .volume(&root_pool, "container", &c.name)
        .await
        .unwrap();
    assert_eq!(vol.name, c.name);
    assert!(pools.get("kdtest-none").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn events_stream_sees_lifecycle() {
    let client = client().await;
    let mut events = client
        .events()
        .types(["lifecycle"])
        .subscribe()
        .await
        .unwrap();
    let c = busybox(&client, "events").await;
    client
        .instances()
        .start(&c.name)
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    let source = format!("/1.0/instances/{}", c.name);
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !seen.iter().any(|a: &String| a == "instance-started") {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("events within a minute")
            .expect("stream open")
            .unwrap();
        assert_eq!(ev.event_type, EventType::Lifecycle);
        if ev.metadata.get("source").and_then(|s| s.as_str()) == Some(source.as_str()) {
            seen.push(ev.lifecycle_action().unwrap().to_string());
        }
    }
    assert!(seen.contains(&"instance-created".to_string()), "{seen:?}");
}

#[tokio::test]
async fn events_can_be_scoped_to_one_instance() {
    let client = client().await;
    let watched = busybox(&client, "evone").await;
    let mut events = client
        .events()
        .project("default")
        .instance(&watched.name)
        .subscribe()
        .await
        .unwrap();
    // Another instance changes first: none of its events may come through.
    let other = running_busybox(&client, "evother").await;
    client
        .instances()
        .start(&watched.name)
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut kinds = std::collections::HashSet::new();
    let mut started = false;
    while !(started && kinds.contains(&EventType::Operation)) {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("events within a minute")
            .expect("stream open")
            .unwrap();
        assert_eq!(
            ev.instance().as_deref(),
            Some(watched.name.as_str()),
            "{ev:?}"
        );
        assert_ne!(ev.instance().as_deref(), Some(other.name.as_str()));
        assert_eq!(ev.project(), Some("default"), "{ev:?}");
        if let Some(op) = ev.operation().unwrap() {
            assert!(!op.description.is_empty());
        }
        started |= ev.lifecycle_action() == Some("instance-started");
        kinds.insert(ev.event_type.clone());
    }
}

#[tokio::test]
async fn a_taken_profile_name_is_already_exists() {
    let client = client().await;
    let mut body = ProfilePost::default();
    body.name = "default".into();
    // LXD 5.0.2 answers HTTP 500 "... The profile already exists".
    let err = client.profiles().create(&body).await.unwrap_err();
    assert!(err.is_already_exists(), "{err}");
}

#[tokio::test]
async fn operations_list_get_cancel_and_follow() {
    let client = client().await;
    let c = running_busybox(&client, "ops").await;
    let p = client
        .instances()
        .exec(&c.name, ["sleep", "30"])
        .spawn()
        .await
        .unwrap();
    let id = p.operation().id().to_string();
    let running = client.operations().list().await.unwrap();
    assert!(
        running
            .get("running")
            .into_iter()
            .flatten()
            .any(|o| o.id == id)
    );
    let op = client.operations().get(&id).await.unwrap();
    assert_eq!(op.class, "websocket");
    let followed = client.operations().follow(&id).await.unwrap();
    p.signal(9).await.unwrap();
    let status = p.wait_for(OP_TIMEOUT).await.unwrap();
    assert_eq!(status.code, 137);
    // The independent follower saw the same end.
    followed.wait_end(Some(OP_TIMEOUT)).await.unwrap();
    // An unknown operation.
    let err = client
        .operations()
        .get("00000000-0000-0000-0000-000000000000")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn wait_timeout_is_distinguishable_and_resumable() {
    let client = client().await;
    let c = running_busybox(&client, "waitto").await;
    let p = client
        .instances()
        .exec(&c.name, ["sleep", "2"])
        .spawn()
        .await
        .unwrap();
    let err = p
        .operation()
        .wait_for(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // The same handle can wait again and gets the real end.
    let done = p.operation().wait_for(OP_TIMEOUT).await.unwrap();
    assert_eq!(done.metadata.unwrap()["return"], 0);
}

#[tokio::test]
async fn projects_are_a_property_of_the_handle() {
    let client = client().await;
    let default = client.project("default");
    assert_eq!(default.project_name(), Some("default"));
    let c = busybox(&default, "proj").await;
    assert!(default.instances().names().await.unwrap().contains(&c.name));
    // Through another project's handle the instance is not visible: the project really
    // travels with every request. (LXD 5.0.2 lists an unknown project as empty.)
    let other = client.project("kdtest-no-such-project");
    assert!(!other.instances().names().await.unwrap().contains(&c.name));
    let err = other.instances().get(&c.name).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn raw_query_escape_hatch() {
    let client = client().await;
    let projects: Vec<String> = client
        .query(lxd_client::Method::GET, "/1.0/projects", None)
        .await
        .unwrap();
    assert!(
        projects.iter().any(|p| p.ends_with("/default")),
        "{projects:?}"
    );
    let c = busybox(&client, "raw").await;
    let body = serde_json::json!({"action": "start"});
    client
        .query_operation(
            lxd_client::Method::PUT,
            &format!("/1.0/instances/{}/state", c.name),
            Some(&body),
        )
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    assert!(client.instances().get(&c.name).await.unwrap().is_running());
    let err = client
        .query::<serde_json::Value>(lxd_client::Method::GET, "/1.0/kdtest-nothing", None)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn dropping_a_process_kills_the_command() {
    let client = client().await;
    let c = running_busybox(&client, "dropkill").await;
    let p = client
        .instances()
        .exec(&c.name, ["sleep", "300"])
        .spawn()
        .await
        .unwrap();
    let follower = client
        .operations()
        .follow(p.operation().id())
        .await
        .unwrap();
    drop(p);
    // Closing the control websocket makes LXD kill the command.
    let done = follower
        .wait_end(Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let code = done.metadata.unwrap()["return"].as_i64().unwrap();
    assert_eq!(code, 128 + 9, "killed by SIGKILL");
}

#[tokio::test]
async fn cancel_operations() {
    let client = client().await;
    // A trust-token operation stays running until used or cancelled, and may be cancelled.
    // Cancelling it leaves nothing behind in the trust store.
    let body = serde_json::json!({"name": unique_name("token"), "type": "client", "token": true});
    let op = client
        .query_operation(lxd_client::Method::POST, "/1.0/certificates", Some(&body))
        .await
        .unwrap();
    assert!(op.initial().may_cancel);
    op.cancel().await.unwrap();
    let err = op.wait_for(OP_TIMEOUT).await.unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert!(err.is_operation_failure());

    // An exec operation cannot be cancelled: the server says so.
    let c = running_busybox(&client, "nocancel").await;
    let p = client
        .instances()
        .exec(&c.name, ["sleep", "1"])
        .spawn()
        .await
        .unwrap();
    let err = p.operation().cancel().await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(
        err.message().unwrap().contains("can't be cancelled"),
        "{err}"
    );
    assert!(p.wait_for(OP_TIMEOUT).await.unwrap().success());
}
