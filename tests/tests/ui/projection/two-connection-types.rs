use bank::{Account, Opened, Deposited};
use cqrs_runtime::projection;

#[derive(Default)]
pub struct Totals;

#[projection(aggregates(Account))]
impl Totals {
    async fn opened(&mut self, _event: &Opened, _conn: &mut sqlx::SqliteConnection) {}
    async fn deposited(&mut self, _event: &Deposited, _conn: &mut sqlx::PgConnection) {}
}
