//! `image: REMOTE:ALIAS` for the `lxd` driver: the image is copied from the `lxc` remote
//! `REMOTE` into the instance's server once, when that server has no image under `ALIAS`
//! yet, and kept there under the same alias (as `lxc image copy REMOTE:ALIAS SERVER:
//! --alias ALIAS` would), so later instances use it at once.
//!
//! The copy is relayed through this host (export, then import, with progress), as
//! `lxc image copy --mode relay` does: it works whether or not the two servers can reach each
//! other, and the source need not publish the image.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lxd_client::{Client, ImportOptions, LxcConfig, UploadBody};

use crate::error::{Error, Result};
use crate::events::InstanceOutput;

/// Splits `REMOTE:ALIAS`; `None` for an image of the instance's own server (no prefix, or
/// `local:`).
pub(super) fn remote_image(image: &str) -> Option<(&str, &str)> {
    match image.split_once(':') {
        Some(("local", _)) | None => None,
        Some((remote, alias)) => Some((remote, alias)),
    }
}

/// The percentage steps a copy reports.
fn progress_step(done: u64, total: u64) -> Option<u64> {
    (total > 0).then(|| (done.min(total) * 4 / total) * 25)
}

/// Makes sure `client`'s server has `alias`, copying it from the lxc remote `remote` when it
/// does not.
///
/// # Errors
/// [`Error::Lxd`] when the remote cannot be reached or lacks the image, or the copy fails.
pub(super) async fn ensure_copied(
    client: &Client,
    remote: &str,
    alias: &str,
    instance: &str,
    output: &InstanceOutput,
) -> Result<()> {
    if client.images().get_alias(alias).await.is_ok() {
        return Ok(());
    }
    let lxd = |action: String| {
        let instance = instance.to_string();
        move |source: lxd_client::Error| Error::Lxd {
            action,
            instance,
            source: Box::new(source),
        }
    };
    let what = format!("copying image {remote}:{alias}");
    let config = LxcConfig::load().map_err(lxd(what.clone()))?;
    let source = config.connect(remote).await.map_err(lxd(what.clone()))?;
    let target = source.images().get_alias(alias).await.map_err(lxd(format!(
        "finding image {alias} on the lxc remote `{remote}`"
    )))?;
    let image = source
        .images()
        .get(&target.target)
        .await
        .map_err(lxd(what.clone()))?;
    let total = u64::try_from(image.size).unwrap_or(0);
    output.info(&format!(
        "Copying image {remote}:{alias} ({}, {:.1} MB) into the instance's server",
        &image.fingerprint[..12.min(image.fingerprint.len())],
        total as f64 / 1e6
    ));
    let dir = tempfile::Builder::new()
        .prefix("kitchen-driver-image-")
        .tempdir()
        .map_err(|e| Error::io("creating a temporary directory", std::env::temp_dir(), e))?;
    let files = source
        .images()
        .export(&image.fingerprint)
        .await
        .map_err(lxd(what.clone()))?
        .write_to_dir(dir.path(), "image.tar.gz")
        .await
        .map_err(lxd(what.clone()))?;
    // Progress over the upload of all files, in quarters: each file's count starts after the
    // sizes of the files before it (the split import sends them in order).
    let reported = Arc::new(AtomicU64::new(0));
    let mut offset = 0u64;
    let mut body = |path: &std::path::PathBuf| {
        let base = offset;
        offset += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let output = output.clone();
        let reported = Arc::clone(&reported);
        let name = format!("{remote}:{alias}");
        UploadBody::lazy_path(path.clone()).on_progress(move |n| {
            if let Some(step) = progress_step(base + n, total)
                && step > reported.swap(step, Ordering::Relaxed)
                && step < 100
            {
                output.info(&format!("Copying image {name}: {step}%"));
            }
        })
    };
    let opts =
        ImportOptions::default().property("kitchen.copied_from", format!("{remote}:{alias}"));
    let op = match files.as_slice() {
        [unified] => client.images().import(body(unified), opts).await,
        [metadata, rootfs] => {
            let (metadata, rootfs) = (body(metadata), body(rootfs));
            client.images().import_split(metadata, rootfs, opts).await
        }
        _ => {
            return Err(Error::Runtime {
                instance: instance.to_string(),
                message: format!(
                    "the lxc remote `{remote}` exported image {alias} as {} files; expected one or two",
                    files.len()
                ),
            });
        }
    };
    let imported = match op {
        Ok(op) => op.wait().await.map(Some),
        Err(e) => Err(e),
    };
    match imported {
        Ok(_) => {}
        // Another instance copied it meanwhile: same fingerprint, already there.
        Err(e) if client.images().get(&image.fingerprint).await.is_ok() => {
            tracing::debug!(error = %e, "image already imported");
        }
        Err(e) => return Err(lxd(what)(e)),
    }
    if let Err(e) = client
        .images()
        .create_alias(
            alias,
            &image.fingerprint,
            &format!("copied from {remote}:{alias}"),
        )
        .await
        && client.images().get_alias(alias).await.is_err()
    {
        return Err(lxd(format!("naming the copied image {alias}"))(e));
    }
    output.info(&format!("Copied image {remote}:{alias}: 100%"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_prefixes_split_and_local_is_the_own_server() {
        assert_eq!(
            remote_image("lab:kitchen/busybox"),
            Some(("lab", "kitchen/busybox"))
        );
        assert_eq!(remote_image("local:kitchen/busybox"), None);
        assert_eq!(remote_image("kitchen/busybox"), None);
    }

    #[test]
    fn progress_is_reported_in_quarters() {
        assert_eq!(progress_step(0, 100), Some(0));
        assert_eq!(progress_step(24, 100), Some(0));
        assert_eq!(progress_step(25, 100), Some(25));
        assert_eq!(progress_step(99, 100), Some(75));
        assert_eq!(progress_step(120, 100), Some(100));
        assert_eq!(progress_step(5, 0), None);
    }
}
