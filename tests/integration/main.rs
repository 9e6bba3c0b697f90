//! keyctl's one integration-test binary: CLI behaviour, grouped by theme, the compose editor
//! on the shared real-world fixtures, plus interop with real JOSE clients (PyJWT, node
//! `jose`, `openssl`). `scripts/test.sh` installs the clients; a missing client fails the
//! test, it never skips it.

// Tests set up files and processes directly.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod compose;
mod corpus;
mod crash;
mod doctor;
mod engine;
mod export;
mod fixes;
mod fsharden;
mod generate;
mod image;
mod install;
mod interop;
mod jwks;
mod k8s;
mod k8s_corpus;
mod migrate;
mod recipes;
mod secrets;
mod stacks;
mod support;
mod terminal;
mod token;
mod token_stream;
mod trust;
