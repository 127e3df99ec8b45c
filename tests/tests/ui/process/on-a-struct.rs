use cqrs_runtime::process_manager;

#[process_manager(aggregates(bank::Account))]
pub struct Bonus;
