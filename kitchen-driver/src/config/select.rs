//! Instance selection as test-kitchen's `parse_subcommand` does it (lib/kitchen/command.rb).

use super::error::ConfigError;
use super::filter::ruby_regex;
use super::{InstanceConfig, Project};

impl Project {
    /// The instances the command-line arguments select, in project order.
    ///
    /// No argument selects every instance (an empty project is then an error, as with
    /// test-kitchen, whose pattern is empty). `all` selects every instance. Otherwise the
    /// arguments are joined with `|` into one pattern: an instance whose name equals it
    /// exactly is selected alone, else every instance whose name matches it as an unanchored
    /// Ruby regular expression.
    ///
    /// # Errors
    /// [`ConfigError::NoMatch`] when nothing matches, [`ConfigError::NoInstances`] for `all` on
    /// an empty project, [`ConfigError::Regex`] for a pattern that is not a valid regex. All
    /// map to exit code 1.
    pub fn select(&self, args: &[String]) -> Result<Vec<&InstanceConfig>, ConfigError> {
        if args.len() == 1 && args[0] == "all" {
            if self.instances.is_empty() {
                return Err(ConfigError::NoInstances);
            }
            return Ok(self.instances.iter().collect());
        }
        let pattern = args.join("|");
        if let Some(exact) = self.instances.iter().find(|i| i.name == pattern) {
            return Ok(vec![exact]);
        }
        let re = ruby_regex(&pattern, false, false).map_err(|e| ConfigError::Regex {
            at: None,
            context: "instance selection (you may need to single quote the argument)".into(),
            pattern: pattern.clone(),
            message: e.to_string(),
        })?;
        let found: Vec<&InstanceConfig> = self
            .instances
            .iter()
            .filter(|i| re.is_match(&i.name))
            .collect();
        if found.is_empty() {
            return Err(ConfigError::NoMatch { pattern });
        }
        Ok(found)
    }

    /// The instance named exactly `name`.
    pub fn instance(&self, name: &str) -> Option<&InstanceConfig> {
        self.instances.iter().find(|i| i.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn project(names: &[&str]) -> Project {
        Project {
            kitchen_root: PathBuf::from("/p"),
            test_base_path: PathBuf::from("/p/test/integration"),
            files: vec![],
            instances: names
                .iter()
                .map(|n| InstanceConfig {
                    name: (*n).to_owned(),
                    suite: String::new(),
                    platform: String::new(),
                    driver: Default::default(),
                    provisioner: Default::default(),
                    verifier: Default::default(),
                    transport: Default::default(),
                    lifecycle: Default::default(),
                    origins: Default::default(),
                })
                .collect(),
        }
    }

    fn names(p: &Project, args: &[&str]) -> Result<Vec<String>, String> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        p.select(&args)
            .map(|v| v.into_iter().map(|i| i.name.clone()).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn selection_rules() {
        let p = project(&["default-ubuntu", "default-ubuntu-2204", "web-debian"]);
        assert_eq!(names(&p, &[]).map(|v| v.len()), Ok(3));
        assert_eq!(names(&p, &["all"]).map(|v| v.len()), Ok(3));
        // exact name wins over the regex that would also match the longer name
        assert_eq!(
            names(&p, &["default-ubuntu"]),
            Ok(vec!["default-ubuntu".into()])
        );
        // unanchored regex
        assert_eq!(names(&p, &["ubuntu"]).map(|v| v.len()), Ok(2));
        assert_eq!(names(&p, &["^web"]), Ok(vec!["web-debian".into()]));
        // several arguments are joined with |
        assert_eq!(names(&p, &["2204", "debian"]).map(|v| v.len()), Ok(2));
        let e = names(&p, &["centos"]).err().unwrap_or_default();
        assert_eq!(
            e,
            "No instances for regex `centos', try running `kitchen-driver list'"
        );
        assert!(names(&p, &["("]).is_err());
        let empty = project(&[]);
        assert!(matches!(
            empty.select(&[]),
            Err(ConfigError::NoMatch { .. })
        ));
        assert!(matches!(
            empty.select(&["all".to_owned()]),
            Err(ConfigError::NoInstances)
        ));
    }
}
