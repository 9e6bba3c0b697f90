//! The `keyctl` binary: all of the work is in the library's `run`.

fn main() -> std::process::ExitCode {
    keyctl::run(std::env::args_os())
}
