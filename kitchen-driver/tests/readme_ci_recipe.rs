//! The README's CI recipe runs what this repository has: its `kitchen-driver` command lines
//! parse with the real CLI, its scripts exist, the package it builds is this one, and the
//! report and logs it uploads are where the run writes them.

use std::path::{Path, PathBuf};

use clap::Parser;
use kitchen_driver::cli::{Cli, Command};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The YAML block under the README's "### CI recipe" heading.
fn recipe() -> serde_json::Value {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("### CI recipe")
        .nth(1)
        .expect("README has a CI recipe section");
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the CI recipe has a yaml block");
    serde_saphyr::from_str(yaml).expect("the CI recipe is valid YAML")
}

#[test]
fn the_readme_ci_recipe_uses_commands_this_repository_has() {
    let workflow = recipe();
    let steps = workflow["jobs"]["kitchen"]["steps"]
        .as_array()
        .expect("jobs.kitchen.steps");
    let mut junit = None;
    let mut logs_dir = None;
    let mut ran_kitchen_driver = false;
    for step in steps {
        let Some(run) = step["run"].as_str() else {
            continue;
        };
        let workdir = repo().join(step["working-directory"].as_str().unwrap_or("."));
        let words = shlex::split(run).expect("shell words");
        let words: Vec<&str> = words
            .iter()
            .map(String::as_str)
            .skip_while(|w| *w == "sudo")
            .collect();
        match words.as_slice() {
            [script, ..] if script.starts_with("scripts/") => {
                assert!(repo().join(script).is_file(), "{script} exists");
            }
            ["cargo", "build", rest @ ..] => {
                let package = rest.iter().skip_while(|w| **w != "-p").nth(1);
                assert_eq!(package, Some(&"kitchen-driver"), "{run}");
            }
            [program, args @ ..] if program.ends_with("/kitchen-driver") => {
                assert!(
                    program.contains("target/release/"),
                    "runs the binary the build step made: {run}"
                );
                let cli = Cli::try_parse_from(
                    std::iter::once("kitchen-driver").chain(args.iter().copied()),
                )
                .unwrap_or_else(|e| panic!("`{run}` does not parse: {e}"));
                let Command::Test(test) = cli.command else {
                    panic!("the recipe runs `test`: {run}");
                };
                assert_eq!(
                    test.common.concurrency,
                    Some(0),
                    "-c: every instance at once"
                );
                junit = test.common.junit.map(|j| workdir.join(j));
                logs_dir = Some(workdir.join(".kitchen/logs"));
                ran_kitchen_driver = true;
            }
            other => panic!("a step the test does not know: {other:?}"),
        }
    }
    assert!(ran_kitchen_driver, "the recipe runs kitchen-driver");
    let uploaded = |key: &str, uses: &str| {
        let step = steps
            .iter()
            .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(uses)))
            .unwrap_or_else(|| panic!("a step uses {uses}"));
        assert_eq!(step["if"], "always()", "{uses} runs after a failure too");
        repo().join(step["with"][key].as_str().unwrap())
    };
    assert_eq!(
        Some(uploaded("report_paths", "mikepenz/action-junit-report")),
        junit,
        "the published report is the one --junit writes"
    );
    let logs = uploaded("path", "actions/upload-artifact");
    assert_eq!(
        logs.components().collect::<PathBuf>(),
        logs_dir.unwrap().components().collect::<PathBuf>(),
        "the uploaded logs are where the run writes them"
    );
}
