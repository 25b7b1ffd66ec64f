//! `kitchen-driver plugin ...` end to end: the real binary against the real LXD daemon and
//! Docker engine, every answer line checked against the checked-in JSON schema
//! (`kitchen-driver/plugin-protocol.schema.json`), every request we send too.

use std::path::Path;

use serde_json::{Value, json};
use test_support::TestProject;

fn schema() -> Value {
    let text = include_str!("../plugin-protocol.schema.json");
    serde_json::from_str(text).expect("the schema is JSON")
}

/// A validator for the schema's `$defs/<def>`.
fn validator(def: &str) -> jsonschema::Validator {
    let mut s = schema();
    s["$ref"] = json!(format!("#/$defs/{def}"));
    jsonschema::validator_for(&s).expect("the schema compiles")
}

/// What one `plugin` invocation answered.
struct Answer {
    lines: Vec<Value>,
    code: i32,
}

impl Answer {
    fn last(&self) -> &Value {
        self.lines.last().expect("at least one line")
    }

    fn outputs(&self, stream: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| l["type"] == "output" && l["stream"] == stream)
            .map(|l| l["data"].as_str().unwrap())
            .collect()
    }

    /// The `result` line, after checking it is one and the exit code is 0.
    fn result(&self) -> &Value {
        assert_eq!(self.last()["type"], "result", "{:#?}", self.lines);
        assert_eq!(self.code, 0);
        self.last()
    }

    /// The `error` line, after checking the exit code.
    fn error(&self, code: &str, exit: i32) -> &Value {
        assert_eq!(self.last()["type"], "error", "{:#?}", self.lines);
        assert_eq!(self.last()["code"], code, "{:#?}", self.lines);
        assert_eq!(self.code, exit);
        self.last()
    }
}

/// Runs `kitchen-driver plugin <command>` with `request` on stdin, checks every answer line
/// against the message schema and that exactly the last line is a `result` or an `error`.
fn plugin(command: &str, request: &str) -> Answer {
    let out = assert_cmd::Command::cargo_bin("kitchen-driver")
        .unwrap()
        .args(["plugin", command])
        .write_stdin(request)
        .timeout(std::time::Duration::from_secs(240))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let messages = validator("message");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            if let Err(e) = messages.validate(&v) {
                panic!("answer line not in the schema: {e}\n{v}");
            }
            v
        })
        .collect();
    let finals = lines
        .iter()
        .filter(|l| l["type"] == "result" || l["type"] == "error")
        .count();
    assert_eq!(finals, 1, "exactly one final line: {lines:#?}");
    let answer = Answer {
        lines,
        code: out.status.code().unwrap_or(-1),
    };
    assert!(matches!(
        answer.last()["type"].as_str(),
        Some("result" | "error")
    ));
    answer
}

fn request(driver: &str, root: &Path, instance: &str, state: &Value, extra: Value) -> String {
    let image = if driver == "lxd" {
        "kitchen/busybox"
    } else {
        "kitchen/busybox:latest"
    };
    let mut r = json!({
        "protocol": 1, "driver": driver, "instance": instance,
        "kitchen_root": root, "config": {"image": image, "name": format!("{driver}_api")},
        "state": state,
    });
    for (k, v) in extra.as_object().unwrap() {
        if k == "config" {
            for (ck, cv) in v.as_object().unwrap() {
                r["config"][ck] = cv.clone();
            }
        } else {
            r[k] = v.clone();
        }
    }
    assert!(
        validator("request").is_valid(&r),
        "request not in the schema: {r}"
    );
    r.to_string()
}

#[test]
fn the_schema_is_a_valid_json_schema_and_version_answers_the_handshake() {
    assert!(jsonschema::meta::is_valid(&schema()));
    let a = plugin("version", "");
    let r = a.result();
    assert_eq!(r["protocol"], 1);
    assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r["drivers"], json!(["lxd", "docker"]));
}

#[test]
fn bad_requests_are_errors_with_codes_and_exit_1() {
    let root = "/tmp/kdtest-plugin-never-created";
    let ok = |extra: Value| {
        let mut r =
            json!({"protocol": 1, "driver": "docker", "instance": "i", "kitchen_root": root});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r.to_string()
    };
    let e = plugin("create", "not json").error("bad_request", 1).clone();
    assert!(e["message"].as_str().unwrap().contains("not valid"), "{e}");
    let e = plugin("create", r#"{"protocol":1}"#)
        .error("bad_request", 1)
        .clone();
    assert!(
        e["message"].as_str().unwrap().contains("driver"),
        "the missing field is named: {e}"
    );
    plugin("create", &ok(json!({"protocol": 2}))).error("protocol_mismatch", 1);
    plugin("create", &ok(json!({"driver": "vagrant"}))).error("unknown_driver", 1);
    let relative = ok(json!({"kitchen_root": "rel"}));
    let as_json: Value = serde_json::from_str(&relative).unwrap();
    assert!(
        !validator("request").is_valid(&as_json),
        "the schema refuses it too"
    );
    plugin("create", &relative).error("bad_request", 1);
    let e = plugin("exec", &ok(json!({})))
        .error("bad_request", 1)
        .clone();
    assert!(e["message"].as_str().unwrap().contains("`command`"), "{e}");
    plugin("upload", &ok(json!({"remote": "/tmp"}))).error("bad_request", 1);
    plugin("download", &ok(json!({"local": "/tmp/x"}))).error("bad_request", 1);
    // A bad driver key is the driver's own configuration error.
    let bad = ok(json!({"config": {"image": "kitchen/busybox:latest", "privileged": "maybe"}}));
    plugin("create", &bad).error("config", 20);
}

#[test]
fn reaching_an_instance_that_was_never_created_is_not_created() {
    for driver in ["lxd", "docker"] {
        let p = TestProject::new("plugin-nc");
        let r = request(
            driver,
            p.root(),
            "nc",
            &json!({}),
            json!({"command": "true"}),
        );
        plugin("exec", &r).error("not_created", 20);
        let s = plugin("status", &r).result().clone();
        assert_eq!(s["status"]["state"], "not_created");
        assert_eq!(s["status"]["live"], Value::Null);
    }
}

fn full_cycle(driver: &str) {
    let p = TestProject::new(&format!("plugin-{driver}"));
    let inst = "default-busybox";
    let created = plugin(
        "create",
        &request(
            driver,
            p.root(),
            inst,
            &json!({"last_action": null}),
            json!({}),
        ),
    );
    let state = created.result()["state"].clone();
    let name = state["container_name"].as_str().unwrap().to_string();
    assert!(
        name.starts_with("kitchen-") && name.ends_with(inst),
        "{state}"
    );
    assert!(state.as_object().unwrap().contains_key("last_action"));
    assert!(
        created.lines.iter().any(|l| l["type"] == "log"),
        "progress is reported: {:#?}",
        created.lines
    );
    let with = |extra| request(driver, p.root(), inst, &state, extra);

    let s = plugin("status", &with(json!({})));
    assert_eq!(s.result()["status"]["state"], "running");
    assert_eq!(s.result()["status"]["resource_id"], name.as_str());

    let e = plugin(
        "exec",
        &with(json!({"command": "echo one; echo two >&2; echo three; exit 3"})),
    );
    assert_eq!(e.result()["exit_code"], 3);
    assert_eq!(e.outputs("stdout"), ["one", "three"]);
    assert_eq!(e.outputs("stderr"), ["two"]);

    p.write("up/tree/sub/a.txt", "A\n");
    p.write("up/b.txt", "B\n");
    let locals = [p.root().join("up/tree"), p.root().join("up/b.txt")];
    plugin(
        "upload",
        &with(json!({"locals": locals, "remote": "/tmp/in here"})),
    )
    .result();
    let e = plugin(
        "exec",
        &with(json!({"command": "cat '/tmp/in here/tree/sub/a.txt' '/tmp/in here/b.txt'"})),
    );
    assert_eq!(e.outputs("stdout"), ["A", "B"]);

    let local = p.root().join("down");
    plugin(
        "download",
        &with(json!({"remotes": ["/tmp/in here/tree", "/tmp/in here/b.txt"], "local": local})),
    )
    .result();
    assert_eq!(
        std::fs::read_to_string(local.join("tree/sub/a.txt")).unwrap(),
        "A\n"
    );
    assert_eq!(std::fs::read_to_string(local.join("b.txt")).unwrap(), "B\n");
    let missing = plugin(
        "download",
        &with(json!({"remotes": ["/tmp/nothing-here"], "local": local})),
    );
    missing.error(missing.last()["code"].as_str().unwrap(), 20);

    let d = plugin("destroy", &with(json!({})));
    let after = d.result()["state"].clone();
    assert_eq!(after, json!({"last_action": null}), "driver keys removed");
    if driver == "lxd" {
        assert!(p.lxd_instances().is_empty(), "{:?}", p.lxd_instances());
    } else {
        assert!(p.containers(None).is_empty(), "{:?}", p.containers(None));
    }
}

#[test]
fn lxd_create_status_exec_upload_download_destroy() {
    full_cycle("lxd");
}

#[test]
fn docker_create_status_exec_upload_download_destroy() {
    full_cycle("docker");
}

#[test]
fn a_failed_create_returns_the_state_that_destroy_needs() {
    // The instance is created, but never becomes ready: the error carries the state so the
    // plugin stores it; or, where the driver removed the instance itself, no container is left.
    let p = TestProject::new("plugin-fail");
    let r = request(
        "lxd",
        p.root(),
        "never-ready",
        &json!({}),
        json!({"config": {"wait_for": "exit 1", "ready_timeout": 1}}),
    );
    let a = plugin("create", &r);
    let e = a.error("runtime", 20).clone();
    let state = e
        .get("state")
        .cloned()
        .expect("create errors carry the state");
    let d = plugin(
        "destroy",
        &request("lxd", p.root(), "never-ready", &state, json!({})),
    );
    d.result();
    assert!(p.lxd_instances().is_empty(), "{:?}", p.lxd_instances());
}
