//! Runs what the pass cases assert at run time (the UI suite only compiles them), each included
//! as written.

// The shapes are what users write, not what clippy would have them write.
#![allow(clippy::box_collection)]

include!("pass/fields-as-users-write-them.rs");

#[test]
fn fields_as_users_write_them_keep_their_json() {
    round_trip();
}
