//! The Docker driver's `driver:` block (kitchen-docker's keys) and the container create body
//! built from it (pure: unit-tested).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum, PortBinding};
use serde::Deserialize;

use super::{DockerDriver, KEEP_ALIVE, LABEL_INSTANCE, LABEL_PROJECT};
use crate::driver::naming::sanitize_hostname;

/// A string or a list of strings (kitchen-docker accepts both for most list keys).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A list of `K=V` strings or a map.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(untagged)]
pub(super) enum EnvSpec {
    #[default]
    None,
    One(String),
    List(Vec<String>),
    Map(BTreeMap<String, serde_json::Value>),
}

impl EnvSpec {
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            EnvSpec::None => Vec::new(),
            EnvSpec::One(s) => vec![s],
            EnvSpec::List(v) => v,
            EnvSpec::Map(m) => m
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect(),
        }
    }
}

/// A string or a number (`memory: 512m` or `memory: 536870912`, `forward: 80`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub(super) enum StrOrNum {
    Str(String),
    Num(serde_json::Number),
}

impl StrOrNum {
    pub(super) fn text(&self) -> String {
        match self {
            StrOrNum::Str(s) => s.clone(),
            StrOrNum::Num(n) => n.to_string(),
        }
    }
}

/// `tmpfs` as a list of `PATH[:OPTIONS]` or a map PATH -> OPTIONS.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(untagged)]
pub(super) enum TmpfsSpec {
    #[default]
    None,
    One(String),
    List(Vec<String>),
    Map(BTreeMap<String, String>),
}

/// The typed `driver:` block.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub(super) struct DockerConfig {
    pub(super) image: Option<String>,
    pub(super) dockerfile: Option<String>,
    pub(super) build_args: BTreeMap<String, StrOrNum>,
    pub(super) privileged: bool,
    pub(super) cap_add: OneOrMany,
    pub(super) cap_drop: OneOrMany,
    pub(super) volumes: OneOrMany,
    pub(super) tmpfs: TmpfsSpec,
    pub(super) env: EnvSpec,
    pub(super) hostname: Option<String>,
    pub(super) run_command: Option<String>,
    pub(super) memory: Option<StrOrNum>,
    #[serde(deserialize_with = "crate::config::numbers::cpus")]
    pub(super) cpus: Option<f64>,
    pub(super) user: Option<String>,
    pub(super) forward: Vec<StrOrNum>,
    pub(super) network_mode: Option<String>,
    pub(super) labels: BTreeMap<String, StrOrNum>,
    pub(super) ready_timeout: Option<u64>,
    /// Each step's time limit in seconds: read by the runner (`lifecycle::step_timeout_of`),
    /// named here so it is a known key.
    #[allow(dead_code)]
    pub(super) step_timeout: Option<f64>,
    /// The engine's address (kitchen-dokken's key; `DOCKER_HOST` otherwise).
    pub(super) docker_host_url: Option<String>,
    /// TLS with client certificates for a tcp:// engine (`DOCKER_TLS_VERIFY` otherwise).
    pub(super) tls_verify: Option<bool>,
    /// The directory with `ca.pem`, `cert.pem` and `key.pem` (`DOCKER_CERT_PATH` otherwise).
    pub(super) cert_path: Option<String>,
    /// Read by [`crate::converge_cache::enabled`] from the raw block; declared so it is a
    /// known key.
    #[allow(dead_code)]
    pub(super) converge_cache: bool,
    /// kitchen-docker's name for `volumes` (folded into it by `kitchen_docker::translate`).
    pub(super) volume: OneOrMany,
    /// kitchen-docker's `docker run` options (folded into the keys above).
    pub(super) run_options: super::kitchen_docker::RunOptions,
    /// kitchen-docker's `RUN` lines for a derived image.
    pub(super) provision_command: OneOrMany,
}

/// One published port: `[host_ip:][host_port:]container_port[/proto]`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Forward {
    pub(super) host_ip: Option<String>,
    pub(super) host_port: Option<String>,
    pub(super) container: String,
}

pub(super) fn parse_forward(spec: &str) -> Option<Forward> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (spec, "tcp"),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let (host_ip, host_port, container) = match parts.as_slice() {
        [c] => (None, None, *c),
        [h, c] => (None, Some(*h), *c),
        [ip, h, c] => (Some(*ip), Some(*h), *c),
        _ => return None,
    };
    if container.parse::<u16>().is_err()
        || host_port.is_some_and(|h| !h.is_empty() && h.parse::<u16>().is_err())
    {
        return None;
    }
    Some(Forward {
        host_ip: host_ip.map(str::to_string),
        host_port: host_port.filter(|h| !h.is_empty()).map(str::to_string),
        container: format!("{container}/{proto}"),
    })
}

/// `512m`, `1g`, `1024k`, `123` (bytes) -> bytes.
pub(super) fn parse_memory(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<i64>().ok().map(|n| n * mult)
}

/// Whether `run_command` boots an init system that needs the cgroup set-up.
pub(super) fn runs_init(run_command: &str) -> bool {
    let first = run_command.split_whitespace().next().unwrap_or("");
    first == "/sbin/init" || first.ends_with("/systemd") || first == "/usr/sbin/init"
}

pub(super) fn split_tmpfs(s: &str) -> (String, String) {
    match s.split_once(':') {
        Some((p, o)) => (p.to_string(), o.to_string()),
        None => (s.to_string(), String::new()),
    }
}

impl DockerDriver {
    /// Builds the container's create body (pure: unit-tested).
    pub(super) fn create_body(
        &self,
        ctx_root: &Path,
        instance: &str,
        image: &str,
    ) -> ContainerCreateBody {
        let c = &self.config;
        let run_command = c.run_command.clone();
        let init = run_command.as_deref().is_some_and(runs_init);
        let cmd = match &run_command {
            Some(rc) => vec!["sh".to_string(), "-c".to_string(), format!("exec {rc}")],
            None => vec!["sh".into(), "-c".into(), KEEP_ALIVE.into()],
        };
        let mut cap_add = c.cap_add.clone().into_vec();
        let mut binds = c.volumes.clone().into_vec();
        let mut tmpfs: HashMap<String, String> = match c.tmpfs.clone() {
            TmpfsSpec::None => HashMap::new(),
            TmpfsSpec::One(s) => [split_tmpfs(&s)].into_iter().collect(),
            TmpfsSpec::List(v) => v.iter().map(|s| split_tmpfs(s)).collect(),
            TmpfsSpec::Map(m) => m.into_iter().collect(),
        };
        let mut cgroupns = None;
        if init && !c.privileged {
            // What systemd as PID 1 needs on this kind of host (runtimes-here.md).
            if !cap_add
                .iter()
                .any(|x| x == "SYS_ADMIN" || x == "CAP_SYS_ADMIN")
            {
                cap_add.push("SYS_ADMIN".into());
            }
            if !binds.iter().any(|b| b.starts_with("/sys/fs/cgroup:")) {
                binds.push("/sys/fs/cgroup:/sys/fs/cgroup:rw".into());
            }
            tmpfs.entry("/run".into()).or_default();
            tmpfs.entry("/run/lock".into()).or_default();
            cgroupns = Some(HostConfigCgroupnsModeEnum::HOST);
        }
        let mut labels: HashMap<String, String> = c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.text()))
            .collect();
        labels.insert(
            LABEL_PROJECT.into(),
            ctx_root.to_string_lossy().into_owned(),
        );
        labels.insert(LABEL_INSTANCE.into(), instance.to_string());

        let forwards: Vec<Forward> = c
            .forward
            .iter()
            .filter_map(|f| parse_forward(&f.text()))
            .collect();
        let mut port_bindings = HashMap::new();
        for f in &forwards {
            port_bindings.insert(
                f.container.clone(),
                Some(vec![PortBinding {
                    host_ip: f.host_ip.clone(),
                    host_port: Some(f.host_port.clone().unwrap_or_default()),
                }]),
            );
        }
        let host_config = HostConfig {
            privileged: Some(c.privileged),
            cap_add: (!cap_add.is_empty()).then_some(cap_add),
            cap_drop: Some(c.cap_drop.clone().into_vec()).filter(|v| !v.is_empty()),
            binds: (!binds.is_empty()).then_some(binds),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            cgroupns_mode: cgroupns,
            memory: c.memory.as_ref().and_then(|m| parse_memory(&m.text())),
            nano_cpus: c.cpus.map(|x| (x * 1e9) as i64),
            network_mode: Some(c.network_mode.clone().unwrap_or_else(|| "none".into())),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(cmd),
            entrypoint: Some(vec![]),
            env: Some(c.env.clone().into_vec()).filter(|v| !v.is_empty()),
            hostname: Some(
                c.hostname
                    .clone()
                    .unwrap_or_else(|| sanitize_hostname(instance)),
            ),
            user: c.user.clone(),
            labels: Some(labels),
            exposed_ports: (!forwards.is_empty())
                .then(|| forwards.iter().map(|f| f.container.clone()).collect()),
            stop_signal: init.then(|| "SIGRTMIN+3".to_string()),
            host_config: Some(host_config),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use serde_json::json;

    fn driver(v: serde_json::Value) -> Result<DockerDriver> {
        let serde_json::Value::Object(m) = v else {
            panic!("object")
        };
        DockerDriver::from_config("default-busybox", &m)
    }

    #[test]
    fn default_body_keeps_alive_without_network_and_labels_ownership() {
        let d = driver(
            json!({"name": "docker", "image": "kitchen/busybox:latest", "kitchen_root": "/x"}),
        )
        .unwrap();
        let b = d.create_body(
            Path::new("/proj"),
            "default-busybox",
            "kitchen/busybox:latest",
        );
        assert_eq!(b.cmd.as_ref().unwrap()[2], KEEP_ALIVE);
        let hc = b.host_config.unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("none"));
        assert_eq!(hc.privileged, Some(false));
        let labels = b.labels.unwrap();
        assert_eq!(labels[LABEL_PROJECT], "/proj");
        assert_eq!(labels[LABEL_INSTANCE], "default-busybox");
        assert_eq!(b.hostname.as_deref(), Some("default-busybox"));
    }

    #[test]
    fn init_run_command_gets_the_systemd_options() {
        let d = driver(json!({"image": "kitchen/debian-12:latest", "run_command": "/sbin/init", "cap_add": "NET_ADMIN", "tmpfs": ["/tmp:size=10m"]})).unwrap();
        let b = d.create_body(Path::new("/p"), "i", "img");
        assert_eq!(b.cmd.as_ref().unwrap()[2], "exec /sbin/init");
        assert_eq!(b.stop_signal.as_deref(), Some("SIGRTMIN+3"));
        let hc = b.host_config.unwrap();
        assert_eq!(hc.cap_add.unwrap(), ["NET_ADMIN", "SYS_ADMIN"]);
        assert_eq!(hc.binds.unwrap(), ["/sys/fs/cgroup:/sys/fs/cgroup:rw"]);
        assert_eq!(hc.cgroupns_mode, Some(HostConfigCgroupnsModeEnum::HOST));
        let t = hc.tmpfs.unwrap();
        assert_eq!(t["/tmp"], "size=10m");
        assert!(t.contains_key("/run") && t.contains_key("/run/lock"));
    }

    #[test]
    fn keys_map_to_the_api() {
        let d = driver(json!({
            "image": "i", "env": {"A": "1", "B": 2}, "memory": "512m", "cpus": 1.5,
            "volumes": ["/h:/c:ro"], "user": "nobody", "hostname": "web",
            "network_mode": "bridge", "forward": ["8080:80", 443, "127.0.0.1::53/udp"],
            "labels": {"team": "x"}, "cap_drop": ["NET_RAW"], "privileged": true
        }))
        .unwrap();
        let b = d.create_body(Path::new("/p"), "i", "i");
        assert_eq!(b.env.unwrap(), ["A=1", "B=2"]);
        assert_eq!(b.user.as_deref(), Some("nobody"));
        assert_eq!(b.hostname.as_deref(), Some("web"));
        assert_eq!(b.labels.unwrap()["team"], "x");
        let mut exposed = b.exposed_ports.unwrap();
        exposed.sort();
        assert_eq!(exposed, ["443/tcp", "53/udp", "80/tcp"]);
        let hc = b.host_config.unwrap();
        assert_eq!(hc.memory, Some(512 << 20));
        assert_eq!(hc.nano_cpus, Some(1_500_000_000));
        assert_eq!(hc.binds.unwrap(), ["/h:/c:ro"]);
        assert_eq!(hc.cap_drop.unwrap(), ["NET_RAW"]);
        assert_eq!(hc.privileged, Some(true));
        let pb = hc.port_bindings.unwrap();
        assert_eq!(
            pb["80/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("8080")
        );
        assert_eq!(
            pb["443/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("")
        );
        assert_eq!(
            pb["53/udp"].as_ref().unwrap()[0].host_ip.as_deref(),
            Some("127.0.0.1")
        );
    }

    #[test]
    fn bad_blocks_name_the_key() {
        let e = driver(json!({"name": "docker"})).unwrap_err().to_string();
        assert!(e.contains("`image`"), "{e}");
        let e = driver(json!({"image": "i", "forward": [80]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("network_mode"), "{e}");
        let e = driver(json!({"image": "i", "memory": "lots"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory"), "{e}");
        let e = driver(json!({"image": "i", "privileged": "yes"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("privileged"), "{e}");
    }

    #[test]
    fn sizes_and_forwards() {
        assert_eq!(parse_memory("1g"), Some(1 << 30));
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_forward("x:80"), None);
    }
}
