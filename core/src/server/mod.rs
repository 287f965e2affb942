//! The server logic: request processing, the standalone role and the four-letter words. Pure (sans-IO):
//! the tokio shell in `shell` feeds it events and carries out the actions it returns.

pub mod admin;
pub mod fourlw;
pub mod ordering;
pub mod standalone;
