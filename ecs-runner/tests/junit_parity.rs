//! The done-when of `--local`: the example project's shell and bats suites pass, and a failing
//! suite fails, with the same JUnit shape as `kitchen-driver test` on the same project. Both
//! tools run for real on the Docker engine (kitchen-driver in-process, through its library
//! CLI entry point); the test compares the element and attribute structure of their two
//! JUnit files, not a recording of our own output.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::bin;
use quick_xml::events::{BytesStart, Event};

/// An element with its attributes and children, sorted: what a JUnit consumer sees, without
/// timings, host names or texts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Node {
    name: String,
    /// Attribute name to value; values that differ between runs by nature are blanked.
    attrs: BTreeMap<String, String>,
    children: Vec<Node>,
}

/// Attributes whose values are part of the shape: names, class names and counts.
const KEPT_VALUES: &[&str] = &[
    "name",
    "classname",
    "tests",
    "failures",
    "errors",
    "skipped",
];

fn node(e: &BytesStart<'_>) -> Node {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let attrs = e
        .attributes()
        .map(|a| {
            let a = a.expect("well-formed attribute");
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            // The report's own name is the tool's name.
            let keep =
                KEPT_VALUES.contains(&key.as_str()) && !(name == "testsuites" && key == "name");
            let value = if keep {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .expect("attribute value")
                    .into_owned()
            } else {
                String::new()
            };
            (key, value)
        })
        .collect();
    Node {
        name,
        attrs,
        children: Vec::new(),
    }
}

/// Properties that describe how a runtime ran rather than what was tested: the seconds of each
/// lifecycle step (a task has no create, setup or destroy step) and resource samples (taken
/// only when the sampler caught the container). They are left out of the comparison.
fn is_runtime_property(n: &Node) -> bool {
    n.name == "property"
        && n.attrs.get("name").is_some_and(|p| {
            p.starts_with("step.") || p == "cpu_time_seconds" || p == "peak_memory_bytes"
        })
}

/// The structure of a JUnit file.
fn shape(path: &Path) -> Node {
    let xml = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut stack: Vec<Node> = vec![Node {
        name: "document".into(),
        attrs: BTreeMap::new(),
        children: Vec::new(),
    }];
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(node(&e)),
            Event::Empty(e) => {
                let n = node(&e);
                if !is_runtime_property(&n) {
                    stack.last_mut().unwrap().children.push(n);
                }
            }
            Event::End(_) => {
                let mut done = stack.pop().unwrap();
                done.children.sort();
                stack.last_mut().unwrap().children.push(done);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    stack.pop().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() == ".kitchen" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A suite the example does not have: it converges, and one of its two bats tests fails.
const FAILING_SUITE: &str = "  - name: failing
    includes:
      - docker-debian-12
    provisioner:
      command: echo converged
    verifier:
      name: bats
";
const FAILING_BATS: &str = "@test \"this holds\" {\n  true\n}\n\n@test \"this does not\" {\n  [ -f /etc/nothing-here ]\n}\n";

#[test]
fn the_examples_suites_and_a_failing_one_give_kitchen_drivers_junit_shape() {
    // The drop guard removes every container labelled with the project's path.
    let project = test_support::TestProject::new("ecs-parity");
    let root = project.root().to_path_buf();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples"),
        &root,
    );
    let mut yml = std::fs::read_to_string(root.join("kitchen.yml")).unwrap();
    yml.push_str(FAILING_SUITE);
    std::fs::write(root.join("kitchen.yml"), yml).unwrap();
    project.write("test/integration/failing/bats/fail.bats", FAILING_BATS);
    // Docker platforms only: ecs-runner runs Docker images.
    let select = "docker";

    let ours = root.join("ecs-runner.xml");
    let out = Command::new(bin())
        .current_dir(&root)
        .args(["run", "--local", select, "-c", "4", "--junit"])
        .arg(&ours)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(ecs_runner::EXIT_FAILED),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for passing in [
        "default-docker-busybox",
        "default-docker-debian-12",
        "ansible-docker-debian-12",
    ] {
        let row = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(passing))
            .unwrap_or_else(|| panic!("no summary row for {passing}:\n{stdout}"));
        assert!(row.contains("passed"), "{passing}: {row}\n{stdout}");
    }

    // kitchen-driver on the same project, through its own CLI (in this test's process, which
    // nextest gives this test alone).
    let theirs = root.join("kitchen-driver.xml");
    std::env::set_current_dir(&root).unwrap();
    let code = kitchen_driver::cli::main_with_args([
        "kitchen-driver",
        "test",
        select,
        "-c",
        "4",
        "--destroy",
        "always",
        "--junit",
        theirs.to_str().unwrap(),
    ]);
    assert_eq!(code, 20, "kitchen-driver: one suite fails");

    let (ours, theirs) = (shape(&ours), shape(&theirs));
    assert_eq!(
        ours, theirs,
        "ecs-runner's JUnit (left) and kitchen-driver's (right) differ in structure"
    );
    // The shape holds what the done-when names: the failing test is a failure case.
    let text = format!("{ours:?}");
    assert!(text.contains("this does not"), "{text}");
    assert!(text.contains("\"failure\""), "{text}");
    assert!(project.containers(None).is_empty());
    let ours_left = Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=kitchen.ecs.project={}", root.display()))
        .output()
        .unwrap();
    assert!(ours_left.stdout.is_empty(), "ecs-runner left containers");
}
