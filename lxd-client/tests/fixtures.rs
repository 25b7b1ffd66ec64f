//! Decoding of responses recorded from the real LXD 5.0.2 daemon (see fixtures/README.md).

use lxd_client::models::{
    Event, EventType, Image, ImageAliasTarget, Instance, InstanceState, Network, Operation,
    Profile, Server, Snapshot, StatusCode, StoragePool, StorageVolume,
};
use serde::de::DeserializeOwned;

fn envelope(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn metadata<T: DeserializeOwned>(name: &str) -> T {
    let env = envelope(name);
    assert_eq!(env["type"], "sync", "{name}");
    serde_json::from_value(env["metadata"].clone()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn server() {
    let s: Server = metadata("server.json");
    assert_eq!(s.api_version, "1.0");
    assert_eq!(s.environment.server_version, "5.0.2");
    assert!(s.has_extension("container_exec_recording"));
    assert!(!s.has_extension("operation_wait"));
}

#[test]
fn instance_and_state() {
    let i: Instance = metadata("instance.json");
    assert_eq!(i.name, "kdtest-fixture-c1");
    assert_eq!(i.profiles, vec!["default"]);
    assert!(i.expanded_devices["root"]["pool"] == "default");
    assert!(i.state.is_none());
    let st: InstanceState = metadata("instance_state.json");
    assert_eq!(st.status_code, StatusCode::RUNNING);
    assert!(st.pid > 0);
    assert!(st.memory.unwrap().usage > 0);
    assert_eq!(st.network.unwrap()["lo"].kind, "loopback");
}

#[test]
fn instances_recursion_2_has_state_and_snapshots() {
    let list: Vec<Instance> = metadata("instances_recursion2.json");
    assert_eq!(list.len(), 1);
    assert!(list[0].state.is_some());
    let snaps = list[0].snapshots.as_ref().unwrap();
    assert_eq!(snaps[0].name, "snap0");
    let snaps: Vec<Snapshot> = metadata("snapshots.json");
    assert_eq!(snaps[0].name, "snap0");
}

#[test]
fn images_profiles_networks_storage() {
    let img: Image = metadata("image.json");
    assert_eq!(img.fingerprint.len(), 64);
    assert_eq!(img.aliases[0].name, "kitchen/busybox");
    let alias: ImageAliasTarget = metadata("image_alias.json");
    assert_eq!(alias.target, img.fingerprint);
    let p: Profile = metadata("profile.json");
    assert_eq!(p.devices["root"]["type"], "disk");
    let nets: Vec<Network> = metadata("networks.json");
    assert!(nets.iter().any(|n| n.name == "lo" && n.used_by.is_some()));
    assert!(
        nets.iter().any(|n| n.used_by.is_none()),
        "null used_by decodes"
    );
    let pool: StoragePool = metadata("storage_pool.json");
    assert_eq!(pool.driver, "dir");
    assert!(!pool.used_by.is_empty());
    let unused: StoragePool = metadata("storage_pool_unused.json");
    assert!(unused.used_by.is_empty(), "null used_by decodes as empty");
    let vols: Vec<StorageVolume> = metadata("storage_volumes.json");
    assert!(vols.iter().any(|v| v.name == "kdtest-fixture-c1/snap0"));
}

#[test]
fn operations() {
    let env = envelope("async_start.json");
    assert_eq!(env["type"], "async");
    let op: Operation = serde_json::from_value(env["metadata"].clone()).unwrap();
    assert_eq!(op.status_code, StatusCode::RUNNING);
    assert!(op.metadata.is_none(), "null metadata decodes");
    let failed: Operation = metadata("operation_failed.json");
    assert_eq!(failed.status_code, StatusCode::FAILURE);
    assert!(failed.status_code.is_final());
    assert_eq!(failed.err, "The instance is already running");
    let rec: Operation = metadata("exec_record_done.json");
    assert_eq!(rec.metadata.as_ref().unwrap()["return"], 3);
    assert!(
        rec.metadata.as_ref().unwrap()["output"]["1"]
            .as_str()
            .unwrap()
            .ends_with(".stdout")
    );
}

#[test]
fn errors_keep_code_and_text() {
    let e = envelope("error_not_found.json");
    assert_eq!(e["error_code"], 404);
    assert_eq!(e["error"], "Instance not found");
    let e = envelope("error_etag_mismatch.json");
    assert_eq!(e["error_code"], 412);
}

#[test]
fn event() {
    let path = format!(
        "{}/tests/fixtures/events_lifecycle.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let ev: Event = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(ev.event_type, EventType::Lifecycle);
    assert_eq!(ev.instance().as_deref(), Some("kdtest-fixture-c1"));
    assert_eq!(ev.lifecycle_action(), Some("instance-updated"));
    assert_eq!(ev.project.as_deref(), Some("default"));
}

#[test]
fn unknown_fields_are_ignored() {
    let mut env = envelope("instance.json");
    env["metadata"]["field_from_the_future"] = serde_json::json!({"x": [1, 2]});
    let i: Instance = serde_json::from_value(env["metadata"].clone()).unwrap();
    assert_eq!(i.name, "kdtest-fixture-c1");
}
