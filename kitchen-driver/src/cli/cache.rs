//! `cache list|clear [--older-than DAYS]`: this checkout's converge cache images on LXD and
//! Docker (see [`crate::converge_cache`]).

use std::io::Write;

use clap::{Args, Subcommand};

use super::exit;
use crate::config::{self, LoadOptions};
use crate::converge_cache::{CachedImage, DEFAULT_MAX_IMAGES, max_images};
use crate::driver::docker::{docker_cached_images, remove_docker_cached};
use crate::driver::lxd::{lxd_cached_images, remove_lxd_cached};
use crate::error::{Error, Result};

/// `cache list|clear`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CacheCommand,
}

/// The `cache` subcommands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum CacheCommand {
    /// Show this checkout's cached images, most recently used first.
    List,
    /// Remove this checkout's cached images (all, or those unused for DAYS days).
    Clear(ClearArgs),
}

/// `cache clear [--older-than DAYS]`.
#[derive(Debug, Args)]
pub struct ClearArgs {
    /// Remove only images not used for this many days.
    #[arg(long, value_name = "DAYS")]
    pub older_than: Option<u64>,
}

/// What one runtime holds, or why it could not be asked.
struct Found {
    images: Vec<CachedImage>,
    problems: Vec<String>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Startup {
            action: "start the async runtime",
            source,
        })
}

/// Lists both runtimes; an unreachable runtime is a problem reported, not a failure.
async fn find(root: &std::path::Path) -> Found {
    let mut found = Found {
        images: Vec::new(),
        problems: Vec::new(),
    };
    match lxd_client::Client::connect_local().await {
        Ok(client) => match lxd_cached_images(&client, root).await {
            Ok(mut i) => found.images.append(&mut i),
            Err(e) => found.problems.push(format!("LXD: {e}")),
        },
        Err(e) => found.problems.push(format!("LXD not reachable: {e}")),
    }
    match bollard::Docker::connect_with_defaults() {
        Ok(d) => match d.negotiate_version().await {
            Ok(docker) => match docker_cached_images(&docker, root).await {
                Ok(mut i) => found.images.append(&mut i),
                Err(e) => found.problems.push(format!("Docker: {e}")),
            },
            Err(e) => found.problems.push(format!("Docker not reachable: {e}")),
        },
        Err(e) => found.problems.push(format!("Docker not reachable: {e}")),
    }
    found
        .images
        .sort_by_key(|i| std::cmp::Reverse((i.last_used, i.created)));
    found
}

fn when(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".into())
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / 1024.0 / 1024.0)
}

/// The `cache list` table.
pub fn render_list(images: &[CachedImage]) -> String {
    let rows: Vec<[String; 7]> = images
        .iter()
        .map(|i| {
            [
                i.runtime.to_string(),
                i.name.clone(),
                i.key[..16.min(i.key.len())].to_string(),
                i.instance.clone(),
                mib(i.size),
                when(i.created),
                when(i.last_used),
            ]
        })
        .collect();
    let header = [
        "Runtime",
        "Image",
        "Key",
        "Instance",
        "Size",
        "Created",
        "Last used",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (c, w) in cells.iter().zip(&widths) {
            l.push_str(&format!("{c:<w$}  "));
        }
        l.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    let total: u64 = images.iter().map(|i| i.size).sum();
    out.push_str(&format!(
        "{} cached image(s), {}; at most {} kept per runtime (KITCHEN_CONVERGE_CACHE_MAX, default {DEFAULT_MAX_IMAGES}), least recently used evicted first\n",
        images.len(),
        mib(total),
        max_images()
    ));
    out
}

/// Runs `cache list|clear` for the project in `opts`.
///
/// # Errors
/// An unloadable kitchen.yml; images that could not be removed (exit 20).
pub fn run(opts: &LoadOptions, args: CacheArgs) -> Result<i32> {
    let project = config::load(opts)?;
    let root = project.kitchen_root.clone();
    let rt = runtime()?;
    let found = rt.block_on(find(&root));
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for p in &found.problems {
        let _ = writeln!(err, "kitchen-driver: WARN {p}");
    }
    match args.command {
        CacheCommand::List => {
            let _ = out.write_all(render_list(&found.images).as_bytes());
            Ok(exit::SUCCESS)
        }
        CacheCommand::Clear(c) => {
            let cutoff = c
                .older_than
                .map(|days| chrono::Utc::now().timestamp() - (days as i64) * 86_400);
            let mut failed = Vec::new();
            let mut removed = 0;
            for image in &found.images {
                if cutoff.is_some_and(|t| image.last_used >= t) {
                    continue;
                }
                let result = rt.block_on(async {
                    match image.runtime {
                        "lxd" => {
                            let client = lxd_client::Client::connect_local()
                                .await
                                .map_err(|e| e.to_string())?;
                            remove_lxd_cached(&client, image)
                                .await
                                .map_err(|e| e.to_string())
                        }
                        _ => {
                            let docker = bollard::Docker::connect_with_defaults()
                                .map_err(|e| e.to_string())?
                                .negotiate_version()
                                .await
                                .map_err(|e| e.to_string())?;
                            remove_docker_cached(&docker, image)
                                .await
                                .map_err(|e| e.to_string())
                        }
                    }
                });
                match result {
                    Ok(()) => {
                        removed += 1;
                        let _ = writeln!(out, "Removed {} image {}", image.runtime, image.name);
                    }
                    Err(e) => failed.push(format!(
                        ">>>>>>     {} image {}: {e} (a container still created from it? destroy it first)",
                        image.runtime, image.name
                    )),
                }
            }
            let _ = writeln!(out, "{removed} cached image(s) removed");
            if failed.is_empty() {
                Ok(exit::SUCCESS)
            } else {
                Err(Error::ActionsFailed {
                    summary: format!(
                        "{} cached image(s) could not be removed.\n{}",
                        failed.len(),
                        failed.join("\n")
                    ),
                })
            }
        }
    }
}
