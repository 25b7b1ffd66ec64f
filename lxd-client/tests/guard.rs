//! InstanceGuard against the real daemon: dropped on either runtime flavour, explicitly
//! deleted, kept.

mod common;

use common::*;
use lxd_client::Client;

async fn exists(client: &Client, name: &str) -> bool {
    match client.instances().get(name).await {
        Ok(_) => true,
        Err(e) if e.is_not_found() => false,
        Err(e) => panic!("{e}"),
    }
}

async fn launch(client: &Client, name: &str) -> lxd_client::InstanceGuard {
    client
        .instances()
        .create(name)
        .image_alias(BUSYBOX)
        .launch_guarded()
        .await
        .unwrap()
}

#[tokio::test]
async fn dropping_on_a_current_thread_runtime_deletes_the_running_instance() {
    let client = client().await;
    let name = unique_name("gdrop");
    let _cleanup = InstanceGuard { name: name.clone() };
    let guard = launch(&client, &name).await;
    assert!(client.instances().state(&name).await.unwrap().is_running());
    drop(guard);
    assert!(!exists(&client, &name).await, "gone when drop returns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_on_a_multi_thread_runtime_deletes_the_instance() {
    let client = client().await;
    let name = unique_name("gdropmt");
    let _cleanup = InstanceGuard { name: name.clone() };
    let guard = launch(&client, &name).await;
    // Dropped by an early return inside a task, as `?` would.
    let task = tokio::spawn(async move {
        let _guard = guard;
        Err::<(), _>("a step failed")
    });
    assert!(task.await.unwrap().is_err());
    assert!(!exists(&client, &name).await);
}

#[tokio::test]
async fn delete_is_explicit_and_keep_disarms() {
    let client = client().await;
    let name = unique_name("gdel");
    let _cleanup = InstanceGuard { name: name.clone() };
    let guard = launch(&client, &name).await;
    assert_eq!(guard.name(), name);
    guard.delete().await.unwrap();
    assert!(!exists(&client, &name).await);

    let kept = unique_name("gkeep");
    let _cleanup_kept = InstanceGuard { name: kept.clone() };
    let guard = launch(&client, &kept).await;
    assert_eq!(guard.keep(), kept);
    assert!(exists(&client, &kept).await, "keep() leaves it");
    // A guard over an instance that is already gone is a no-op.
    client.instances().delete_force(&kept).await.unwrap();
    drop(client.instances().guard(&kept));
}
