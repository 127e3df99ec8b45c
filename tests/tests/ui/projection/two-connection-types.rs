use bank::{Account, AccountOpened, MoneyDeposited};
use cqrs_runtime::projection;

#[derive(Default)]
pub struct Totals;

#[projection(aggregates(Account))]
impl Totals {
    async fn opened(&mut self, _event: &AccountOpened, _conn: &mut sqlx::SqliteConnection) {}
    async fn deposited(&mut self, _event: &MoneyDeposited, _conn: &mut sqlx::PgConnection) {}
}

fn main() {}
