//! Which files make up a project (lib/kitchen/loader/yaml.rb, lib/kitchen/cli.rb).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::ConfigError;

/// The files test-kitchen would read, in merge order: global, project, local.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigFiles {
    /// `$KITCHEN_GLOBAL_YAML` (or `_YML`), else `$HOME/.kitchen/config.yml`; `None` without
    /// `HOME`. May not exist (then it is empty).
    pub global: Option<PathBuf>,
    /// `$KITCHEN_YAML` (or `_YML`), else `kitchen.yml`, else `.kitchen.yml`. Must exist.
    pub project: PathBuf,
    /// `$KITCHEN_LOCAL_YAML` (or `_YML`), else the project file's name with `.local` before
    /// the extension, dotted or not. May not exist (then it is empty).
    pub local: Option<PathBuf>,
}

/// `File.expand_path(ENV[name])`: relative to `dir`, `~` and `~/...` from `HOME`.
fn env_path(env: &BTreeMap<String, String>, names: [&str; 2], dir: &Path) -> Option<PathBuf> {
    let v = names
        .iter()
        .find_map(|n| env.get(*n).filter(|v| !v.is_empty()))?;
    let home = env.get("HOME").filter(|h| !h.is_empty());
    let p = match (v.as_str(), home) {
        ("~", Some(h)) => PathBuf::from(h),
        (v, Some(h)) if v.starts_with("~/") => Path::new(h).join(&v[2..]),
        (v, _) => dir.join(v),
    };
    Some(super::absolute(&p))
}

impl ConfigFiles {
    /// Finds the files for a project in `dir` with environment `env`.
    ///
    /// # Errors
    /// [`ConfigError::BothPresent`] when both the dotted and the un-dotted variant of the
    /// project (or derived local) file exist.
    pub fn discover(dir: &Path, env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let project = match env_path(env, ["KITCHEN_YAML", "KITCHEN_YML"], dir) {
            Some(p) => p,
            None => {
                let plain = dir.join("kitchen.yml");
                let dotted = dir.join(".kitchen.yml");
                match (plain.exists(), dotted.exists()) {
                    (true, true) => {
                        return Err(ConfigError::BothPresent {
                            first: plain,
                            second: dotted,
                        });
                    }
                    (false, true) => dotted,
                    _ => plain,
                }
            }
        };
        let local = match env_path(env, ["KITCHEN_LOCAL_YAML", "KITCHEN_LOCAL_YML"], dir) {
            Some(p) => Some(p),
            None => Some(default_local(&project)?),
        };
        let global = match env_path(env, ["KITCHEN_GLOBAL_YAML", "KITCHEN_GLOBAL_YML"], dir) {
            Some(p) => Some(p),
            None => env
                .get("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".kitchen").join("config.yml")),
        };
        Ok(Self {
            global,
            project,
            local,
        })
    }
}

/// `foo.yml` -> `foo.local.yml` (`.foo.local.yml` preferred when it exists; both is an error).
fn default_local(project: &Path) -> Result<PathBuf, ConfigError> {
    let dir = project.parent().unwrap_or(Path::new("/"));
    let file = project
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    // File.extname: the last ".ext" of the basename, not counting a leading dot.
    let stem_start = usize::from(file.starts_with('.'));
    let local_name = match file[stem_start..].rfind('.') {
        Some(i) if stem_start + i + 1 < file.len() => {
            let i = stem_start + i;
            format!("{}.local{}", &file[..i], &file[i..])
        }
        _ => format!("{file}.local"),
    };
    let undot = local_name
        .strip_prefix('.')
        .unwrap_or(&local_name)
        .to_owned();
    let dot = format!(".{undot}");
    let (u, d) = (dir.join(&undot), dir.join(&dot));
    match (u.exists(), d.exists()) {
        (true, true) => Err(ConfigError::BothPresent {
            first: u,
            second: d,
        }),
        (false, true) => Ok(d),
        _ => Ok(u),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_paths_expand_like_file_expand_path() {
        let env: BTreeMap<String, String> = [
            ("HOME", "/home/u"),
            ("KITCHEN_YAML", "ci/k.yml"),
            ("KITCHEN_GLOBAL_YML", "~/g.yml"),
            ("KITCHEN_LOCAL_YAML", "/abs/l.yml"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let f = ConfigFiles::discover(Path::new("/p"), &env).ok();
        assert_eq!(
            f,
            Some(ConfigFiles {
                global: Some(PathBuf::from("/home/u/g.yml")),
                project: PathBuf::from("/p/ci/k.yml"),
                local: Some(PathBuf::from("/abs/l.yml")),
            })
        );
    }

    #[test]
    fn local_name_derivation() {
        let t = Path::new("/nonexistent-kd");
        let l = |f: &str| {
            default_local(&t.join(f))
                .ok()
                .map(|p| p.file_name().map(|s| s.to_string_lossy().into_owned()))
        };
        assert_eq!(l("kitchen.yml"), Some(Some("kitchen.local.yml".into())));
        assert_eq!(l(".kitchen.yml"), Some(Some("kitchen.local.yml".into())));
        assert_eq!(
            l("kitchen.dokken.yml"),
            Some(Some("kitchen.dokken.local.yml".into()))
        );
        assert_eq!(l("kitchenfile"), Some(Some("kitchenfile.local".into())));
    }
}
