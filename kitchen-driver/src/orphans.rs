//! Orphans: what this checkout created in Docker or LXD that no state file knows
//! (`kitchen-driver destroy --orphans`, and the note `list` prints).
//!
//! Everything the drivers create carries the checkout's owner mark
//! ([`naming::OWNER_LABEL`] on Docker containers and built images, [`naming::LXD_OWNER_KEY`]
//! on LXD instances, each holding `kitchen_root`), and containers also the instance name. A
//! resource with this checkout's mark is an orphan when:
//! - a container's instance is no longer in kitchen.yml (renamed or removed), or its state file
//!   does not name it (the state was deleted, or a run was killed before it saved);
//! - a `kitchen-driver-build:*` image is named by no state file (after `destroy`, or when the
//!   `dockerfile` changed).
//!
//! A container whose instance's state file cannot be read is never an orphan (nothing is
//! removed on a guess), nor one whose instance is locked by a running process (it may be
//! creating it right now): [`remove`] takes each instance's lock and looks again first.
//!
//! The daemons looked on are the local ones (the default Docker engine and LXD's unix socket)
//! and every engine or server an instance of kitchen.yml names (`docker_host_url`, `remote`,
//! `remote_url` and their environment variables, resolved as the drivers resolve them). Two
//! addresses of one daemon (its socket and its TLS port) are asked once.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptions, ListImagesOptions, RemoveContainerOptions, RemoveImageOptions,
};

use crate::config::Project;
use crate::driver::docker::{self as docker_driver, Endpoint};
use crate::driver::lxd_remote::{self, Server};
use crate::driver::naming;
use crate::error::{Error, Result};
use crate::state::{State, StateFile, keys};

/// What kind of resource an orphan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrphanKind {
    /// A Docker container.
    DockerContainer,
    /// An image the Docker driver built (`kitchen-driver-build:<hash>`).
    DockerImage,
    /// An LXD instance.
    LxdInstance,
}

/// One resource of this checkout that no state file knows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Orphan {
    /// What it is.
    pub kind: OrphanKind,
    /// How to name it to its runtime: a Docker container id, an image tag, an LXD name.
    pub id: String,
    /// How to show it: the container's name, the image tag, the LXD name.
    pub name: String,
    /// The kitchen instance it was created for, when it says.
    pub instance: Option<String>,
    /// The LXD project it lives in (LXD instances only).
    pub lxd_project: Option<String>,
    /// Why it is an orphan.
    pub why: String,
    /// The daemon it is on, as messages name it (`the local LXD daemon`, `the Docker engine
    /// at tcp://build-host:2376`).
    pub daemon: String,
    /// How to reach that daemon again to remove it.
    at: Daemon,
}

/// A daemon orphans are looked for on.
#[derive(Debug, Clone, PartialEq)]
enum Daemon {
    Docker(Endpoint),
    Lxd(Server),
}

impl Daemon {
    fn describe(&self) -> String {
        match self {
            Daemon::Docker(e) => format!("the Docker engine at {}", e.url()),
            Daemon::Lxd(s) => s.describe(),
        }
    }
}

impl std::fmt::Display for Orphan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            OrphanKind::DockerContainer => "Docker container",
            OrphanKind::DockerImage => "Docker image",
            OrphanKind::LxdInstance => "LXD instance",
        };
        write!(f, "{what} {} on {} ({})", self.name, self.daemon, self.why)
    }
}

/// What [`find`] found, and the runtimes it could not ask.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Survey {
    /// The orphans, containers before images (the order they can be removed in).
    pub orphans: Vec<Orphan>,
    /// One line per runtime that could not be asked (and that kitchen.yml uses).
    pub unreachable: Vec<String>,
}

/// What the state files of a checkout name: per instance (file stem), its state, or `None`
/// when the file cannot be read.
#[derive(Debug, Default)]
struct Known {
    states: BTreeMap<String, Option<State>>,
}

impl Known {
    fn read(kitchen_root: &Path) -> Self {
        let mut states = BTreeMap::new();
        let dir = kitchen_root.join(".kitchen");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(instance) = name.strip_suffix(".yml").filter(|s| !s.starts_with('.'))
                else {
                    continue;
                };
                let state = StateFile::new(kitchen_root, instance).load().ok();
                states.insert(instance.to_string(), state);
            }
        }
        Self { states }
    }

    /// Whether the state file of an instance in kitchen.yml names an image tag (a removed
    /// instance's containers are orphans, so what it names does not count).
    fn names_image(&self, project: &Project, tag: &str) -> bool {
        self.states.iter().any(|(instance, state)| {
            project.instance(instance).is_some()
                && state
                    .as_ref()
                    .is_some_and(|s| s.get_str(keys::IMAGE) == Some(tag))
        })
    }
}

/// Why a container of `instance` (per its owner mark) named `name`/`id` is an orphan, or
/// `None` when it is not (pure: unit-tested).
fn container_orphaned(
    project: &Project,
    known: &Known,
    instance: Option<&str>,
    id: Option<&str>,
    name: &str,
) -> Option<String> {
    let Some(instance) = instance else {
        return Some("created by this checkout for no named instance".into());
    };
    if project.instance(instance).is_none() {
        return Some(format!("instance {instance} is no longer in kitchen.yml"));
    }
    match known.states.get(instance) {
        None => Some(format!("instance {instance} has no state file")),
        // An unreadable state file: leave its instance's resources alone.
        Some(None) => None,
        Some(Some(state)) => {
            let by_id = id.is_some() && state.get_str(keys::CONTAINER_ID) == id;
            let by_name = state.get_str(keys::CONTAINER_NAME) == Some(name);
            if by_id || by_name {
                None
            } else {
                Some(format!(
                    "the state of instance {instance} names another container"
                ))
            }
        }
    }
}

/// The LXD projects to look in: `default` and every `project:` an lxd instance names.
fn lxd_projects(project: &Project) -> Vec<String> {
    let mut out = vec!["default".to_string()];
    for i in &project.instances {
        if let Some(p) = i.driver.get("project").and_then(|v| v.as_str())
            && !out.iter().any(|o| o == p)
        {
            out.push(p.to_string());
        }
    }
    out
}

/// The daemons to look on: the local ones, then each one an instance names, with whether
/// an instance of kitchen.yml uses it; and one line per instance whose daemon settings are
/// wrong (the driver would refuse them too).
fn daemons(project: &Project) -> (Vec<(Daemon, bool)>, Vec<String>) {
    let mut out: Vec<(Daemon, bool)> = Vec::new();
    let mut bad = Vec::new();
    let mut add = |daemon: Daemon, used: bool| match out.iter_mut().find(|(d, _)| *d == daemon) {
        Some((_, u)) => *u |= used,
        None => out.push((daemon, used)),
    };
    // The local engine as the environment names it (DOCKER_HOST...); a broken environment is
    // reported below only if an instance uses Docker.
    if let Ok(e) = docker_driver::engine_of(&Default::default()) {
        add(Daemon::Docker(e), false);
    }
    add(Daemon::Lxd(Server::Local), false);
    for i in &project.instances {
        let daemon = match i.driver_name().trim_end_matches("_api") {
            "docker" => docker_driver::engine_of(&i.driver).map(Daemon::Docker),
            "lxd" => lxd_remote::server_of(&i.driver, &project.kitchen_root).map(Daemon::Lxd),
            _ => continue,
        };
        match daemon {
            Ok(d) => add(d, true),
            Err(message) => bad.push(format!("{}: {message}", i.name)),
        }
    }
    // A daemon reached at two addresses is named as kitchen.yml names it.
    out.sort_by_key(|(_, used)| !used);
    (out, bad)
}

/// How long one daemon may take to answer: `list` must not hang on a stuck daemon.
const SURVEY_TIMEOUT: Duration = Duration::from_secs(30);

/// Finds this checkout's orphans on every daemon kitchen.yml uses and the local ones. A
/// daemon that cannot be reached is skipped (and named in [`Survey::unreachable`] when an
/// instance uses it).
pub async fn find(project: &Project) -> Survey {
    let known = Known::read(&project.kitchen_root);
    let (daemons, bad) = daemons(project);
    let mut survey = Survey {
        unreachable: bad,
        ..Survey::default()
    };
    let answers =
        futures::future::join_all(daemons.iter().map(|(daemon, _)| {
            tokio::time::timeout(SURVEY_TIMEOUT, look_on(daemon, project, &known))
        }))
        .await;
    let mut seen = Vec::new();
    let mut images = Vec::new();
    for ((daemon, used), answer) in daemons.iter().zip(answers) {
        match answer {
            // One daemon reached at two addresses: ask it once.
            Ok(Ok((identity, _))) if seen.contains(&identity) => {}
            Ok(Ok((identity, found))) => {
                seen.push(identity);
                for o in found {
                    if o.kind == OrphanKind::DockerImage {
                        images.push(o);
                    } else {
                        survey.orphans.push(o);
                    }
                }
            }
            Ok(Err(e)) if *used => survey.unreachable.push(e),
            Err(_) if *used => survey.unreachable.push(format!(
                "{}: no answer within {}s",
                daemon.describe(),
                SURVEY_TIMEOUT.as_secs()
            )),
            _ => {}
        }
    }
    survey.orphans.extend(images);
    survey
}

/// The orphans on one daemon, with the daemon's identity (its engine ID or certificate
/// fingerprint, else its address).
async fn look_on(
    daemon: &Daemon,
    project: &Project,
    known: &Known,
) -> std::result::Result<(String, Vec<Orphan>), String> {
    match daemon {
        Daemon::Docker(endpoint) => find_docker(endpoint, project, known).await,
        Daemon::Lxd(server) => find_lxd(server, project, known).await,
    }
}

async fn find_docker(
    endpoint: &Endpoint,
    project: &Project,
    known: &Known,
) -> std::result::Result<(String, Vec<Orphan>), String> {
    let daemon = Daemon::Docker(endpoint.clone());
    let docker = docker_driver::connect(endpoint)
        .await
        .map_err(|e| e.to_string())?;
    let identity = match docker.info().await {
        Ok(info) => info.id.filter(|id| !id.is_empty()),
        Err(_) => None,
    }
    .map_or_else(|| endpoint.url().to_string(), |id| format!("docker {id}"));
    let failed = |what: &str, e: bollard::errors::Error| {
        format!("{}: listing {what}: {e}", daemon.describe())
    };
    let root = project.kitchen_root.to_string_lossy().into_owned();
    let owned = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={root}", naming::OWNER_LABEL)],
    )]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(owned.clone()),
            ..Default::default()
        }))
        .await
        .map_err(|e| failed("containers", e))?;
    let mut out = Vec::new();
    for c in containers {
        let Some(id) = c.id else { continue };
        let name = c
            .names
            .unwrap_or_default()
            .first()
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_else(|| id.clone());
        let instance = c
            .labels
            .unwrap_or_default()
            .get(naming::INSTANCE_LABEL)
            .cloned();
        if let Some(why) = container_orphaned(project, known, instance.as_deref(), Some(&id), &name)
        {
            out.push(Orphan {
                kind: OrphanKind::DockerContainer,
                id,
                name,
                instance,
                lxd_project: None,
                why,
                daemon: daemon.describe(),
                at: daemon.clone(),
            });
        }
    }
    let mut filters = owned;
    filters.insert(
        "reference".to_string(),
        vec![naming::BUILD_IMAGE_REPO.to_string()],
    );
    let images = docker
        .list_images(Some(ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| failed("images", e))?;
    for image in images {
        for tag in image.repo_tags {
            if tag.starts_with(&format!("{}:", naming::BUILD_IMAGE_REPO))
                && !known.names_image(project, &tag)
            {
                out.push(Orphan {
                    kind: OrphanKind::DockerImage,
                    id: tag.clone(),
                    name: tag,
                    instance: None,
                    lxd_project: None,
                    why: "built by this checkout; no state file uses it".into(),
                    daemon: daemon.describe(),
                    at: daemon.clone(),
                });
            }
        }
    }
    Ok((identity, out))
}

async fn find_lxd(
    server: &Server,
    project: &Project,
    known: &Known,
) -> std::result::Result<(String, Vec<Orphan>), String> {
    let daemon = Daemon::Lxd(server.clone());
    let client = lxd_remote::connect(server, "")
        .await
        .map_err(|e| format!("{}: {e}", daemon.describe()))?;
    let identity = match client.server().await {
        Ok(s) => s.environment.certificate_fingerprint,
        Err(_) => None,
    }
    .map_or_else(|| daemon.describe(), |f| format!("lxd {f}"));
    let root = project.kitchen_root.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for lxd_project in lxd_projects(project) {
        let list = match client.project(lxd_project.clone()).instances().list().await {
            Ok(list) => list,
            // A project kitchen.yml names may not exist (yet): nothing of ours is in it.
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                return Err(format!(
                    "{}: listing instances of project {lxd_project}: {e}",
                    daemon.describe()
                ));
            }
        };
        for i in list {
            if i.config.get(naming::LXD_OWNER_KEY) != Some(&root) {
                continue;
            }
            let instance = i.config.get(naming::LXD_INSTANCE_KEY).cloned();
            if let Some(why) =
                container_orphaned(project, known, instance.as_deref(), None, &i.name)
            {
                out.push(Orphan {
                    kind: OrphanKind::LxdInstance,
                    id: i.name.clone(),
                    name: i.name,
                    instance,
                    lxd_project: Some(lxd_project.clone()),
                    why,
                    daemon: daemon.describe(),
                    at: daemon.clone(),
                });
            }
        }
    }
    Ok((identity, out))
}

/// What [`remove`] did with one orphan.
#[derive(Debug)]
#[non_exhaustive]
pub enum Removal {
    /// Removed.
    Removed(Orphan),
    /// Left, with the reason (its instance is locked, it is in use, a state names it now).
    Kept(Orphan, String),
}

/// Removes `orphans` (as [`find`] returned them), each under its instance's lock and after
/// looking at its state again; an orphan of an instance no longer in kitchen.yml takes its
/// stale state file along.
///
/// # Errors
/// The first runtime error; what was removed before it stays removed.
pub async fn remove(project: &Project, orphans: Vec<Orphan>) -> Result<Vec<Removal>> {
    let mut done = Vec::new();
    for orphan in orphans {
        let lock = match &orphan.instance {
            Some(instance) => match StateFile::new(&project.kitchen_root, instance).lock() {
                Ok(lock) => Some(lock),
                Err(Error::Locked { .. }) => {
                    done.push(Removal::Kept(
                        orphan,
                        "its instance is locked by a running kitchen-driver".into(),
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        // Look again, under the lock: a run may have saved a state naming it meanwhile.
        let known = Known::read(&project.kitchen_root);
        let still = match orphan.kind {
            OrphanKind::DockerImage => !known.names_image(project, &orphan.id),
            OrphanKind::DockerContainer => container_orphaned(
                project,
                &known,
                orphan.instance.as_deref(),
                Some(&orphan.id),
                &orphan.name,
            )
            .is_some(),
            OrphanKind::LxdInstance => container_orphaned(
                project,
                &known,
                orphan.instance.as_deref(),
                None,
                &orphan.name,
            )
            .is_some(),
        };
        if !still {
            done.push(Removal::Kept(orphan, "a state file names it now".into()));
            continue;
        }
        let kept = match orphan.kind {
            OrphanKind::DockerContainer => remove_docker_container(&orphan).await?,
            OrphanKind::DockerImage => remove_docker_image(&orphan).await?,
            OrphanKind::LxdInstance => remove_lxd_instance(&orphan).await?,
        };
        if let Some(reason) = kept {
            done.push(Removal::Kept(orphan, reason));
            continue;
        }
        // The stale state of an instance no longer in kitchen.yml goes with its container.
        if let (Some(instance), Some(lock)) = (&orphan.instance, lock)
            && project.instance(instance).is_none()
        {
            StateFile::new(&project.kitchen_root, instance).delete()?;
            lock.remove();
        }
        done.push(Removal::Removed(orphan));
    }
    Ok(done)
}

fn docker_error(orphan: &Orphan, action: &str, source: bollard::errors::Error) -> Error {
    Error::Docker {
        action: format!("{action} {}", orphan.name),
        instance: orphan.instance.clone().unwrap_or_default(),
        source,
    }
}

async fn connect_docker(orphan: &Orphan) -> Result<Docker> {
    match &orphan.at {
        Daemon::Docker(endpoint) => docker_driver::connect(endpoint).await,
        Daemon::Lxd(_) => unreachable!("a Docker orphan is found on a Docker engine"),
    }
}

async fn remove_docker_container(orphan: &Orphan) -> Result<Option<String>> {
    let docker = connect_docker(orphan).await?;
    let opts = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(&orphan.id, Some(opts)).await {
        Ok(()) => Ok(None),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => Ok(None),
        Err(e) => Err(docker_error(orphan, "removing container", e)),
    }
}

async fn remove_docker_image(orphan: &Orphan) -> Result<Option<String>> {
    let docker = connect_docker(orphan).await?;
    let opts = RemoveImageOptions {
        force: false,
        noprune: false,
        ..Default::default()
    };
    match docker.remove_image(&orphan.id, Some(opts), None).await {
        Ok(_) => Ok(None),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        // Used by a container (of another checkout, or not kitchen-driver's): keep it.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message,
        }) => Ok(Some(format!("Docker refuses: {message}"))),
        Err(e) => Err(docker_error(orphan, "removing image", e)),
    }
}

async fn remove_lxd_instance(orphan: &Orphan) -> Result<Option<String>> {
    let lxd_error = |action: &str, source: lxd_client::Error| Error::Lxd {
        action: format!("{action} {}", orphan.name),
        instance: orphan.instance.clone().unwrap_or_default(),
        source: Box::new(source),
    };
    let Daemon::Lxd(server) = &orphan.at else {
        unreachable!("an LXD orphan is found on an LXD server")
    };
    let client =
        lxd_remote::connect(server, orphan.instance.as_deref().unwrap_or_default()).await?;
    let client = match &orphan.lxd_project {
        Some(p) => client.project(p.clone()),
        None => client,
    };
    let instances = client.instances();
    if let Ok(op) = instances.stop(&orphan.id).force().await {
        let _ = op.wait_for(Duration::from_secs(300)).await;
    }
    let result = match instances.delete(&orphan.id).await {
        Ok(op) => op.wait_for(Duration::from_secs(300)).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(None),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(lxd_error("deleting", e)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{LoadOptions, load_str};

    fn project() -> Project {
        let yaml = "driver: docker\nplatforms: [{name: busybox}]\nsuites: [{name: default}]\n";
        load_str(yaml, &LoadOptions::new("/proj".into(), BTreeMap::new())).unwrap()
    }

    fn state(pairs: &[(&str, &str)]) -> Option<State> {
        let mut s = State::new();
        for (k, v) in pairs {
            s.set(*k, *v);
        }
        Some(s)
    }

    #[test]
    fn a_container_is_an_orphan_when_no_state_of_a_current_instance_names_it() {
        let p = project();
        let mut known = Known::default();
        let orphaned = |known: &Known, instance, id| {
            container_orphaned(&p, known, instance, id, "kitchen-x-default-busybox")
        };
        // Removed or renamed instances, and no instance at all.
        let why = orphaned(&known, Some("old-busybox"), Some("abc")).unwrap();
        assert!(why.contains("no longer in kitchen.yml"), "{why}");
        assert!(orphaned(&known, None, Some("abc")).is_some());
        // No state file; a state naming another container.
        assert!(orphaned(&known, Some("default-busybox"), Some("abc")).is_some());
        known.states.insert(
            "default-busybox".into(),
            state(&[(keys::CONTAINER_ID, "other")]),
        );
        assert!(orphaned(&known, Some("default-busybox"), Some("abc")).is_some());
        // Named by id, or by name alone (a run killed before the id was saved).
        known.states.insert(
            "default-busybox".into(),
            state(&[(keys::CONTAINER_ID, "abc")]),
        );
        assert_eq!(orphaned(&known, Some("default-busybox"), Some("abc")), None);
        known.states.insert(
            "default-busybox".into(),
            state(&[(keys::CONTAINER_NAME, "kitchen-x-default-busybox")]),
        );
        assert_eq!(orphaned(&known, Some("default-busybox"), None), None);
        // An unreadable state file: never a guess.
        known.states.insert("default-busybox".into(), None);
        assert_eq!(orphaned(&known, Some("default-busybox"), Some("abc")), None);
    }

    #[test]
    fn images_are_known_by_any_state_naming_them() {
        let p = project();
        let mut known = Known::default();
        let image = |tag| state(&[(keys::IMAGE, tag)]);
        known
            .states
            .insert("default-busybox".into(), image("kitchen-driver-build:1"));
        known
            .states
            .insert("gone-busybox".into(), image("kitchen-driver-build:2"));
        known.states.insert("broken".into(), None);
        assert!(known.names_image(&p, "kitchen-driver-build:1"));
        // Named only by the state of an instance no longer in kitchen.yml.
        assert!(!known.names_image(&p, "kitchen-driver-build:2"));
        assert!(!known.names_image(&p, "kitchen-driver-build:3"));
    }

    #[test]
    fn state_files_are_read_from_the_kitchen_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sf = StateFile::new(dir.path(), "a-b");
        let mut st = State::new();
        st.set(keys::CONTAINER_ID, "abc");
        sf.save(&st).unwrap();
        std::fs::write(dir.path().join(".kitchen/bad.yml"), "- [").unwrap();
        std::fs::write(dir.path().join(".kitchen/.x.yml.tmp-1"), "").unwrap();
        let known = Known::read(dir.path());
        assert_eq!(known.states.len(), 2, "{known:?}");
        assert_eq!(known.states["a-b"], Some(st));
        assert_eq!(known.states["bad"], None);
    }
}
