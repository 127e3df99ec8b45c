//! What a running service tells its operators: [`metrics`] through the `metrics` facade, and
//! [`health`], the state of every runner that follows the log or the bus. (Spans are written
//! where the work is, with the crate's `work_span!`.)
//!
//! This layer names no contract, store or runner: the layers above report to it.

pub mod health;
pub mod metrics;
