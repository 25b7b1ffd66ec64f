//! Unit tests of the whole loader, one per test-kitchen rule (pure: text in, instances out).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;

use super::{InstanceConfig, LoadOptions, Project, load_str};

fn opts() -> LoadOptions {
    LoadOptions::new(PathBuf::from("/proj"), BTreeMap::new())
}

fn load(yaml: &str) -> Project {
    match load_str(yaml, &opts()) {
        Ok(p) => p,
        Err(e) => panic!("{e}\n---\n{yaml}"),
    }
}

fn err(yaml: &str) -> String {
    match load_str(yaml, &opts()) {
        Ok(p) => panic!("expected an error, got {:?}", names(&p)),
        Err(e) => e.to_string(),
    }
}

fn names(p: &Project) -> Vec<&str> {
    p.instances.iter().map(|i| i.name.as_str()).collect()
}

fn inst<'a>(p: &'a Project, name: &str) -> &'a InstanceConfig {
    match p.instance(name) {
        Some(i) => i,
        None => panic!("no instance {name} in {:?}", names(p)),
    }
}

#[test]
fn defaults_and_transport_for_windows_platforms() {
    let p = load(
        "platforms: [{name: ubuntu}, {name: windows-2019}, {name: Win10}]\nsuites: [{name: s}]\n",
    );
    let u = inst(&p, "s-ubuntu");
    assert_eq!(
        (
            u.driver_name(),
            u.provisioner_name(),
            u.verifier_name(),
            u.transport_name()
        ),
        ("dummy", "shell", "busser", "ssh")
    );
    assert_eq!(inst(&p, "s-windows-2019").transport_name(), "winrm");
    assert_eq!(inst(&p, "s-Win10").transport_name(), "winrm");
}

#[test]
fn driver_shorthand_at_every_level() {
    let p = load(
        "driver: docker\nprovisioner: ansible_playbook\nverifier: inspec\ntransport: docker\n\
         platforms: [{name: a, driver: lxd}, {name: b}]\nsuites: [{name: s}, {name: t, driver: vagrant}]\n",
    );
    assert_eq!(inst(&p, "s-a").driver_name(), "lxd");
    assert_eq!(inst(&p, "s-b").driver_name(), "docker");
    assert_eq!(inst(&p, "t-a").driver_name(), "vagrant");
    assert_eq!(inst(&p, "s-b").provisioner_name(), "ansible_playbook");
    assert_eq!(inst(&p, "s-b").verifier_name(), "inspec");
    assert_eq!(inst(&p, "s-b").transport_name(), "docker");
}

#[test]
fn precedence_top_platform_suite_with_deep_merge() {
    let p = load(
        "driver: {name: lxd, a: top, b: top, nested: {x: 1, y: 1}, list: [1, 2]}\n\
         platforms:\n- name: p\n  driver: {b: platform, c: platform, nested: {y: 2}, list: [3]}\n\
         suites:\n- name: s\n  driver: {c: suite, nested: {z: 3}}\n",
    );
    let d = &inst(&p, "s-p").driver;
    assert_eq!(d["name"], "lxd");
    assert_eq!(d["a"], "top");
    assert_eq!(d["b"], "platform");
    assert_eq!(d["c"], "suite");
    assert_eq!(d["nested"], json!({"x": 1, "y": 2, "z": 3}));
    // arrays are replaced, not concatenated
    assert_eq!(d["list"], json!([3]));
    // name first, forced keys last, as test-kitchen builds the hash
    let keys: Vec<&str> = d.keys().map(String::as_str).collect();
    assert_eq!(keys.first(), Some(&"name"));
    assert_eq!(
        &keys[keys.len() - 3..],
        ["kitchen_root", "test_base_path", "log_level"]
    );
}

#[test]
fn run_list_is_platform_then_suite_and_top_level_is_dropped() {
    let p = load(
        "provisioner: {name: chef_zero, run_list: ['recipe[top]']}\n\
         platforms:\n- name: p\n  run_list: ['recipe[p]']\n- name: q\n\
         suites:\n- name: s\n  run_list: ['recipe[s1]', ['recipe[s2]', ~]]\n",
    );
    assert_eq!(
        inst(&p, "s-p").provisioner["run_list"],
        json!(["recipe[p]", "recipe[s1]", "recipe[s2]"])
    );
    assert_eq!(
        inst(&p, "s-q").provisioner["run_list"],
        json!(["recipe[s1]", "recipe[s2]"])
    );
}

#[test]
fn top_level_run_list_alone_is_a_clear_error() {
    let e = err(
        "provisioner: {name: chef_zero, run_list: ['recipe[top]']}\nplatforms: [{name: p}]\nsuites: [{name: s}]\n",
    );
    assert!(e.contains("kitchen.yml:1:"), "{e}");
    assert!(e.contains("provisioner.run_list"), "{e}");
}

#[test]
fn lifecycle_hooks_concatenate_common_platform_suite() {
    let p = load(
        "lifecycle:\n  pre_create: echo common\n  post_converge:\n  - local: echo c\n\
         platforms:\n- name: p\n  lifecycle:\n    pre_create: [echo platform]\n\
         suites:\n- name: s\n  lifecycle:\n    pre_create:\n    - remote: echo suite\n      skippable: true\n",
    );
    let l = &inst(&p, "s-p").lifecycle;
    assert_eq!(
        l["pre_create"],
        json!(["echo common", "echo platform", {"remote": "echo suite", "skippable": true}])
    );
    assert_eq!(l["post_converge"], json!([{"local": "echo c"}]));
    assert_eq!(l["kitchen_root"], "/proj");
    assert_eq!(l["debug"], false);
}

#[test]
fn legacy_driver_plugin_and_driver_config() {
    let p = load(
        "driver_plugin: vagrant\ndriver_config: {box: top}\n\
         platforms:\n- name: p\n  driver_config: {box: p, memory: 1}\n  driver: {memory: 2}\n\
         suites: [{name: s}]\n",
    );
    let d = &inst(&p, "s-p").driver;
    assert_eq!(d["name"], "vagrant");
    assert_eq!(d["box"], "p");
    assert_eq!(d["memory"], 2);
}

#[test]
fn legacy_busser_becomes_verifier() {
    let p =
        load("busser: 0.6.0\nplatforms: [{name: p}]\nsuites: [{name: s, busser: {sudo: false}}]\n");
    let v = &inst(&p, "s-p").verifier;
    assert_eq!(v["name"], "busser");
    assert_eq!(v["version"], "0.6.0");
    assert_eq!(v["sudo"], false);
}

#[test]
fn legacy_driver_keys_move_to_provisioner_verifier_lifecycle() {
    let p = load(
        "driver:\n  name: lxd\n  http_proxy: http://proxy:3128\n  require_chef_omnibus: 12.0\n  \
         pre_create_command: make image\n\
         platforms: [{name: p}]\n\
         suites:\n- name: s\n  data_path: test/data\n  attributes: {a: 1}\n  named_run_list: web\n",
    );
    let i = inst(&p, "s-p");
    assert_eq!(i.driver["http_proxy"], "http://proxy:3128");
    assert!(i.driver.get("require_chef_omnibus").is_none());
    assert!(i.driver.get("pre_create_command").is_none());
    assert_eq!(i.provisioner["http_proxy"], "http://proxy:3128");
    assert_eq!(i.verifier["http_proxy"], "http://proxy:3128");
    assert_eq!(i.provisioner["require_chef_omnibus"], 12.0);
    assert_eq!(i.provisioner["data_path"], "test/data");
    assert_eq!(i.provisioner["attributes"], json!({"a": 1}));
    assert_eq!(i.provisioner["named_run_list"], "web");
    assert_eq!(i.lifecycle["pre_create"], json!([{"local": "make image"}]));
}

#[test]
fn kitchen_keys_are_forced_and_overridable_by_the_kitchen_hash() {
    let p = load(
        "driver: {name: lxd, kitchen_root: /mine, log_level: debug}\n\
         platforms: [{name: p}]\nsuites: [{name: s}]\n",
    );
    let d = &inst(&p, "s-p").driver;
    assert_eq!(d["kitchen_root"], "/proj");
    assert_eq!(d["test_base_path"], "/proj/test/integration");
    assert_eq!(d["log_level"], "info");
    let p = load(
        "kitchen: {test_base_path: spec/kitchen, log_level: warn}\n\
         platforms: [{name: p}]\nsuites: [{name: s}]\n",
    );
    let i = inst(&p, "s-p");
    assert_eq!(i.driver["test_base_path"], "spec/kitchen");
    assert_eq!(i.verifier["log_level"], "warn");
    assert!(i.provisioner.get("log_level").is_none());
    assert_eq!(p.test_base_path, PathBuf::from("/proj/spec/kitchen"));
}

#[test]
fn includes_excludes_exact_and_regex_includes_win() {
    let p = load(
        "platforms: [{name: ubuntu-22.04}, {name: ubuntu-24.04}, {name: centos-7}, {name: windows}]\n\
         suites:\n\
         - {name: inc, includes: [centos-7, '/^ubuntu-24/'], excludes: [centos-7]}\n\
         - {name: exc, excludes: ['/ubuntu/', windows]}\n\
         - {name: icase, includes: ['/WIN/i']}\n\
         - {name: none, includes: [nothing]}\n\
         - {name: str, includes: centos-7}\n",
    );
    assert_eq!(
        names(&p),
        [
            "inc-ubuntu-2404",
            "inc-centos-7",
            "exc-centos-7",
            "icase-windows",
            "str-centos-7"
        ]
    );
}

#[test]
fn includes_must_be_strings() {
    let e = err("platforms: [{name: '2016'}]\nsuites:\n- name: s\n  includes: [2016]\n");
    assert!(e.contains("kitchen.yml:4:14"), "{e}");
    assert!(e.contains("suites[0].includes[0]"), "{e}");
    assert!(e.contains("an integer 2016"), "{e}");
}

#[test]
fn invalid_filter_regex_is_located() {
    let e = err("platforms: [{name: a}]\nsuites: [{name: s, excludes: ['/(?<=x)a/']}]\n");
    assert!(
        e.contains("kitchen.yml:2:") && e.contains("suites[0].excludes[0]"),
        "{e}"
    );
}

#[test]
fn invalid_hook_filter_regex_is_located_at_load_time() {
    // Hooks use the suites' PlatformFilter: a bad /regex/ is a load error with its location,
    // never a silent exact match.
    let e = err(
        "platforms: [{name: p}]\nsuites:\n  - name: s\n    lifecycle:\n      pre_create:\n        - local: echo\n          excludes: ['/(/']\n",
    );
    assert!(e.starts_with("/proj/kitchen.yml:7:22: "), "{e}");
    assert!(e.contains("lifecycle.pre_create[0].excludes[0]"), "{e}");
    assert!(e.contains("invalid regular expression `/(/`"), "{e}");
    // A valid one loads, in Ruby's syntax (\h).
    load(
        "platforms: [{name: p}]\nsuites: [{name: s, lifecycle: {pre_create: [{local: x, includes: ['/^\\h+$/']}]}}]\n",
    );
}

#[test]
fn instance_names_and_suite_major_order() {
    let p = load(
        "platforms: [{name: Ubuntu_22.04}, {name: 'centos/7,x'}]\n\
         suites: [{name: web.server_v1}, {name: 2016}, {name: 1.10}]\n",
    );
    assert_eq!(
        names(&p),
        [
            "webserver-v1-Ubuntu-2204",
            "webserver-v1-centos-7-x",
            "2016-Ubuntu-2204",
            "2016-centos-7-x",
            "11-Ubuntu-2204",
            "11-centos-7-x"
        ]
    );
    assert_eq!(p.instances[0].suite, "web.server_v1");
    assert_eq!(p.instances[0].platform, "Ubuntu_22.04");
}

#[test]
fn duplicate_platform_names_use_the_first_platform_data() {
    let p = load(
        "platforms: [{name: a, driver: {x: 1}}, {name: a, driver: {x: 2}}]\nsuites: [{name: s}]\n",
    );
    assert_eq!(names(&p), ["s-a", "s-a"]);
    assert_eq!(p.instances[1].driver["x"], 1);
}

#[test]
fn symbol_platform_names_match_regex_filters_only() {
    let p = load(
        "platforms:\n- name: :ubuntu\nsuites: [{name: a, includes: [ubuntu]}, {name: b, includes: ['/ubu/']}]\n",
    );
    assert_eq!(names(&p), ["b-ubuntu"]);
}

#[test]
fn wrong_types_name_the_key_path() {
    let e = err("platforms: ubuntu\nsuites: [{name: s}]\n");
    assert!(
        e.contains(
            "kitchen.yml:1:12: platforms: expected a list of platforms, found a string \"ubuntu\""
        ),
        "{e}"
    );
    let e = err("platforms: [{name: p}]\nsuites:\n- includes: [p]\n");
    assert!(e.contains("suites[0]") && e.contains("name"), "{e}");
    let e = err("platforms: [{name: 7}]\nsuites: [{name: s}]\n");
    assert!(
        e.contains("platforms[0].name") && e.contains("an integer 7"),
        "{e}"
    );
    let e = err("platforms: [{name: p, driver: [a]}]\nsuites: [{name: s}]\n");
    assert!(e.contains("platforms[0].driver"), "{e}");
    let e = err("- just\n- a list\n");
    assert!(e.contains("(top level)") && e.contains("a mapping"), "{e}");
}

#[test]
fn empty_and_missing_sections() {
    assert!(load("").instances.is_empty());
    assert!(load("driver: lxd\n").instances.is_empty());
    assert!(load("platforms: [{name: p}]\n").instances.is_empty());
}

#[test]
fn anchors_and_merge_keys_in_platforms() {
    let p = load(
        "defaults: &d\n  image: base\n  privileged: true\n\
         platforms:\n- name: p\n  driver:\n    <<: *d\n    image: custom\n\
         suites: [{name: s}]\n",
    );
    let d = &inst(&p, "s-p").driver;
    assert_eq!(d["image"], "custom");
    assert_eq!(d["privileged"], true);
}

#[test]
fn psych_scalars_reach_the_config() {
    let p = load(
        "driver: {name: lxd, privileged: yes, mode: 0755, port: 1_000, quoted: 'on'}\n\
         provisioner:\n  sym: :x\nplatforms: [{name: p}]\nsuites: [{name: s}]\n",
    );
    let d = &inst(&p, "s-p").driver;
    assert_eq!(d["privileged"], true);
    assert_eq!(d["mode"], 493);
    assert_eq!(d["port"], 1000);
    assert_eq!(d["quoted"], "on");
    assert_eq!(inst(&p, "s-p").provisioner["sym"], ":x");
    // Psych refuses a plain `:x` inside a flow collection; so do we.
    let e = err("driver: {name: lxd, sym: :x}\n");
    assert!(
        e.contains("kitchen.yml:1:26") && e.contains("quote it"),
        "{e}"
    );
}

#[test]
fn dates_are_errors_as_with_safe_load() {
    let e = err("driver: {name: lxd, since: 2024-01-31}\n");
    assert!(e.contains("kitchen.yml:1:28") && e.contains("date"), "{e}");
}

#[test]
fn native_erb_with_env() {
    let mut o = opts();
    o.env.insert("IMG".into(), "kitchen/debian-12".into());
    let yaml = "driver:\n  name: lxd\n  image: <%= ENV['IMG'] %>\n  other: <%= ENV.fetch('NOPE', 'dflt') %>\n  \
                proxy: <%= ENV['NOPE'] || nil %>\nplatforms: [{name: p}]\nsuites: [{name: s}]\n";
    let p = match load_str(yaml, &o) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let d = &p.instances[0].driver;
    assert_eq!(d["image"], "kitchen/debian-12");
    assert_eq!(d["other"], "dflt");
    assert_eq!(d["proxy"], serde_json::Value::Null);
}

#[test]
fn ruby_erb_loops_when_ruby_is_installed() {
    let Some(path) = std::env::var("PATH").ok() else {
        return;
    };
    let mut o = opts();
    o.dir = std::env::temp_dir();
    o.env.insert("PATH".into(), path);
    if super::erb::find_ruby(&o.env).is_none() {
        // The host set-up script installs Ruby; this test needs it.
        panic!("ruby is not installed: run scripts/setup-host");
    }
    let yaml = "platforms:\n<% %w(a b c).each do |p| %>\n- name: <%= p %>\n<% end %>\nsuites: [{name: s}]\n";
    let p = match load_str(yaml, &o) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(names(&p), ["s-a", "s-b", "s-c"]);
    // Ruby errors name the file and line.
    let e = load_str("a: 1\nb: <%= raise 'boom' %>\n", &o)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("kitchen.yml line 2") && e.contains("RuntimeError: boom"),
        "{e}"
    );
}

#[test]
fn yaml_syntax_errors_show_the_line() {
    let e = err("platforms:\n  - name: a\n suites: [\n");
    assert!(e.contains("/proj/kitchen.yml:3:"), "{e}");
    assert!(e.contains(" suites: ["), "{e}");
}

#[test]
fn selection_errors_exit_1_and_config_errors_exit_20() {
    let p = load("platforms: [{name: p}]\nsuites: [{name: s}]\n");
    let e = p.select(&["nope".into()]).err();
    assert_eq!(e.map(|e| crate::Error::from(e).exit_code()), Some(1));
    let e = load_str("a: [\n", &opts()).err();
    assert_eq!(e.map(|e| crate::Error::from(e).exit_code()), Some(20));
}

#[test]
fn ruby_erb_that_needs_rubygems_still_works() {
    let Some(path) = std::env::var("PATH").ok() else {
        return;
    };
    let mut o = opts();
    o.dir = std::env::temp_dir();
    o.env.insert("PATH".into(), path);
    let yaml = "driver:\n  name: lxd\n  v: <%= Gem::Version.new('1.2.3').segments.first %>\n";
    let p = load_str(yaml, &o);
    assert!(p.is_ok(), "{:?}", p.err().map(|e| e.to_string()));
}

#[test]
fn unused_platform_data_is_not_looked_at() {
    // test-kitchen normalizes a platform's blocks only when an instance uses it.
    let p = load(
        "platforms: [{name: a}, {name: b, driver: [oops]}]\nsuites: [{name: s, includes: [a]}]\n",
    );
    assert_eq!(names(&p), ["s-a"]);
    let e = err("platforms: [{name: a}, {name: b, driver: [oops]}]\nsuites: [{name: s}]\n");
    assert!(e.contains("platforms[1].driver"), "{e}");
}

#[test]
fn where_test_kitchen_crashes_we_give_located_errors() {
    // rmerge: a mapping merged with a non-mapping is a TypeError in test-kitchen.
    let e = err("transport:\n  nested: {x: 1}\nplatforms: [{name: p}]\n\
         suites:\n- name: s\n  transport:\n    nested: plain\n");
    assert!(e.contains("kitchen.yml:7:13: transport.nested:"), "{e}");
    // An empty provisioner next to a legacy key test-kitchen moves into it.
    let e = err("platforms: [{name: p}]\nsuites:\n- name: s\n  provisioner:\n  run_list: [a]\n");
    assert!(e.contains("suites[0].provisioner"), "{e}");
    // Platform#windows? reads transport[:name] on a non-Hash transport.
    let e = err("platforms:\n- name: debian\n  transport: docker\nsuites: [{name: s}]\n");
    assert!(
        e.contains("kitchen.yml:3:14: platforms[0].transport"),
        "{e}"
    );
    // ... unless the platform name already says Windows.
    let p = load("platforms:\n- name: windows\n  transport: winrm\nsuites: [{name: s}]\n");
    assert_eq!(p.instances[0].transport_name(), "winrm");
    // An empty `kitchen:` is nil.key? in test-kitchen.
    assert!(err("kitchen:\nplatforms: [{name: p}]\nsuites: [{name: s}]\n").contains("kitchen"));
}

#[test]
fn integer_platform_names_with_os_and_shell_type() {
    // Platform#new accepts them, but the default transport check fails once an instance
    // uses the platform; a platform no suite uses is fine.
    let yaml =
        "platforms:\n- {name: 2016, os_type: windows, shell_type: powershell}\n- {name: b}\n";
    assert_eq!(
        names(&load(&format!(
            "{yaml}suites: [{{name: s, includes: [b]}}]\n"
        ))),
        ["s-b"]
    );
    let e = err(&format!("{yaml}suites: [{{name: s}}]\n"));
    assert!(e.contains("kitchen.yml:2:10: platforms[0].name"), "{e}");
}

#[test]
fn instances_sharing_a_container_name_are_refused_where_written() {
    // LXD lowercases and maps `+` to `-`: these pairs would share one LXD container.
    let e = err(
        "driver: lxd\nplatforms:\n  - name: CentOS-7\n  - name: centos-7\nsuites: [{name: default}]\n",
    );
    assert!(
        e.starts_with("/proj/kitchen.yml:4:11: instances `default-CentOS-7` (/proj/kitchen.yml:3:11) and `default-centos-7` would both be the LXD container `kitchen-"),
        "{e}"
    );
    assert!(e.contains("rename a suite or platform"), "{e}");
    let e =
        err("driver: {name: lxd}\nplatforms: [{name: x}]\nsuites:\n  - name: a+b\n  - name: a-b\n");
    assert!(
        e.starts_with("/proj/kitchen.yml:5:11: instances `a+b-x`"),
        "{e}"
    );
    // Docker keeps case, so only `+` collides there.
    let p = load(
        "driver: docker\nplatforms:\n  - name: CentOS-7\n  - name: centos-7\nsuites: [{name: default}]\n",
    );
    assert_eq!(names(&p), ["default-CentOS-7", "default-centos-7"]);
    let e = err("driver: docker\nplatforms: [{name: a+b}, {name: a-b}]\nsuites: [{name: s}]\n");
    assert!(e.contains("both be the Docker container"), "{e}");
    // Other drivers name nothing here; one LXD and one Docker instance never collide.
    load("driver: vagrant\nplatforms: [{name: A}, {name: a}]\nsuites: [{name: s}]\n");
    load(
        "platforms:\n  - {name: A, driver: lxd}\n  - {name: a, driver: docker}\nsuites: [{name: s}]\n",
    );
}

#[test]
fn origins_name_the_layer_and_position_where_each_key_was_written() {
    let p = load(concat!(
        "provisioner: {name: ansible_playbook, playbook: common.yml}\n",
        "lifecycle:\n  pre_create: [echo top]\n",
        "platforms:\n",
        "  - name: a\n",
        "  - name: b\n",
        "    provisioner: {playbook: platform.yml}\n",
        "    lifecycle: {pre_create: [echo platform-1, echo platform-2]}\n",
        "suites:\n",
        "  - name: s\n",
        "  - name: t\n",
        "    provisioner:\n      playbook: suite.yml\n",
        "    lifecycle:\n      pre_create: echo suite\n",
    ));
    let at = |inst: &str, key: &str| {
        let o = p.instance(inst).unwrap().origins.get(key).cloned().unwrap();
        let at = o.at.unwrap_or_default();
        (
            o.key_path,
            at.rsplit_once('/')
                .map_or(at.clone(), |(_, f)| f.to_string()),
        )
    };
    let pair = |k: &str, a: &str| (k.to_string(), a.to_string());
    // The winner of the merge: suite over platform over common.
    assert_eq!(
        at("s-a", "provisioner.playbook"),
        pair("provisioner.playbook", "kitchen.yml:1:49")
    );
    assert_eq!(
        at("s-b", "provisioner.playbook"),
        pair("platforms[1].provisioner.playbook", "kitchen.yml:7:29")
    );
    assert_eq!(
        at("t-b", "provisioner.playbook"),
        pair("suites[1].provisioner.playbook", "kitchen.yml:13:17")
    );
    assert_eq!(
        at("t-b", "provisioner.name"),
        pair("provisioner.name", "kitchen.yml:1:21")
    );
    // Hook lists are concatenated (common, platform, suite): each entry keeps its own path.
    assert_eq!(
        at("t-b", "lifecycle.pre_create[0]"),
        pair("lifecycle.pre_create[0]", "kitchen.yml:3:16")
    );
    assert_eq!(
        at("t-b", "lifecycle.pre_create[2]"),
        pair("platforms[1].lifecycle.pre_create[1]", "kitchen.yml:8:47")
    );
    assert_eq!(
        at("t-b", "lifecycle.pre_create[3]"),
        pair("suites[1].lifecycle.pre_create[0]", "kitchen.yml:15:19")
    );
    assert_eq!(
        at("t-a", "lifecycle.pre_create[1]"),
        pair("suites[1].lifecycle.pre_create[0]", "kitchen.yml:15:19")
    );
    // Defaults were written nowhere; a message names the merged key.
    let s_a = p.instance("s-a").unwrap();
    assert!(s_a.origins.get("verifier.name").is_none());
    assert_eq!(s_a.origins.describe("verifier.name"), "`verifier.name`");
    assert!(
        s_a.origins
            .describe("provisioner.playbook")
            .starts_with("`provisioner.playbook` (")
    );
}
