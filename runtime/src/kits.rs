//! Test kits: the given/when/then harness for aggregates, the backend conformance suite
//! (`testing` feature) and the small domain the doc examples use. The top layer: a kit may
//! use anything below it, and nothing below uses a kit.

pub(crate) mod aggregate_test;
#[doc(hidden)]
pub mod doc_support;
pub(crate) mod process_test;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "derive")]
#[doc(hidden)]
pub mod tour;
