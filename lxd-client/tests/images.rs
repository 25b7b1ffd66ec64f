//! Images against the real daemon: unified and split imports (streamed), aliases, list,
//! get, export, delete, creating instances from the imported image, failure paths.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use lxd_client::{ImportOptions, UploadBody};

/// Appends a file to a tar builder.
fn add_file(tar: &mut tar::Builder<std::fs::File>, path: &str, data: &[u8], mode: u32) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    tar.append_data(&mut header, path, data).unwrap();
}

fn add_dir(tar: &mut tar::Builder<std::fs::File>, path: &str) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o755);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    tar.append_data(&mut header, path, std::io::empty())
        .unwrap();
}

fn metadata_yaml(label: &str) -> String {
    format!(
        "architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: kdtest\n  description: {label}\n"
    )
}

/// A unified image tarball (uncompressed) whose content is unique to `label`.
fn unified_tarball(dir: &Path, label: &str) -> PathBuf {
    let path = dir.join(format!("{label}.tar"));
    let mut tar = tar::Builder::new(std::fs::File::create(&path).unwrap());
    add_file(
        &mut tar,
        "metadata.yaml",
        metadata_yaml(label).as_bytes(),
        0o644,
    );
    add_dir(&mut tar, "rootfs");
    add_dir(&mut tar, "rootfs/etc");
    add_file(&mut tar, "rootfs/etc/kdtest", label.as_bytes(), 0o644);
    tar.finish().unwrap();
    path
}

/// A split image: metadata tarball and rootfs tarball.
fn split_tarballs(dir: &Path, label: &str) -> (PathBuf, PathBuf) {
    let meta = dir.join(format!("{label}-meta.tar"));
    let mut tar = tar::Builder::new(std::fs::File::create(&meta).unwrap());
    add_file(
        &mut tar,
        "metadata.yaml",
        metadata_yaml(label).as_bytes(),
        0o644,
    );
    tar.finish().unwrap();
    let rootfs = dir.join(format!("{label}-rootfs.tar"));
    let mut tar = tar::Builder::new(std::fs::File::create(&rootfs).unwrap());
    add_dir(&mut tar, "etc");
    add_file(&mut tar, "etc/kdtest", label.as_bytes(), 0o644);
    tar.finish().unwrap();
    (meta, rootfs)
}

#[tokio::test]
async fn unified_import_alias_export_delete() {
    let client = client().await;
    let images = client.images();
    let dir = tempfile::tempdir().unwrap();
    let label = unique_name("img");
    let tarball = unified_tarball(dir.path(), &label);

    let op = images
        .import(
            UploadBody::path(&tarball).await.unwrap(),
            ImportOptions::default()
                .property("kdtest.origin", "lxd-client test")
                .filename("k.tar"),
        )
        .await
        .unwrap();
    let done = op.wait_for(OP_TIMEOUT).await.unwrap();
    let fingerprint = done.metadata_str("fingerprint").unwrap().to_string();
    let _guard = ImageGuard {
        fingerprint: fingerprint.clone(),
    };
    assert_eq!(fingerprint.len(), 64);

    let image = images.get(&fingerprint).await.unwrap();
    assert_eq!(image.properties["description"], label);
    assert_eq!(image.properties["kdtest.origin"], "lxd-client test");
    assert_eq!(image.filename, "k.tar");
    assert!(images.fingerprints().await.unwrap().contains(&fingerprint));
    assert!(
        images
            .list()
            .await
            .unwrap()
            .iter()
            .any(|i| i.fingerprint == fingerprint)
    );

    // Aliases.
    let alias = format!("{label}/alias");
    images
        .create_alias(&alias, &fingerprint, "test alias")
        .await
        .unwrap();
    assert_eq!(images.get_alias(&alias).await.unwrap().target, fingerprint);
    assert!(
        images
            .aliases()
            .await
            .unwrap()
            .iter()
            .any(|a| a.name == alias)
    );
    let err = images
        .create_alias(&alias, &fingerprint, "")
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");

    // Instances from the alias and from the fingerprint (created only: the rootfs has no init).
    for (n, by_alias) in [(0, true), (1, false)] {
        let name = unique_name(&format!("fromimg{n}"));
        let _g = InstanceGuard { name: name.clone() };
        let b = client.instances().create(&name);
        let b = if by_alias {
            b.image_alias(&alias)
        } else {
            b.image_fingerprint(&fingerprint)
        };
        b.send().await.unwrap().wait_for(OP_TIMEOUT).await.unwrap();
        let inst = client.instances().get(&name).await.unwrap();
        assert_eq!(inst.config["volatile.base_image"], fingerprint);
    }

    // Export gives back the uploaded tarball, in memory or into a directory.
    let export = images.export(&fingerprint).await.unwrap();
    assert_eq!(export.content_type, "application/octet-stream");
    assert!(!export.is_split());
    let exported = export.body.bytes().await.unwrap();
    assert!(exported == std::fs::read(&tarball).unwrap());
    let out = tempfile::tempdir().unwrap();
    let files = images
        .export(&fingerprint)
        .await
        .unwrap()
        .write_to_dir(out.path(), &fingerprint)
        .await
        .unwrap();
    assert_eq!(files.len(), 1);
    assert!(std::fs::read(&files[0]).unwrap() == std::fs::read(&tarball).unwrap());

    // The same tarball again fails as an operation, with the server's reason.
    let again = images
        .import(
            UploadBody::path(&tarball).await.unwrap(),
            ImportOptions::default(),
        )
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap_err();
    assert!(again.is_operation_failure(), "{again}");
    assert!(
        again.message().unwrap().contains("already exists"),
        "{again}"
    );

    images.delete_alias(&alias).await.unwrap();
    assert!(images.get_alias(&alias).await.unwrap_err().is_not_found());
    images
        .delete(&fingerprint)
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    assert!(images.get(&fingerprint).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn split_import_is_streamed_multipart() {
    let client = client().await;
    let dir = tempfile::tempdir().unwrap();
    let label = unique_name("split");
    let (meta, rootfs) = split_tarballs(dir.path(), &label);
    let done = client
        .images()
        .import_split(
            UploadBody::path(&meta).await.unwrap(),
            UploadBody::path(&rootfs).await.unwrap(),
            ImportOptions::default(),
        )
        .await
        .unwrap()
        .wait_for(OP_TIMEOUT)
        .await
        .unwrap();
    let fingerprint = done.metadata_str("fingerprint").unwrap().to_string();
    let _guard = ImageGuard {
        fingerprint: fingerprint.clone(),
    };
    let image = client.images().get(&fingerprint).await.unwrap();
    assert_eq!(image.properties["description"], label);

    // A split image exports as multipart; written to a directory it gives back both parts.
    let export = client.images().export(&fingerprint).await.unwrap();
    assert!(export.is_split(), "{}", export.content_type);
    let out = tempfile::tempdir().unwrap();
    let files = export.write_to_dir(out.path(), &fingerprint).await.unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(std::fs::read(&files[0]).unwrap() == std::fs::read(&meta).unwrap());
    assert!(std::fs::read(&files[1]).unwrap() == std::fs::read(&rootfs).unwrap());
}

#[tokio::test]
async fn missing_image_and_alias_are_not_found() {
    let client = client().await;
    let err = client.images().get(&"0".repeat(64)).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = client.images().get_alias("kdtest/none").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = client.images().delete(&"0".repeat(64)).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    // The busybox alias used everywhere resolves.
    let alias = client.images().get_alias(BUSYBOX).await.unwrap();
    assert_eq!(alias.target.len(), 64);
}
