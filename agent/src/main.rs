//! The `infoledger-agent` binary: everything lives in the library; this only runs the CLI.

fn main() -> std::process::ExitCode {
    infoledger_agent::cli::main()
}
