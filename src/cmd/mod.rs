//! One module per subcommand; each holds its clap `Args` and the method that runs it.
pub mod generate;
pub mod jwks;
