//! The messages of the plugin protocol: what a plugin sends (a [`Request`]) and the JSON lines
//! the binary answers with ([`Message`]). Pure data and validation; no IO.
//!
//! `kitchen-driver/PLUGIN-PROTOCOL.md` documents every message and
//! `kitchen-driver/plugin-protocol.schema.json` is their JSON schema; the integration test
//! `tests/plugin_protocol.rs` checks real outputs against it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cli::exit;
use crate::config::{InstanceConfig, PluginConfig};
use crate::error::Error;
use crate::state::State;

/// The protocol version this binary speaks. A plugin refuses a binary whose `plugin version`
/// answers another number; bump it on any change that an older plugin would misread.
pub const PROTOCOL_VERSION: u32 = 1;

/// The drivers a request may name.
pub const PROTOCOL_DRIVERS: &[&str] = &["lxd", "docker"];

/// The subcommands of `kitchen-driver plugin`, as listed by `plugin version`.
pub const PROTOCOL_COMMANDS: &[&str] = &[
    "version", "create", "destroy", "status", "exec", "upload", "download", "login",
];

/// What a plugin asks for: the JSON object read from stdin (or `--request`).
///
/// Unknown fields are ignored, so a newer plugin can send more than this binary reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct Request {
    /// The protocol version the plugin speaks; must equal [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// `lxd` or `docker`.
    pub driver: String,
    /// The test-kitchen instance name (`default-busybox`): with `kitchen_root`, it names the
    /// container and its ownership labels.
    pub instance: String,
    /// The project directory, absolute (test-kitchen's `config[:kitchen_root]`).
    pub kitchen_root: PathBuf,
    /// The driver's configuration block: the keys of kitchen-driver's `lxd` and `docker`
    /// drivers. Keys they do not know (test-kitchen's own) are ignored.
    #[serde(default)]
    pub config: Map<String, Value>,
    /// The instance's state as test-kitchen keeps it (string keys).
    #[serde(default)]
    pub state: Map<String, Value>,
    /// `exec`: the command line, run with `sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `upload`: host files and directories to copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locals: Vec<PathBuf>,
    /// `upload`: the directory in the instance to copy them into (created if missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// `download`: files and directories in the instance to copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<String>,
    /// `download`: the host directory to copy them into (created if missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<PathBuf>,
}

impl Request {
    /// Parses and checks a request: JSON shape, protocol version, driver name, an absolute
    /// `kitchen_root` and a non-empty instance name.
    ///
    /// # Errors
    /// A [`ProtocolError`] whose message names the field and what to send instead.
    pub fn parse(text: &str) -> Result<Request, ProtocolError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let req: Request = serde_path_to_error::deserialize(de).map_err(|e| {
            ProtocolError::new(
                ErrorCode::BadRequest,
                format!(
                    "the request is not valid (at `{}`): {}",
                    e.path(),
                    e.inner()
                ),
            )
        })?;
        if req.protocol != PROTOCOL_VERSION {
            return Err(ProtocolError::new(
                ErrorCode::ProtocolMismatch,
                format!(
                    "the plugin speaks protocol {} but this kitchen-driver speaks {PROTOCOL_VERSION}; install matching versions of the gem and the binary",
                    req.protocol
                ),
            ));
        }
        if !PROTOCOL_DRIVERS.contains(&req.driver.as_str()) {
            return Err(ProtocolError::new(
                ErrorCode::UnknownDriver,
                format!(
                    "driver `{}` is not one of {}",
                    req.driver,
                    PROTOCOL_DRIVERS.join(", ")
                ),
            ));
        }
        if req.instance.is_empty() {
            return Err(ProtocolError::new(
                ErrorCode::BadRequest,
                "field `instance` is empty; send the test-kitchen instance name",
            ));
        }
        if !req.kitchen_root.is_absolute() {
            return Err(ProtocolError::new(
                ErrorCode::BadRequest,
                format!(
                    "field `kitchen_root` must be an absolute path, not `{}`",
                    req.kitchen_root.display()
                ),
            ));
        }
        Ok(req)
    }

    /// The instance configuration the drivers read: `config` as the `driver` block (its
    /// `name` forced to `driver`), and empty provisioner, verifier and transport blocks.
    pub fn instance_config(&self) -> InstanceConfig {
        let mut driver: PluginConfig = self.config.clone();
        driver.insert("name".into(), Value::String(self.driver.clone()));
        driver.insert(
            "kitchen_root".into(),
            Value::String(self.kitchen_root.to_string_lossy().into_owned()),
        );
        InstanceConfig {
            name: self.instance.clone(),
            suite: String::new(),
            platform: String::new(),
            driver,
            provisioner: PluginConfig::new(),
            verifier: PluginConfig::new(),
            transport: PluginConfig::new(),
            lifecycle: PluginConfig::new(),
            origins: Default::default(),
        }
    }

    /// The request's state as a [`State`].
    pub fn state(&self) -> State {
        let mut state = State::new();
        for (k, v) in &self.state {
            state.set(k.clone(), v.clone());
        }
        state
    }

    /// Checks that `command` (`exec`, `upload`, `download`; others need nothing more) has
    /// the fields it needs, before any driver is built.
    ///
    /// # Errors
    /// [`ErrorCode::BadRequest`] naming the missing field.
    pub fn check_fields(&self, command: &str) -> Result<(), ProtocolError> {
        let missing = match command {
            "exec" if self.command.is_none() => "`command` (a string run with sh -c)",
            "upload" if self.locals.is_empty() => "`locals` (a list of host paths)",
            "upload" if self.remote.is_none() => "`remote` (a directory in the instance)",
            "download" if self.remotes.is_empty() => "`remotes` (a list of paths in the instance)",
            "download" if self.local.is_none() => "`local` (a host directory)",
            _ => return Ok(()),
        };
        Err(ProtocolError::new(
            ErrorCode::BadRequest,
            format!("`plugin {command}` needs the field {missing}"),
        ))
    }
}

/// A state as the JSON object the protocol returns.
pub fn state_json(state: &State) -> Map<String, Value> {
    state
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Which stream an output line came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What `plugin status` found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct Status {
    /// Whether the instance answered a command; `None` when there is no instance to ask.
    pub live: Option<bool>,
    /// `not_created`, `running` or `unreachable`.
    pub state: String,
    /// The container's name, when the state records one.
    pub resource_id: Option<String>,
    /// One line saying what was found.
    pub message: String,
}

/// One line of the binary's answer (a JSON object with a `type`).
///
/// Zero or more `log` and `output` lines come first, while the work runs; the last line is
/// always exactly one `result` or `error`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Message {
    /// A progress line from the driver (`Creating container ...`).
    Log {
        /// The line, without its instance prefix.
        message: String,
    },
    /// One line of a running command's output (`exec`), without its line terminator.
    Output {
        /// `stdout` or `stderr`.
        stream: Stream,
        /// The line.
        data: String,
    },
    /// The command succeeded.
    Result(Outcome),
    /// The command failed.
    Error {
        /// A stable, machine-readable [`ErrorCode`].
        code: ErrorCode,
        /// What happened, where, and what to do.
        message: String,
        /// `create` and `destroy`: the state as it stands after the failure; what was created
        /// is recorded here so that a later `destroy` finds it. Store it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<Map<String, Value>>,
    },
}

/// The payload of a `result` line, by command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "command", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Outcome {
    /// `plugin version`: the handshake.
    Version {
        /// [`PROTOCOL_VERSION`].
        protocol: u32,
        /// The kitchen-driver version.
        version: String,
        /// [`PROTOCOL_DRIVERS`].
        drivers: Vec<String>,
        /// [`PROTOCOL_COMMANDS`].
        commands: Vec<String>,
    },
    /// `plugin create`: the new state to store.
    Create {
        /// The whole state, with the driver's keys added.
        state: Map<String, Value>,
    },
    /// `plugin destroy`: the new state to store.
    Destroy {
        /// The whole state, with the driver's keys removed.
        state: Map<String, Value>,
    },
    /// `plugin status`.
    Status {
        /// What was found.
        status: Status,
    },
    /// `plugin exec`: the command ran to its end.
    Exec {
        /// Its exit code (`-1` when the runtime reported none).
        exit_code: i64,
    },
    /// `plugin upload`: every local path was copied.
    Upload {},
    /// `plugin download`: every remote path was copied.
    Download {},
}

/// The machine-readable kind of an `error` line.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is not valid JSON, lacks a field or has one of the wrong type.
    BadRequest,
    /// The plugin speaks another protocol version.
    ProtocolMismatch,
    /// The request names a driver this binary lacks.
    UnknownDriver,
    /// A driver configuration key is wrong.
    Config,
    /// The state records no instance (`exec`, `upload`, `download` before `create`).
    NotCreated,
    /// The image is not in the runtime's local store.
    MissingImage,
    /// The runtime (LXD, Docker) could not be reached.
    Unreachable,
    /// A command the binary ran in the instance on its own account failed.
    CommandFailed,
    /// A host file could not be read or written.
    Io,
    /// Anything else the runtime refused.
    Runtime,
}

impl ErrorCode {
    /// The code for a driver error.
    pub fn of(e: &Error) -> ErrorCode {
        match e {
            Error::UnknownPlugin { .. } => ErrorCode::UnknownDriver,
            Error::Config { .. } => ErrorCode::Config,
            Error::NotCreated { .. } => ErrorCode::NotCreated,
            Error::MissingImage { .. } => ErrorCode::MissingImage,
            Error::DockerConnect { .. } => ErrorCode::Unreachable,
            Error::CommandFailed { .. } => ErrorCode::CommandFailed,
            Error::Io { .. } => ErrorCode::Io,
            _ => ErrorCode::Runtime,
        }
    }

    /// The exit code of `kitchen-driver plugin` after an error line of this kind: 1 for a
    /// request the plugin got wrong, 20 (test-kitchen's failed action) otherwise.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorCode::BadRequest | ErrorCode::ProtocolMismatch | ErrorCode::UnknownDriver => {
                exit::USAGE
            }
            _ => exit::ACTIONS_FAILED,
        }
    }
}

/// An error to answer with: a code, a message and, for create and destroy, the state.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolError {
    /// The kind.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
    /// The state to store despite the failure.
    pub state: Option<Map<String, Value>>,
}

impl ProtocolError {
    /// An error without state.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            state: None,
        }
    }

    /// The `error` line.
    pub fn message(&self) -> Message {
        Message::Error {
            code: self.code,
            message: self.message.clone(),
            state: self.state.clone(),
        }
    }
}

impl From<Error> for ProtocolError {
    fn from(e: Error) -> Self {
        ProtocolError::new(ErrorCode::of(&e), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(v: Value) -> Result<Request, ProtocolError> {
        Request::parse(&v.to_string())
    }

    fn base() -> Value {
        json!({"protocol": 1, "driver": "lxd", "instance": "default-busybox",
               "kitchen_root": "/srv/proj", "config": {"image": "kitchen/busybox"}})
    }

    #[test]
    fn a_minimal_request_parses_and_unknown_fields_are_ignored() {
        let mut v = base();
        v["from_the_future"] = json!(true);
        let r = request(v).unwrap();
        assert_eq!(r.instance, "default-busybox");
        let inst = r.instance_config();
        assert_eq!(inst.driver_name(), "lxd");
        assert_eq!(inst.driver["kitchen_root"], "/srv/proj");
        assert_eq!(inst.driver["image"], "kitchen/busybox");
    }

    #[test]
    fn the_driver_name_in_config_cannot_override_the_request() {
        let mut v = base();
        v["config"]["name"] = json!("lxd_api");
        assert_eq!(request(v).unwrap().instance_config().driver_name(), "lxd");
    }

    #[test]
    fn bad_requests_name_the_field() {
        let e = request(json!({"protocol": 1})).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("driver"), "{}", e.message);
        let mut v = base();
        v["state"] = json!([1]);
        let e = request(v).unwrap_err();
        assert!(e.message.contains("`state`"), "{}", e.message);
        let e = Request::parse("not json").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
    }

    #[test]
    fn protocol_driver_root_and_instance_are_checked() {
        let mut v = base();
        v["protocol"] = json!(2);
        assert_eq!(request(v).unwrap_err().code, ErrorCode::ProtocolMismatch);
        let mut v = base();
        v["driver"] = json!("vagrant");
        assert_eq!(request(v).unwrap_err().code, ErrorCode::UnknownDriver);
        let mut v = base();
        v["kitchen_root"] = json!("relative/dir");
        assert_eq!(request(v).unwrap_err().code, ErrorCode::BadRequest);
        let mut v = base();
        v["instance"] = json!("");
        assert_eq!(request(v).unwrap_err().code, ErrorCode::BadRequest);
    }

    #[test]
    fn commands_name_the_fields_they_miss() {
        let r = request(base()).unwrap();
        assert!(r.check_fields("create").is_ok());
        let e = r.check_fields("exec").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("`command`"), "{}", e.message);
        assert!(
            r.check_fields("upload")
                .unwrap_err()
                .message
                .contains("`locals`")
        );
        let mut v = base();
        v["locals"] = json!(["/a"]);
        let e = request(v).unwrap().check_fields("upload").unwrap_err();
        assert!(e.message.contains("`remote`"), "{}", e.message);
        assert!(
            r.check_fields("download")
                .unwrap_err()
                .message
                .contains("`remotes`")
        );
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut v = base();
        v["state"] = json!({"last_action": "create", "container_name": "c1", "port": 22});
        let r = request(v).unwrap();
        assert_eq!(state_json(&r.state()), r.state);
    }

    #[test]
    fn messages_serialize_with_their_type_and_command() {
        let m = Message::Result(Outcome::Exec { exit_code: 3 });
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"type": "result", "command": "exec", "exit_code": 3})
        );
        let m = Message::Output {
            stream: Stream::Stderr,
            data: "x".into(),
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"type": "output", "stream": "stderr", "data": "x"})
        );
        let m = ProtocolError::new(ErrorCode::NotCreated, "no").message();
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"type": "error", "code": "not_created", "message": "no"})
        );
        let m = Message::Result(Outcome::Upload {});
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"type": "result", "command": "upload"})
        );
    }

    #[test]
    fn request_errors_exit_1_and_runtime_errors_20() {
        assert_eq!(ErrorCode::BadRequest.exit_code(), 1);
        assert_eq!(ErrorCode::ProtocolMismatch.exit_code(), 1);
        assert_eq!(ErrorCode::Runtime.exit_code(), 20);
        assert_eq!(ErrorCode::NotCreated.exit_code(), 20);
    }
}
