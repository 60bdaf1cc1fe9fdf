//! Report writing: the machine-readable contract (`findings.json`, `scores/*.csv`). Only this module
//! knows output formats.

pub mod fonts;
pub mod tables;
