//! The `kitchen-driver` command: a thin layer over the library.

fn main() {
    std::process::exit(kitchen_driver::cli::main_with_args(std::env::args_os()));
}
