//! Connections: one [`Connection`](connection::Connection) actor per client, its
//! [`Outlet`](outlet::Outlet) (the one bounded way out that its transport drains) with the
//! [`Outbox`](outbox::Outbox) inside it, who it is ([`info`]), and the process's
//! [`Directory`](directory::Directory) of them.

pub mod connection;
pub mod directory;
pub mod info;
pub mod outbox;
pub mod outlet;
