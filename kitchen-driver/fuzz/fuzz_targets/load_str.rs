//! Feeds arbitrary bytes to the loader as a project kitchen.yml: it must return a project or an
//! error, never panic, and whatever it returns must select without panicking.
#![no_main]

use std::collections::BTreeMap;

use kitchen_driver::config::{self, LoadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // No PATH: ERB that needs Ruby is an error instead of a subprocess per input.
    let opts = LoadOptions::new("/kdtest-fuzz".into(), BTreeMap::new());
    if let Ok(project) = config::load_str(&text, &opts) {
        let _ = project.select(&[]);
        let _ = project.select(&[text.lines().next().unwrap_or("").to_owned()]);
    }
});
