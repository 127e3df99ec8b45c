//! `#[projection]` on a trait impl.

use bank::Account;
use cqrs_runtime::projection;

#[derive(Default)]
pub struct Owners;

#[projection(aggregates(Account))]
impl Clone for Owners {
    fn clone(&self) -> Self {
        Owners
    }
}
