//! Files against the real daemon: push/pull with ownership and mode, mkdir, symlink,
//! append, delete, recursive copies, streamed large files and failure paths.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use lxd_client::{FileContent, FileOptions, FileType, UploadBody};

#[tokio::test]
async fn push_pull_with_owner_and_mode() {
    let client = client().await;
    let c = running_busybox(&client, "files").await;
    let files = client.instances().files(&c.name);
    files
        .push(
            "/tmp/a.txt",
            "hello\n",
            FileOptions::default().uid(1000).gid(1001).mode(0o640),
        )
        .await
        .unwrap();
    let (info, data) = files.read("/tmp/a.txt").await.unwrap();
    assert_eq!(&data[..], b"hello\n");
    assert_eq!((info.uid, info.gid, info.mode), (1000, 1001, 0o640));
    assert_eq!(info.file_type, FileType::File);
    // Cross-check inside the container.
    let out = client
        .instances()
        .exec(&c.name, ["stat", "-c", "%a %u %g", "/tmp/a.txt"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"640 1000 1001\n");

    // Default mode of a new file is 0644.
    files
        .push("/tmp/b.txt", "x", FileOptions::default())
        .await
        .unwrap();
    assert_eq!(files.stat("/tmp/b.txt").await.unwrap().mode, 0o644);

    // Append.
    files
        .push("/tmp/a.txt", "world\n", FileOptions::default().append())
        .await
        .unwrap();
    assert_eq!(
        &files.read("/tmp/a.txt").await.unwrap().1[..],
        b"hello\nworld\n"
    );
}

#[tokio::test]
async fn push_takes_borrowed_data_and_local_paths() {
    let client = client().await;
    let c = running_busybox(&client, "borrow").await;
    let files = client.instances().files(&c.name);
    let opts = FileOptions::default;
    let text = format!("built at run time for {}\n", c.name);
    files.push("/root/string", &text, opts()).await.unwrap();
    files
        .push("/root/str", text.as_str(), opts())
        .await
        .unwrap();
    let buf: Vec<u8> = (0..=255).collect();
    files
        .push("/root/slice", buf.as_slice(), opts())
        .await
        .unwrap();
    files.push("/root/vec", &buf, opts()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local.bin");
    std::fs::write(&local, &buf[..100]).unwrap();
    files
        .push("/root/path", local.as_path(), opts())
        .await
        .unwrap();
    files.push("/root/pathbuf", &local, opts()).await.unwrap();
    // The caller still owns its data.
    assert!(text.starts_with("built") && buf.len() == 256);
    for (path, want) in [
        ("/root/string", text.as_bytes()),
        ("/root/str", text.as_bytes()),
        ("/root/slice", &buf[..]),
        ("/root/vec", &buf[..]),
        ("/root/path", &buf[..100]),
        ("/root/pathbuf", &buf[..100]),
    ] {
        assert_eq!(&files.read(path).await.unwrap().1[..], want, "{path}");
    }
    // A local file that is missing is an Io error naming it, before anything is sent.
    let missing = dir.path().join("missing");
    let err = files
        .push("/root/never", missing.as_path(), opts())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, lxd_client::Error::Io { path, .. } if *path == missing),
        "{err}"
    );
    assert!(files.stat("/root/never").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn mkdir_symlink_list_delete() {
    let client = client().await;
    let c = running_busybox(&client, "dirs").await;
    let files = client.instances().files(&c.name);
    files
        .mkdir_all("/srv/kd/sub", FileOptions::default().mode(0o750))
        .await
        .unwrap();
    let info = files.stat("/srv/kd/sub").await.unwrap();
    assert_eq!(info.file_type, FileType::Directory);
    assert_eq!(info.mode, 0o750);
    files
        .push("/srv/kd/sub/f", "data", FileOptions::default())
        .await
        .unwrap();
    files
        .symlink("/srv/kd/link", "sub/f", FileOptions::default())
        .await
        .unwrap();
    match files.pull("/srv/kd/link").await.unwrap() {
        FileContent::Symlink { target, info } => {
            // LXD 5.0.2 reports relative targets resolved against the link's directory.
            assert!(target == "sub/f" || target == "/srv/kd/sub/f", "{target}");
            assert_eq!(info.file_type, FileType::Symlink);
        }
        other => panic!("expected a symlink, got {other:?}"),
    }
    match files.pull("/srv/kd").await.unwrap() {
        FileContent::Directory { mut entries, .. } => {
            entries.sort();
            assert_eq!(entries, vec!["link", "sub"]);
        }
        other => panic!("expected a directory, got {other:?}"),
    }
    files.delete("/srv/kd/link").await.unwrap();
    files.delete("/srv/kd/sub/f").await.unwrap();
    assert!(
        files
            .stat("/srv/kd/sub/f")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        files
            .read("/srv/kd/sub")
            .await
            .unwrap_err()
            .to_string()
            .contains("not a regular file")
    );
}

#[tokio::test]
async fn failure_paths() {
    let client = client().await;
    let c = running_busybox(&client, "fileerr").await;
    let files = client.instances().files(&c.name);
    // Each error names the file and the instance, not only the API path.
    let err = files.read("/no/such/file").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let named = format!("/no/such/file in instance {}", c.name);
    assert!(err.to_string().contains(&named), "{err}");
    let err = files
        .push("/no/such/dir/file", "x", FileOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string()
            .starts_with("cannot push /no/such/dir/file in instance"),
        "{err}"
    );
    let err = files.stat("/no/such").await.unwrap_err();
    assert!(
        err.is_not_found() && err.to_string().contains("/no/such in instance"),
        "{err}"
    );
    let err = files.delete("/no/such").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot delete /no/such in instance"),
        "{err}"
    );
    let err = client
        .instances()
        .files(&unique_name("ghost"))
        .read("/etc/passwd")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn recursive_push_and_pull() {
    let client = client().await;
    let c = running_busybox(&client, "tree").await;
    let files = client.instances().files(&c.name);
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("a/b")).unwrap();
    std::fs::write(src.path().join("top.txt"), "top").unwrap();
    std::fs::write(src.path().join("a/b/deep.sh"), "#!/bin/sh\necho deep\n").unwrap();
    std::fs::set_permissions(
        src.path().join("a/b/deep.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("b/deep.sh", src.path().join("a/link")).unwrap();

    let n = files
        .push_dir(src.path(), "/opt/tree", FileOptions::default())
        .await
        .unwrap();
    assert_eq!(n, 6, "3 dirs, 2 files, 1 link");
    let out = client
        .instances()
        .exec(
            &c.name,
            [
                "sh",
                "-c",
                "cat /opt/tree/top.txt; /opt/tree/a/link; readlink /opt/tree/a/link",
            ],
        )
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "topdeep\nb/deep.sh\n");

    let dst = tempfile::tempdir().unwrap();
    let local = dst.path().join("copy");
    let n = files.pull_dir("/opt/tree", &local).await.unwrap();
    assert_eq!(n, 6);
    assert_eq!(
        std::fs::read_to_string(local.join("top.txt")).unwrap(),
        "top"
    );
    let deep = local.join("a/b/deep.sh");
    assert_eq!(
        std::fs::metadata(&deep).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let link = std::fs::read_link(local.join("a/link")).unwrap();
    assert!(
        link.to_str() == Some("b/deep.sh") || link.to_str() == Some("/opt/tree/a/b/deep.sh"),
        "{link:?}"
    );
}

#[tokio::test]
async fn large_file_is_streamed_both_ways() {
    let client = client().await;
    let c = running_busybox(&client, "bigfile").await;
    let files = client.instances().files(&c.name);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    // 64 MiB of a repeating, position-dependent pattern.
    let block: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&src).unwrap();
        for i in 0..64u8 {
            let mut b = block.clone();
            b[0] = i;
            f.write_all(&b).unwrap();
        }
    }
    files
        .push_file(&src, "/tmp/big.bin", FileOptions::default())
        .await
        .unwrap();
    let out = client
        .instances()
        .exec(&c.name, ["sh", "-c", "wc -c < /tmp/big.bin"])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "67108864");

    let back = dir.path().join("back.bin");
    files.pull_file("/tmp/big.bin", &back).await.unwrap();
    assert!(std::fs::read(&src).unwrap() == std::fs::read(&back).unwrap());

    // A streamed body from an AsyncRead works too.
    let reader = tokio::fs::File::open(&src).await.unwrap();
    files
        .push(
            "/tmp/big2.bin",
            UploadBody::reader(reader),
            FileOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        files.stat("/tmp/big2.bin").await.unwrap().file_type,
        FileType::File
    );
}

/// Peak resident memory of this test process in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn pushing_one_gib_does_not_hold_it_in_memory() {
    let client = client().await;
    let c = running_busybox(&client, "gib").await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sparse.bin");
    // A sparse 1 GiB file: cheap on disk, but every byte is read and sent.
    std::fs::File::create(&src)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let before = peak_rss_kib();
    client
        .instances()
        .files(&c.name)
        .push_file(&src, "/tmp/gib.bin", FileOptions::default())
        .await
        .unwrap();
    let after = peak_rss_kib();
    let size = client.instances().files(&c.name).stat("/tmp/gib.bin").await;
    assert!(size.is_ok());
    let out = client
        .instances()
        .exec(
            &c.name,
            ["sh", "-c", "wc -c < /tmp/gib.bin; rm /tmp/gib.bin"],
        )
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1073741824");
    assert!(
        after < 64 * 1024,
        "peak RSS {after} KiB (was {before} KiB before the push)"
    );
}
