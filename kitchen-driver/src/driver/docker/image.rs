//! The image a container runs: `image` as found in the local store, or the `dockerfile`
//! built once per content (tagged `kitchen-driver-build:<hash>`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptions;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::build_context::{self, ContextEntry};
use super::config::StrOrNum;
use super::{DockerDriver, is_not_found};
use crate::error::{Error, Result};
use crate::plugin::InstanceContext;
use crate::report::{LineSplitter, OutputSink, OutputStream};

impl DockerDriver {
    /// The image to run: `image`, or the `dockerfile` built (once per content), with
    /// kitchen-docker's `provision_command`s as `RUN` lines of a derived image built on top
    /// (also once per content).
    pub(super) async fn resolve_image(
        &self,
        docker: &Docker,
        ctx: &InstanceContext,
    ) -> Result<String> {
        let base = self.base_image(docker, ctx).await?;
        let commands = self.config.provision_command.clone().into_vec();
        if commands.is_empty() {
            return Ok(base);
        }
        let dir = tempfile::Builder::new()
            .prefix("kitchen-provision-command-")
            .tempdir()
            .map_err(|e| Error::io("creating temporary directory in", std::env::temp_dir(), e))?;
        let dockerfile = dir.path().join("Dockerfile");
        std::fs::write(
            &dockerfile,
            super::kitchen_docker::provision_dockerfile(&base, &commands),
        )
        .map_err(|e| Error::io("writing", &dockerfile, e))?;
        self.build_image(docker, ctx, &dockerfile.to_string_lossy())
            .await
    }

    async fn base_image(&self, docker: &Docker, ctx: &InstanceContext) -> Result<String> {
        let instance = &ctx.instance.name;
        if let Some(dockerfile) = &self.config.dockerfile {
            return self.build_image(docker, ctx, dockerfile).await;
        }
        // from_config guarantees one of image/dockerfile.
        let image = self.config.image.clone().unwrap_or_default();
        match docker.inspect_image(&image).await {
            Ok(_) => Ok(image),
            Err(e) if is_not_found(&e) => Err(Error::MissingImage {
                image: image.clone(),
                instance: instance.clone(),
                hint: format!(
                    "build or import it first (`docker build -t {image} DIR`, `docker load -i IMAGE.tar`, or `docker import ROOTFS.tar {image}`), or give the platform `driver: {{dockerfile: PATH}}` and kitchen-driver builds it"
                ),
            }),
            Err(source) => Err(self.endpoint.docker_error(
                format!("inspecting image {image}"),
                instance.clone(),
                source,
            )),
        }
    }

    async fn build_image(
        &self,
        docker: &Docker,
        ctx: &InstanceContext,
        dockerfile: &str,
    ) -> Result<String> {
        let instance = &ctx.instance.name;
        let path = ctx.kitchen_root.join(dockerfile);
        let context_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| ctx.kitchen_root.clone());
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "Dockerfile".into());
        let build_args: HashMap<String, String> = self
            .config
            .build_args
            .iter()
            .map(|(k, v)| (k.clone(), v.text()))
            .collect();
        let (tar, hash) = context_tar(&context_dir, &file_name, &self.config.build_args)?;
        let tag = format!("kitchen-driver-build:{hash}");
        if docker.inspect_image(&tag).await.is_ok() {
            ctx.output
                .debug(&format!("dockerfile {dockerfile}: cached image {tag}"));
            return Ok(tag);
        }
        ctx.output
            .info(&format!("Building image {tag} from {dockerfile}"));
        let opts = BuildImageOptions {
            dockerfile: file_name,
            t: Some(tag.clone()),
            rm: true,
            forcerm: true,
            buildargs: Some(build_args),
            // The checkout's owner mark: `destroy --orphans` removes the images no state uses.
            labels: Some(HashMap::from([(
                crate::driver::naming::OWNER_LABEL.to_string(),
                ctx.kitchen_root.to_string_lossy().into_owned(),
            )])),
            ..Default::default()
        };
        let mut stream = docker.build_image(opts, None, Some(bollard::body_full(tar.into())));
        let mut splitter = LineSplitter::default();
        let mut last_lines: Vec<String> = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(s) = info.stream {
                        splitter.push(s.as_bytes(), |l| {
                            ctx.output.line(OutputStream::Stdout, l);
                            last_lines.push(l.to_string());
                        });
                    }
                    if let Some(detail) = info.error_detail {
                        return Err(Error::Runtime {
                            instance: instance.clone(),
                            message: format!(
                                "building {dockerfile} failed: {} (if a FROM image is missing, build or import it locally: no registry is reachable)",
                                detail.message.unwrap_or_default()
                            ),
                        });
                    }
                }
                Err(source) => {
                    return Err(self.endpoint.docker_error(
                        format!("building image from {dockerfile}"),
                        instance.clone(),
                        source,
                    ));
                }
            }
        }
        Ok(tag)
    }
}

/// The build context as a tar, and a content hash over it and the build arguments.
fn context_tar(
    dir: &Path,
    dockerfile: &str,
    args: &BTreeMap<String, StrOrNum>,
) -> Result<(Vec<u8>, String)> {
    let files = build_context::collect(dir)?;
    if !files.iter().any(|(rel, _)| rel == dockerfile) {
        return Err(Error::io(
            "reading dockerfile",
            dir.join(dockerfile),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not found (or left out by .dockerignore)",
            ),
        ));
    }
    let mut hasher = Sha256::new();
    let mut tar = tar::Builder::new(Vec::new());
    let archived = |rel: &str| {
        let rel = rel.to_string();
        move |e| Error::io("archiving build context entry", rel, e)
    };
    for (rel, entry) in &files {
        hasher.update(rel.as_bytes());
        hasher.update([0]);
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        match entry {
            ContextEntry::File(path) => {
                let data = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
                hasher.update((data.len() as u64).to_le_bytes());
                hasher.update(&data);
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, rel, &data[..])
                    .map_err(archived(rel))?;
            }
            ContextEntry::Symlink(target) => {
                hasher.update(b"-> ");
                hasher.update(target.to_string_lossy().as_bytes());
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, rel, target)
                    .map_err(archived(rel))?;
            }
        }
    }
    for (k, v) in args {
        hasher.update(format!("ARG {k}={}\0", v.text()).as_bytes());
    }
    let hash: String = hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let tar = tar
        .into_inner()
        .map_err(|e| Error::io("finishing archive", "<memory>", e))?;
    Ok((tar, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_hash_follows_content_and_args() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM kitchen/busybox:latest\n",
        )
        .unwrap();
        let args = BTreeMap::new();
        let (_, h1) = context_tar(dir.path(), "Dockerfile", &args).unwrap();
        let (_, h1b) = context_tar(dir.path(), "Dockerfile", &args).unwrap();
        assert_eq!(h1, h1b);
        let args2 = BTreeMap::from([("V".to_string(), StrOrNum::Str("2".into()))]);
        let (_, h2) = context_tar(dir.path(), "Dockerfile", &args2).unwrap();
        assert_ne!(h1, h2);
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM kitchen/busybox:latest\nRUN true\n",
        )
        .unwrap();
        let (_, h3) = context_tar(dir.path(), "Dockerfile", &args).unwrap();
        assert_ne!(h1, h3);
        assert!(context_tar(dir.path(), "Nope", &args).is_err());
    }
}
