//! One file per macro: each turns a validated model of its input into tokens.

pub mod aggregate;
pub mod command;
pub mod event;
pub mod handlers;
pub mod payload;
pub mod projection;
