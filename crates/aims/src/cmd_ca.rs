//! `aims ca init` and `aims svid issue`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::{CaInit, SvidIssue};

pub fn init(_args: &CaInit) -> Result<ExitCode> {
    bail!("not implemented yet")
}

pub fn issue(_args: &SvidIssue) -> Result<ExitCode> {
    bail!("not implemented yet")
}
