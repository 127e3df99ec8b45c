//! The event stores: in memory, SQLite and PostgreSQL. Each implements the store contract
//! ([`EventStore`](crate::EventStore)) and the projection target traits; the two SQL stores
//! share every statement runner but the append path and the leases (`sql`).

pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
