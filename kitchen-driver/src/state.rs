//! Instance state files: `.kitchen/<instance>.yml`, as test-kitchen keeps them.
//!
//! A state file is a YAML mapping of string keys. The lifecycle writes test-kitchen's keys
//! (`last_action`, `last_error`, `last_attempted_action`, ...); drivers add their own
//! (`container_id`, `hostname`, ...). Files are written atomically (a temporary file in the same
//! directory, then a rename), so a crash never leaves a half-written file, and an
//! [`InstanceLock`] keeps two processes from working on one instance at the same time.
//!
//! This is the one reader of state files: the lifecycle, `list` and `diagnose` all load them
//! through [`StateFile::load`], which reads YAML as test-kitchen's Psych does and fails, as
//! test-kitchen's `StateFileLoadError`, with the file, line and column.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::action::Action;
use crate::config::ConfigError;
use crate::error::{Error, Result};

/// The state keys kitchen-driver reads or writes. test-kitchen's own keys come first; the
/// drivers' keys follow (a driver publishes where its instance is through them).
pub mod keys {
    /// The last action that completed (`create` ... `verify`).
    pub const LAST_ACTION: &str = "last_action";
    /// The action started last, whether or not it completed.
    pub const LAST_ATTEMPTED_ACTION: &str = "last_attempted_action";
    /// The Ruby class test-kitchen would record for the last failed action
    /// (`Kitchen::ActionFailed`, ...), null after a success.
    pub const LAST_ERROR: &str = "last_error";
    /// A UUID per instance, kept from its first action until it is destroyed (test-kitchen
    /// 4.1's `instance_session_id`).
    pub const INSTANCE_SESSION_ID: &str = "instance_session_id";
    /// A new UUID per action attempted (test-kitchen 4.1's `last_action_id`).
    pub const LAST_ACTION_ID: &str = "last_action_id";
    /// The UUID of the kitchen-driver run that attempted the last action (test-kitchen 4.1's
    /// `last_kitchen_run_id`; one per process, as `Kitchen.run_id`).
    pub const LAST_KITCHEN_RUN_ID: &str = "last_kitchen_run_id";
    /// The message of the last failed action (kitchen-driver's addition, for `list`).
    pub const LAST_ERROR_MESSAGE: &str = "last_error_message";
    /// Docker: the container id.
    pub const CONTAINER_ID: &str = "container_id";
    /// Docker and LXD: the container (instance) name.
    pub const CONTAINER_NAME: &str = "container_name";
    /// The instance's hostname (test-kitchen's hooks export it as `KITCHEN_INSTANCE_HOSTNAME`).
    pub const HOSTNAME: &str = "hostname";
    /// The image the instance was created from.
    pub const IMAGE: &str = "image";
    /// Docker: the host port published for the first forwarded port.
    pub const PORT: &str = "port";
    /// Docker: every published port (`container port/proto` -> host port).
    pub const FORWARDED_PORTS: &str = "forwarded_ports";
    /// Docker: the address the published ports are reached at (the engine's host when it is
    /// remote, else the address they are bound to, 127.0.0.1 for all addresses).
    pub const FORWARDED_HOST: &str = "forwarded_host";
    /// LXD: the project the instance lives in.
    pub const LXD_PROJECT: &str = "lxd_project";

    /// Every key a driver writes: what `destroy` forgets ([`super::State::forget_instance`]).
    pub const DRIVER: [&str; 8] = [
        CONTAINER_ID,
        CONTAINER_NAME,
        HOSTNAME,
        IMAGE,
        PORT,
        FORWARDED_PORTS,
        FORWARDED_HOST,
        LXD_PROJECT,
    ];
}

/// A new random UUID (test-kitchen's ids are `SecureRandom.uuid`).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// This process's run id, one UUID for everything it does (test-kitchen's `Kitchen.run_id`).
pub fn kitchen_run_id() -> &'static str {
    static RUN_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUN_ID.get_or_init(new_id)
}

/// The keys of one instance's state, in key order (serialized as a plain mapping, as
/// `diagnose` shows it).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct State {
    values: BTreeMap<String, Value>,
}

impl State {
    /// An empty state (an instance that was never created).
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).filter(|v| !v.is_null())
    }

    /// The value of a key when it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// Sets a key.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.values.insert(key.into(), value.into());
    }

    /// Removes a key, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.values.remove(key)
    }

    /// Removes every key a driver wrote ([`keys::DRIVER`]): the instance is gone.
    pub fn forget_instance(&mut self) {
        for key in keys::DRIVER {
            self.values.remove(key);
        }
    }

    /// Every key and value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The string value of a key a created instance must have (`container_id`, ...).
    ///
    /// # Errors
    /// [`Error::NotCreated`] naming `instance` when the key is missing: the instance was never
    /// created, or was destroyed.
    pub fn created(&self, key: &str, instance: &str) -> Result<&str> {
        self.get_str(key).ok_or_else(|| Error::NotCreated {
            instance: instance.to_string(),
        })
    }

    /// The last action that completed, when it is one of the lifecycle's actions.
    pub fn last_action(&self) -> Option<Action> {
        self.get_str(keys::LAST_ACTION).and_then(|s| s.parse().ok())
    }

    /// Records that `action` is being attempted, as test-kitchen 4.1's `record_attempt` does:
    /// the instance's session id (kept, or new), the attempted action, a new action id and this
    /// process's run id.
    pub fn record_attempt(&mut self, action: Action) {
        let session = self
            .get_str(keys::INSTANCE_SESSION_ID)
            .map(str::to_string)
            .unwrap_or_else(new_id);
        self.set(keys::INSTANCE_SESSION_ID, session);
        self.set(keys::LAST_ATTEMPTED_ACTION, action.as_str());
        self.set(keys::LAST_ACTION_ID, new_id());
        self.set(keys::LAST_KITCHEN_RUN_ID, kitchen_run_id());
    }

    /// The error class of the last failed action (`ActionFailed`, ...), if the last action
    /// attempted failed.
    pub fn last_error(&self) -> Option<&str> {
        self.get_str(keys::LAST_ERROR)
    }

    /// Each key with a value, rendered by [`value_text`], as the shell verifier exports them
    /// (`KITCHEN_<KEY>`).
    pub fn string_values(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), value_text(v)?)))
            .collect()
    }

    /// Parses a state file's text as test-kitchen does (`YAML.safe_load`, Psych's rules for
    /// plain scalars). Empty text, or a document with no content, is an empty state.
    ///
    /// # Errors
    /// [`Error::StateFile`] (test-kitchen's `StateFileLoadError`) when the text is not YAML or
    /// not a mapping, with the file, line and column.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Self> {
        let invalid = |source| Error::StateFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        let file: Arc<Path> = Arc::from(path);
        let node = crate::config::yaml::parse(text, &file).map_err(invalid)?;
        let Some(node) = node.filter(|n| !n.is_null()) else {
            return Ok(Self::new());
        };
        let Some(map) = node.as_map() else {
            return Err(invalid(ConfigError::ty(
                &node,
                "(top level)",
                "a mapping of state keys",
            )));
        };
        let values = crate::config::value::map_to_json(map).into_iter().collect();
        Ok(Self { values })
    }

    /// Renders the state as YAML, starting with `---` as test-kitchen's files do.
    ///
    /// # Errors
    /// [`Error::Io`] if a value cannot be rendered (never for JSON values in practice).
    pub fn to_yaml(&self, path: &Path) -> Result<String> {
        let body = serde_saphyr::to_string(&self.values)
            .map_err(|e| Error::io("rendering state file", path, std::io::Error::other(e)))?;
        if body.starts_with("---") {
            Ok(body)
        } else {
            Ok(format!("---\n{body}"))
        }
    }
}

/// A state value as text: strings as they are, other scalars as their JSON text, maps and
/// lists as JSON; null is no value. The shell verifier's `KITCHEN_<KEY>` variables and
/// `list`'s columns both show state this way.
pub fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The state file of one instance: `<kitchen_root>/.kitchen/<instance>.yml`.
#[derive(Debug, Clone)]
pub struct StateFile {
    instance: String,
    path: PathBuf,
    lock_path: PathBuf,
}

impl StateFile {
    /// The state file of `instance` in the project at `kitchen_root`.
    pub fn new(kitchen_root: &Path, instance: &str) -> Self {
        let dir = kitchen_root.join(".kitchen");
        Self {
            instance: instance.to_string(),
            path: dir.join(format!("{instance}.yml")),
            lock_path: dir.join(format!(".{instance}.lock")),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state; a missing or empty file is an empty state.
    ///
    /// # Errors
    /// [`Error::Io`] when the file exists but cannot be read, [`Error::StateFile`] when it is
    /// not valid (see [`State::from_yaml`]).
    pub fn load(&self) -> Result<State> {
        match fs::read_to_string(&self.path) {
            Ok(text) => State::from_yaml(&text, &self.path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::new()),
            Err(e) => Err(Error::io("reading state file", &self.path, e)),
        }
    }

    /// Writes the state atomically: a temporary file beside it, flushed, then renamed over it.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory or file cannot be written.
    pub fn save(&self, state: &State) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
        let text = state.to_yaml(&self.path)?;
        let tmp = dir.join(format!(".{}.yml.tmp-{}", self.instance, std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io("writing state file", &self.path, e)
        })
    }

    /// Deletes the state file (after `destroy`); a missing file is fine.
    ///
    /// # Errors
    /// [`Error::Io`] when the file exists and cannot be removed.
    pub fn delete(&self) -> Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("deleting state file", &self.path, e)),
        }
    }

    /// Takes the instance's exclusive lock, failing at once if another process holds it.
    ///
    /// The lock is an advisory lock (fs4) on `.kitchen/.<instance>.lock`, released when the
    /// returned guard is dropped (or the process dies).
    ///
    /// # Errors
    /// [`Error::Locked`] when another process holds it, [`Error::Io`] when the lock file cannot
    /// be created.
    pub fn lock(&self) -> Result<InstanceLock> {
        use std::os::unix::fs::MetadataExt;
        let dir = self.lock_path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
        // The lock file is removed when an instance is destroyed; a process that opened the
        // old file must not believe it holds the lock, so check that the path still names the
        // file that was locked, and retry otherwise.
        for _ in 0..100 {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&self.lock_path)
                .map_err(|e| Error::io("opening lock file", &self.lock_path, e))?;
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => {}
                Err(fs4::TryLockError::WouldBlock) => {
                    return Err(Error::Locked {
                        instance: self.instance.clone(),
                        path: self.lock_path.clone(),
                    });
                }
                Err(fs4::TryLockError::Error(e)) => {
                    return Err(Error::io("locking", &self.lock_path, e));
                }
            }
            let locked = file
                .metadata()
                .map_err(|e| Error::io("reading lock file", &self.lock_path, e))?;
            match fs::metadata(&self.lock_path) {
                Ok(now) if now.ino() == locked.ino() && now.dev() == locked.dev() => {
                    return Ok(InstanceLock {
                        file,
                        path: self.lock_path.clone(),
                    });
                }
                _ => continue,
            }
        }
        Err(Error::Locked {
            instance: self.instance.clone(),
            path: self.lock_path.clone(),
        })
    }
}

/// An instance's exclusive lock; released on drop.
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the lock file, then releases the lock (after `destroy`, so nothing of the
    /// instance is left in `.kitchen`). Other processes notice and retry on a new file.
    pub fn remove(self) {
        let _ = fs::remove_file(&self.path);
        drop(self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_empty_state_and_roundtrip_keeps_keys() {
        let dir = tempfile::tempdir().unwrap();
        let sf = StateFile::new(dir.path(), "default-busybox");
        assert_eq!(sf.load().unwrap(), State::new());
        let mut st = State::new();
        st.set("last_action", "converge");
        st.set("last_error", Value::Null);
        st.set("container_id", "abc123");
        st.set("port", 8080);
        sf.save(&st).unwrap();
        let text = fs::read_to_string(sf.path()).unwrap();
        assert!(text.starts_with("---\n"), "{text}");
        assert!(text.contains("last_action: converge"), "{text}");
        let back = sf.load().unwrap();
        assert_eq!(back, st);
        assert_eq!(back.last_action(), Some(Action::Converge));
        assert_eq!(back.last_error(), None);
        assert_eq!(back.get("port"), Some(&Value::from(8080)));
        // No temporary file is left beside it.
        let names: Vec<_> = fs::read_dir(dir.path().join(".kitchen"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("tmp"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
        sf.delete().unwrap();
        assert!(!sf.path().exists());
        sf.delete().unwrap();
    }

    #[test]
    fn reads_a_test_kitchen_state_file() {
        let text = "---\nhostname: 10.0.0.5\nport: '22'\nusername: kitchen\nlast_action: verify\nlast_error:\nlast_attempted_action: verify\n";
        let st = State::from_yaml(text, Path::new("x.yml")).unwrap();
        assert_eq!(st.last_action(), Some(Action::Verify));
        assert_eq!(st.last_error(), None);
        assert_eq!(st.get_str("port"), Some("22"));
        let vals = st.string_values();
        assert!(vals.contains(&("hostname".into(), "10.0.0.5".into())));
    }

    #[test]
    fn invalid_state_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let sf = StateFile::new(dir.path(), "x");
        fs::create_dir_all(dir.path().join(".kitchen")).unwrap();
        fs::write(sf.path(), "- a\n- b\n").unwrap();
        let err = sf.load().unwrap_err();
        assert!(matches!(err, Error::StateFile { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.starts_with("Error parsing "), "{msg}");
        // Located: file:line:column of the offending node.
        assert!(msg.contains("x.yml:1:1"), "{msg}");
        fs::write(sf.path(), "last_action: [create\n").unwrap();
        let msg = sf.load().unwrap_err().to_string();
        assert!(msg.contains("x.yml:1:14: YAML syntax error"), "{msg}");
        // Empty documents are no state, as test-kitchen's empty file.
        for empty in ["", "---\n", "  \n"] {
            fs::write(sf.path(), empty).unwrap();
            assert_eq!(sf.load().unwrap(), State::new(), "{empty:?}");
        }
    }

    #[test]
    fn values_that_psych_would_resolve_differently_survive_a_save() {
        // The writer must quote what the Psych-rules reader would otherwise turn into another
        // type (sexagesimal `1:30`, `yes`, octal `0755`, ...).
        let dir = tempfile::tempdir().unwrap();
        let sf = StateFile::new(dir.path(), "t");
        let mut st = State::new();
        for (i, v) in [
            "1:30",
            "yes",
            "no",
            "0755",
            "0x1f",
            "~",
            "null",
            "1e3",
            ":sym",
            "2024-01-01",
            "0b101",
            ".5",
            "-.inf",
            "1_000",
        ]
        .into_iter()
        .enumerate()
        {
            st.set(format!("k{i}"), v);
        }
        sf.save(&st).unwrap();
        assert_eq!(
            sf.load().unwrap(),
            st,
            "{}",
            fs::read_to_string(sf.path()).unwrap()
        );
    }

    #[test]
    fn second_lock_on_the_same_instance_fails_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let sf = StateFile::new(dir.path(), "a");
        let guard = sf.lock().unwrap();
        let err = sf.lock().unwrap_err();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
        // Another instance is independent.
        let _other = StateFile::new(dir.path(), "b").lock().unwrap();
        drop(guard);
        let again = sf.lock().unwrap();
        again.remove();
        assert!(!dir.path().join(".kitchen/.a.lock").exists());
        let _fresh = sf.lock().unwrap();
    }
}
