//! Channels on this process: one [`ChannelRegistry`](channel_registry::ChannelRegistry)
//! per worker thread, channel → the outlets of that thread's subscribers, fed by the
//! [`HubBridge`](crate::hub::bridge::HubBridge); and the namespaces that say, per channel,
//! who may do what and what is kept ([`namespaces`]).

pub mod channel_registry;
pub mod namespaces;
