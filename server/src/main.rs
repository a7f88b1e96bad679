//! The `infoledger-server` binary: everything lives in the library; this only runs the CLI.

fn main() -> std::process::ExitCode {
    infoledger_server::cli::main()
}
