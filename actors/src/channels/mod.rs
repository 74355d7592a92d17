//! Channels on this process: one [`ChannelRegistry`](channel_registry::ChannelRegistry)
//! per worker thread, channel → the outlets of that thread's subscribers, fed by the
//! [`HubBridge`](crate::hub::bridge::HubBridge); and the namespaces that say, per channel,
//! who may do what and what is kept ([`namespaces`]); and this process's presence entries
//! ([`presence_keeper`]).

pub mod channel_registry;
pub mod namespaces;
pub mod presence_keeper;

/// Presence's data types (they live with the hub, which stores them).
pub use crate::hub::presence;
