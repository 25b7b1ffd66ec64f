//! The `ansible_playbook` blocks of the real-world kitchen.yml corpus (kitchen-ansible users:
//! DataDog, dev-sec, O1ahmad) are accepted as written: installer keys the host-side run does
//! not need are ignored, lists and strings are read where kitchen-ansible reads them.

use std::collections::BTreeMap;
use std::path::Path;

use kitchen_driver::config::{LoadOptions, load};
use kitchen_driver::{Error, provisioner, verifier};

const FILES: &[(&str, &str)] = &[
    ("DataDog__ansible-datadog__kitchen.yml", "kitchen.yml"),
    ("O1ahmad__ansible-role-openssh__kitchen.yml", "kitchen.yml"),
    (
        "dev-sec__ansible-ssh-hardening__kitchen.yml",
        ".kitchen.yml",
    ),
];

#[test]
fn corpus_ansible_playbook_blocks_are_accepted() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/files");
    let mut checked = 0;
    for (file, name) in FILES {
        let dir = tempfile::Builder::new()
            .prefix(&format!("kdtest-{}-0-ansible-corpus-", std::process::id()))
            .tempdir()
            .unwrap();
        std::fs::copy(corpus.join(file), dir.path().join(name)).unwrap();
        let env: BTreeMap<String, String> = [
            (
                "HOME".to_string(),
                dir.path().to_string_lossy().into_owned(),
            ),
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_default(),
            ),
        ]
        .into_iter()
        .collect();
        let project = load(&LoadOptions::new(dir.path().to_path_buf(), env))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!project.instances.is_empty(), "{file}");
        for inst in &project.instances {
            assert_eq!(inst.provisioner_name(), "ansible_playbook", "{file}");
            let p = provisioner::for_instance(inst)
                .unwrap_or_else(|e| panic!("{file} {}: {e}", inst.name));
            assert_eq!(p.name(), "ansible_playbook");
            checked += 1;
            // These projects verify with InSpec or busser, which this build does not have: the
            // error says so and lists what it has.
            if inst.verifier_name() == "inspec" {
                match verifier::for_instance(inst) {
                    Err(e @ Error::UnknownPlugin { .. }) => {
                        assert!(e.to_string().contains("shell, bats"), "{e}")
                    }
                    other => panic!("{file}: {:?}", other.map(|v| v.name())),
                }
            }
        }
    }
    assert!(checked >= 10, "only {checked} instances checked");
}
